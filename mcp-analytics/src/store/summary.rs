//! Queries over the per-minute rollup (never over raw rows).

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::LatencyHistogram;
use crate::Status;

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
    let mut statement = connection.prepare_cached(
        "SELECT tool, status, calls, latency_hist FROM tool_calls_1m WHERE minute_ms >= ?1 - 59999",
    )?;
    let mut tools: BTreeMap<String, (u64, u64, LatencyHistogram)> = BTreeMap::new();
    let mut rows = statement.query([since_ms])?;
    while let Some(row) = rows.next()? {
        let tool: String = row.get(0)?;
        let status: String = row.get(1)?;
        let calls = u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0);
        let histogram = LatencyHistogram::decode(row.get_ref(3)?.as_blob()?).unwrap_or_default();
        let entry = tools.entry(tool).or_default();
        entry.0 += calls;
        if status.parse::<Status>().is_ok_and(Status::is_error) {
            entry.1 += calls;
        }
        entry.2.merge(&histogram);
    }
    Ok(tools
        .into_iter()
        .map(|(tool, (calls, errors, histogram))| {
            let ms = |q| histogram.quantile(q).unwrap_or(0.0) / 1000.0;
            ToolSummary {
                tool,
                calls,
                errors,
                p50_ms: ms(0.5),
                p95_ms: ms(0.95),
                p99_ms: ms(0.99),
            }
        })
        .collect())
}

/// All calls' latencies since `since_ms` merged into one histogram (for overall percentiles).
pub(super) fn latency(
    connection: &Connection,
    since_ms: i64,
) -> rusqlite::Result<LatencyHistogram> {
    let mut statement = connection
        .prepare_cached("SELECT latency_hist FROM tool_calls_1m WHERE minute_ms >= ?1 - 59999")?;
    let mut merged = LatencyHistogram::default();
    let mut rows = statement.query([since_ms])?;
    while let Some(row) = rows.next()? {
        merged.merge(&LatencyHistogram::decode(row.get_ref(0)?.as_blob()?).unwrap_or_default());
    }
    Ok(merged)
}

/// Distinct identified users since `since_ms`.
pub(super) fn users(connection: &Connection, since_ms: i64) -> rusqlite::Result<u64> {
    let count: i64 = connection
        .prepare_cached("SELECT count(DISTINCT user_id) FROM tool_calls WHERE ts_ms >= ?1")?
        .query_row([since_ms], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}
