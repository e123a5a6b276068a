//! Per-tool figures and overall latency from the per-minute rollup (never raw rows), and the
//! distinct user count.

use rusqlite::Connection;

use super::{LatencyHistogram, rollup};

/// Usage and latency of one tool over a time range.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSummary {
    /// The tool name.
    pub tool: String,
    /// Calls of any status.
    pub calls: u64,
    /// Calls whose status is an error.
    pub errors: u64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency in milliseconds.
    pub p95_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
}

pub(super) fn tool_summary(
    connection: &Connection,
    since_ms: i64,
) -> rusqlite::Result<Vec<ToolSummary>> {
    let tools = rollup::fold(
        connection,
        "SELECT tool, status, calls, latency_hist FROM tool_calls_1m WHERE minute_ms >= ?1 - 59999",
        [since_ms],
        1,
        |row| row.get::<_, String>(0),
    )?;
    Ok(tools
        .into_iter()
        .map(|(tool, totals)| ToolSummary {
            p50_ms: totals.ms(0.5),
            p95_ms: totals.ms(0.95),
            p99_ms: totals.ms(0.99),
            tool,
            calls: totals.calls,
            errors: totals.errors,
        })
        .collect())
}

/// All calls' latencies since `since_ms` merged into one histogram (for overall percentiles).
pub(super) fn latency(
    connection: &Connection,
    since_ms: i64,
) -> rusqlite::Result<LatencyHistogram> {
    let mut all = rollup::fold(
        connection,
        "SELECT status, calls, latency_hist FROM tool_calls_1m WHERE minute_ms >= ?1 - 59999",
        [since_ms],
        0,
        |_| Ok(()),
    )?;
    Ok(all
        .remove(&())
        .map(|totals| totals.latency)
        .unwrap_or_default())
}

/// Distinct identified users since `since_ms`.
pub(super) fn users(connection: &Connection, since_ms: i64) -> rusqlite::Result<u64> {
    let count: i64 = connection
        .prepare_cached("SELECT count(DISTINCT user_id) FROM tool_calls WHERE ts_ms >= ?1")?
        .query_row([since_ms], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}
