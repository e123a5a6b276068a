//! Per-tool figures and overall latency from the per-minute rollup (never raw rows), and the
//! distinct user count.

use rusqlite::Connection;

use std::collections::BTreeMap;

use super::{
    DistinctSketch, LatencyHistogram,
    rollup::{self, Totals},
};

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

/// Calls, errors and latency per tool since `since_ms`.
pub(super) fn tool_totals(
    connection: &Connection,
    since_ms: i64,
    server: Option<&str>,
) -> rusqlite::Result<BTreeMap<String, Totals>> {
    let (table, time) = rollup::table_for(since_ms);
    rollup::fold(
        connection,
        &format!(
            "SELECT tool, status, calls, latency_hist FROM {table} WHERE {time} AND (?2 IS NULL OR server_name = ?2)"
        ),
        rusqlite::params![since_ms, server],
        1,
        |row| row.get::<_, String>(0),
    )
}

pub(super) fn tool_summary(
    connection: &Connection,
    since_ms: i64,
) -> rusqlite::Result<Vec<ToolSummary>> {
    Ok(tool_totals(connection, since_ms, None)?
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
    let mut all = LatencyHistogram::default();
    for totals in tool_totals(connection, since_ms, None)?.values() {
        all.merge(&totals.latency);
    }
    Ok(all)
}

/// Distinct identified users since `since_ms` (from the hourly sketches: from the hour on).
pub(super) fn users(
    connection: &Connection,
    since_ms: i64,
    server: Option<&str>,
) -> rusqlite::Result<u64> {
    let mut statement = connection.prepare_cached(
        "SELECT users_hll FROM tool_calls_1h WHERE hour_ms >= ?1 - 3599999 AND (?2 IS NULL OR server_name = ?2)",
    )?;
    let mut rows = statement.query(rusqlite::params![since_ms, server])?;
    let mut users = DistinctSketch::default();
    while let Some(row) = rows.next()? {
        users.merge_encoded(row.get_ref(0)?.as_blob()?);
    }
    Ok(users.estimate())
}

/// The servers that recorded calls since `since_ms`.
pub(super) fn servers(connection: &Connection, since_ms: i64) -> rusqlite::Result<Vec<String>> {
    connection
        .prepare_cached("SELECT DISTINCT server_name FROM tool_calls_1h WHERE hour_ms >= ?1 - 3599999 ORDER BY 1")?
        .query_map([since_ms], |row| row.get(0))?
        .collect()
}
