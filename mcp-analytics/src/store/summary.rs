//! Per-tool figures and overall latency from the rollups (never raw rows), and the distinct
//! user count.

use std::collections::BTreeMap;

use super::{
    DistinctSketch, LatencyHistogram,
    rollup::{self, Totals},
    source::{Param, Source},
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

/// Calls, errors and latency per tool since `since_ms` (see [`rollup::summary_bucket`]).
pub(super) fn tool_totals<S: Source>(
    source: &S,
    since_ms: i64,
    server: Option<&str>,
) -> Result<BTreeMap<String, Totals>, S::Error> {
    let mut tools: BTreeMap<String, Totals> = BTreeMap::new();
    let cells = rollup::cells(source, since_ms, rollup::summary_bucket(since_ms), server)?;
    for ((_, tool), totals) in cells {
        match tools.get_mut(&tool) {
            Some(sum) => sum.merge(&totals),
            None => {
                tools.insert(tool, totals);
            }
        }
    }
    Ok(tools)
}

pub(crate) fn tool_summary<S: Source>(
    source: &S,
    since_ms: i64,
) -> Result<Vec<ToolSummary>, S::Error> {
    Ok(tool_totals(source, since_ms, None)?
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
pub(crate) fn latency<S: Source>(source: &S, since_ms: i64) -> Result<LatencyHistogram, S::Error> {
    let mut all = LatencyHistogram::default();
    for totals in tool_totals(source, since_ms, None)?.values() {
        all.merge(&totals.latency);
    }
    Ok(all)
}

/// Distinct identified users since `since_ms` (from the hourly sketches: from the hour on).
pub(crate) fn users<S: Source>(
    source: &S,
    since_ms: i64,
    server: Option<&str>,
) -> Result<u64, S::Error> {
    let mut users = DistinctSketch::default();
    source.each(
        "SELECT users_hll FROM tool_calls_1h WHERE hour_ms >= ?1 - 3599999 AND (CAST(?2 AS TEXT) IS NULL OR server_name = ?2)",
        &[Param::Int(since_ms), Param::Text(server)],
        &mut |row| {
            users.merge_encoded(row.blob(0)?);
            Ok(())
        },
    )?;
    Ok(users.estimate())
}

/// The servers that recorded calls since `since_ms`.
pub(super) fn servers<S: Source>(source: &S, since_ms: i64) -> Result<Vec<String>, S::Error> {
    source.rows(
        "SELECT DISTINCT server_name FROM tool_calls_1h WHERE hour_ms >= ?1 - 3599999 ORDER BY 1",
        &[Param::Int(since_ms)],
        |row| row.string(0),
    )
}
