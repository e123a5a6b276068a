//! Queries behind the dashboard's charts and drill-downs: time series from the per-minute
//! rollup, recent errors, the latest sessions and one session's calls and other requests from
//! indexed raw rows.

use serde::Serialize;

use super::{
    rollup,
    source::{Param, Row, Source},
};
use crate::schema::{IS_ERROR, REQUEST_IS_ERROR};

/// Calls, errors and latency percentiles of one time bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Start of the bucket, unix ms.
    pub ts_ms: i64,
    /// Calls started in the bucket.
    pub calls: u64,
    /// Of which errors.
    pub errors: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 95th percentile latency, ms.
    pub p95_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

impl SeriesPoint {
    pub(super) fn new(ts_ms: i64, totals: &rollup::Totals) -> Self {
        SeriesPoint {
            ts_ms,
            calls: totals.calls,
            errors: totals.errors,
            p50_ms: totals.ms(0.5),
            p95_ms: totals.ms(0.95),
            p99_ms: totals.ms(0.99),
        }
    }
}

/// One recorded call or other request, as the drill-down views show it (already redacted).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRow {
    /// Event id.
    pub id: String,
    /// Start, unix ms.
    pub ts_ms: i64,
    /// The JSON-RPC method: `tools/call`, or another request's (`initialize`, `prompts/get`, …).
    pub method: String,
    /// The tool name (`tools/call`), else the request's target (prompt name, resource URI), if
    /// any.
    pub tool: String,
    /// Status name.
    pub status: String,
    /// Error type, if any.
    pub error_type: Option<String>,
    /// Error message (redacted), if any.
    pub error_message: Option<String>,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// Arguments as JSON text (redacted).
    pub params: Option<String>,
    /// The user, if known.
    pub user_id: Option<String>,
    /// The session.
    pub session_id: Option<String>,
}

pub(crate) fn series<S: Source>(
    source: &S,
    since_ms: i64,
    bucket_ms: i64,
    tool: Option<&str>,
) -> Result<Vec<SeriesPoint>, S::Error> {
    let bucket_ms = bucket_ms.max(60_000);
    // Hour-sized buckets (or longer) come from the hourly rollup.
    let sql = if bucket_ms % 3_600_000 == 0 {
        "SELECT hour_ms, status, calls, latency_hist FROM tool_calls_1h WHERE hour_ms >= ?1 - 3599999 AND (CAST(?2 AS TEXT) IS NULL OR tool = ?2)"
    } else {
        "SELECT minute_ms, status, calls, latency_hist FROM tool_calls_1m WHERE minute_ms >= ?1 - 59999 AND (CAST(?2 AS TEXT) IS NULL OR tool = ?2)"
    };
    let params = [Param::Int(since_ms), Param::Text(tool)];
    let buckets = rollup::fold(source, sql, &params, 1, rollup::tool_error, |row| {
        row.int(0)
            .map(|minute| minute - minute.rem_euclid(bucket_ms))
    })?;
    Ok(buckets
        .into_iter()
        .map(|(ts_ms, totals)| SeriesPoint::new(ts_ms, &totals))
        .collect())
}

/// The drill-down columns of `tool_calls`, and the same of `requests` (no parameters).
const CALL_COLUMNS: &str = "id, ts_ms, 'tools/call' AS method, tool, status, error_type, error_message, duration_us, params, user_id, session_id";
const REQUEST_COLUMNS: &str = "id, ts_ms, method, coalesce(target, '') AS tool, status, error_type, error_message, duration_us, CAST(NULL AS TEXT) AS params, user_id, session_id";

fn call_row<E>(row: &dyn Row<E>) -> Result<CallRow, E> {
    Ok(CallRow {
        id: row.string(0)?,
        ts_ms: row.int(1)?,
        method: row.string(2)?,
        tool: row.string(3)?,
        status: row.string(4)?,
        error_type: row.text(5)?,
        error_message: row.text(6)?,
        duration_ms: row.int(7)? as f64 / 1000.0,
        params: row.text(8)?,
        user_id: row.text(9)?,
        session_id: row.text(10)?,
    })
}

/// The latest failed calls and requests, newest first: each table's latest `limit` through its
/// time index, then the latest of both. With `tool`, only that tool's failed calls.
pub(crate) fn recent_errors<S: Source>(
    source: &S,
    since_ms: i64,
    limit: usize,
    server: Option<&str>,
    tool: Option<&str>,
) -> Result<Vec<CallRow>, S::Error> {
    let scope = "ts_ms >= ?1 AND (CAST(?3 AS TEXT) IS NULL OR server_name = ?3)";
    source.rows(
        &format!(
            "SELECT * FROM (SELECT {CALL_COLUMNS} FROM tool_calls WHERE {scope} AND (CAST(?4 AS TEXT) IS NULL OR tool = ?4) AND {IS_ERROR} ORDER BY ts_ms DESC, id DESC LIMIT ?2) AS calls UNION ALL SELECT * FROM (SELECT {REQUEST_COLUMNS} FROM requests WHERE {scope} AND CAST(?4 AS TEXT) IS NULL AND {REQUEST_IS_ERROR} ORDER BY ts_ms DESC, id DESC LIMIT ?2) AS requests ORDER BY ts_ms DESC, id DESC LIMIT ?2"
        ),
        &[
            Param::Int(since_ms),
            Param::Int(limit as i64),
            Param::Text(server),
            Param::Text(tool),
        ],
        call_row,
    )
}

/// One session's figures within a time range (its calls and requests that started in it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionSummary {
    /// The session.
    pub session_id: String,
    /// The start of its first call or request in the range, unix ms.
    pub start_ms: i64,
    /// The end of its last call or request in the range, unix ms.
    pub end_ms: i64,
    /// Its tool calls.
    pub calls: u64,
    /// Of which errors.
    pub errors: u64,
    /// Its other requests (`initialize`, `tools/list`, …).
    pub requests: u64,
}

/// The `limit` sessions whose latest call or request since `since_ms` ended last, latest
/// first, through the tables' time indexes.
pub(crate) fn recent_sessions<S: Source>(
    source: &S,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<SessionSummary>, S::Error> {
    let part = |table: &str, calls: &str, errors: &str, requests: &str| {
        format!(
            "SELECT session_id, min(ts_ms) AS start_ms, max(ts_ms + duration_us / 1000) AS end_ms, {calls} AS calls, {errors} AS errors, {requests} AS requests FROM {table} WHERE ts_ms >= ?1 AND session_id IS NOT NULL GROUP BY session_id"
        )
    };
    let calls = part(
        "tool_calls",
        "count(*)",
        &format!("sum(CASE WHEN {IS_ERROR} THEN 1 ELSE 0 END)"),
        "0",
    );
    let requests = part("requests", "0", "0", "count(*)");
    source.rows(
        &format!(
            "SELECT session_id, CAST(min(start_ms) AS BIGINT), CAST(max(end_ms) AS BIGINT), CAST(sum(calls) AS BIGINT), CAST(sum(errors) AS BIGINT), CAST(sum(requests) AS BIGINT) FROM ({calls} UNION ALL {requests}) AS parts GROUP BY session_id ORDER BY max(end_ms) DESC, session_id LIMIT ?2"
        ),
        &[Param::Int(since_ms), Param::Int(limit as i64)],
        |row| {
            let count = |index| row.int(index).map(|value| u64::try_from(value).unwrap_or(0));
            Ok(SessionSummary {
                session_id: row.string(0)?,
                start_ms: row.int(1)?,
                end_ms: row.int(2)?,
                calls: count(3)?,
                errors: count(4)?,
                requests: count(5)?,
            })
        },
    )
}

/// One session: when it started and ended, how many calls it made, and its timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionTimeline {
    /// The session.
    pub session_id: String,
    /// The start of its first call or request, unix ms (`None` when nothing is recorded in it).
    pub start_ms: Option<i64>,
    /// The end of its last call or request, unix ms.
    pub end_ms: Option<i64>,
    /// From its start to its end, in milliseconds.
    pub duration_ms: i64,
    /// Its tool calls.
    pub calls: u64,
    /// Its other requests (`initialize`, `tools/list`, …).
    pub requests: u64,
    /// Its calls and requests in order (the first `limit`).
    pub timeline: Vec<CallRow>,
}

/// A session's figures and its calls and requests, in order, through the session index.
pub(crate) fn session<S: Source>(
    source: &S,
    session_id: &str,
    limit: usize,
) -> Result<SessionTimeline, S::Error> {
    let span = |table: &str, kind: i64| {
        format!(
            "SELECT CAST({kind} AS BIGINT), CAST(coalesce(min(ts_ms), 0) AS BIGINT), CAST(coalesce(max(ts_ms + duration_us / 1000), 0) AS BIGINT), count(*) FROM {table} WHERE session_id = ?1"
        )
    };
    // Per table: calls (0) or requests (1), first start, last end, rows.
    let parts = source.rows(
        &format!(
            "{} UNION ALL {}",
            span("tool_calls", 0),
            span("requests", 1)
        ),
        &[Param::Text(Some(session_id))],
        |row| Ok((row.int(0)?, row.int(1)?, row.int(2)?, row.int(3)?)),
    )?;
    let recorded = || parts.iter().filter(|part| part.3 > 0);
    let start_ms = recorded().map(|part| part.1).min();
    let end_ms = recorded().map(|part| part.2).max();
    let count = |kind| {
        parts
            .iter()
            .filter(|part| part.0 == kind)
            .map(|part| u64::try_from(part.3).unwrap_or(0))
            .sum::<u64>()
    };
    let (calls, requests) = (count(0), count(1));
    Ok(SessionTimeline {
        session_id: session_id.to_owned(),
        start_ms,
        end_ms,
        duration_ms: start_ms.zip(end_ms).map_or(0, |(start, end)| end - start),
        calls,
        requests,
        timeline: timeline(source, session_id, limit)?,
    })
}

/// A session's calls and requests, in order.
fn timeline<S: Source>(
    source: &S,
    session_id: &str,
    limit: usize,
) -> Result<Vec<CallRow>, S::Error> {
    source.rows(
        &format!(
            "SELECT * FROM (SELECT {CALL_COLUMNS} FROM tool_calls WHERE session_id = ?1 ORDER BY ts_ms, id LIMIT ?2) AS calls UNION ALL SELECT * FROM (SELECT {REQUEST_COLUMNS} FROM requests WHERE session_id = ?1 ORDER BY ts_ms, id LIMIT ?2) AS requests ORDER BY ts_ms, id LIMIT ?2"
        ),
        &[Param::Text(Some(session_id)), Param::Int(limit as i64)],
        call_row,
    )
}
