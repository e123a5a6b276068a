//! The JSON API the page reads (`api/overview`, `api/errors`, `api/payments`, `api/alerts` and
//! `api/session`, all for a `range` of `1h`, `24h`, `7d` or `30d`, and `server` to narrow them
//! to one server): the query parameters and the answers' shapes, shared by the axum router and
//! the Worker.

use std::collections::HashMap;

use serde::Serialize;

use crate::{
    clock::now_ms,
    store::{Overview, Report, SeriesPoint},
};

/// Rows returned by the drill-down views at most.
pub(crate) const ROW_LIMIT: usize = 200;

/// The answer to `api/session` without `?id=`.
pub(crate) const SESSION_ID_EXPECTED: &str = "expected ?id=<session id>";

/// A range the page offers, resolved against the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    /// `1h`, `24h`, `7d` or `30d`.
    pub(crate) name: &'static str,
    /// Its start (unix ms).
    pub(crate) since_ms: i64,
    /// The width of its chart's buckets.
    pub(crate) bucket_ms: i64,
}

/// `(name, length, chart bucket)` of the ranges the page offers.
const RANGES: [(&str, i64, i64); 4] = [
    ("1h", 3_600_000, 60_000),
    ("24h", 86_400_000, 900_000),
    ("7d", 604_800_000, 3_600_000),
    ("30d", 2_592_000_000, 21_600_000),
];

/// `?range=` (default and anything unknown: `24h`), ending now.
pub(crate) fn range(query: &HashMap<String, String>) -> Range {
    let wanted = query.get("range").map_or("24h", String::as_str);
    let (name, length, bucket_ms) = RANGES
        .into_iter()
        .find(|(name, ..)| *name == wanted)
        .unwrap_or(RANGES[1]);
    Range {
        name,
        since_ms: now_ms() - length,
        bucket_ms,
    }
}

/// `?server=NAME` narrows the views to one server (a collector stores many).
pub(crate) fn server(query: &HashMap<String, String>) -> Option<String> {
    query.get("server").filter(|name| !name.is_empty()).cloned()
}

/// `api/overview`: the cards, charts and tables of the page.
#[derive(Serialize)]
pub(crate) struct OverviewView {
    range: &'static str,
    since_ms: i64,
    until_ms: i64,
    report: Report,
    series: Vec<SeriesPoint>,
    p95_ms: Option<f64>,
    users: u64,
    servers: Vec<String>,
}

impl OverviewView {
    /// The store's `overview` of `range` as the page reads it, its chart filled up to `until_ms`.
    pub(crate) fn new(overview: Overview, range: Range, until_ms: i64) -> Self {
        Self {
            range: range.name,
            since_ms: range.since_ms,
            until_ms,
            series: fill(overview.series, range.since_ms, until_ms, range.bucket_ms),
            report: overview.report,
            p95_ms: overview.p95_ms,
            users: overview.users,
            servers: overview.servers,
        }
    }
}

/// Every bucket from `since_ms` to `until_ms`, empty ones as zero calls, so charts show gaps.
fn fill(
    series: Vec<SeriesPoint>,
    since_ms: i64,
    until_ms: i64,
    bucket_ms: i64,
) -> Vec<SeriesPoint> {
    let mut known = series.into_iter().peekable();
    let mut out = Vec::new();
    let mut ts_ms = since_ms - since_ms.rem_euclid(bucket_ms);
    while ts_ms <= until_ms {
        match known.next_if(|point| point.ts_ms <= ts_ms) {
            Some(point) => out.push(point),
            None => out.push(SeriesPoint {
                ts_ms,
                calls: 0,
                errors: 0,
                p50_ms: 0.0,
                p95_ms: 0.0,
                p99_ms: 0.0,
            }),
        }
        ts_ms += bucket_ms;
    }
    out
}
