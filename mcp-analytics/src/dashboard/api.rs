//! The JSON API the page reads: `api/overview`, `api/errors`, `api/alerts` and `api/session`,
//! all for a `range` of `1h`, `24h`, `7d` or `30d`.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    extract::{Query, State as Extract},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{QueryError, State};
use crate::store::{Report, SeriesPoint, SessionTimeline};

/// Rows returned by the drill-down views at most.
const ROW_LIMIT: usize = 200;

/// The cards, charts and tables of the page.
#[derive(Serialize)]
struct Overview {
    range: &'static str,
    since_ms: i64,
    until_ms: i64,
    report: Report,
    series: Vec<SeriesPoint>,
    p95_ms: Option<f64>,
    users: u64,
    servers: Vec<String>,
}

/// `(name, length, chart bucket)` of the ranges the page offers.
const RANGES: [(&str, i64, i64); 4] = [
    ("1h", 3_600_000, 60_000),
    ("24h", 86_400_000, 900_000),
    ("7d", 604_800_000, 3_600_000),
    ("30d", 2_592_000_000, 21_600_000),
];

/// `?server=NAME` narrows the views to one server (a collector stores many).
fn server(query: &HashMap<String, String>) -> Option<String> {
    query.get("server").filter(|name| !name.is_empty()).cloned()
}

use crate::clock::now_ms;

fn range(query: &HashMap<String, String>) -> (&'static str, i64, i64) {
    let wanted = query.get("range").map_or("24h", String::as_str);
    let (name, length, bucket) = RANGES
        .into_iter()
        .find(|(name, ..)| *name == wanted)
        .unwrap_or(RANGES[1]);
    (name, now_ms() - length, bucket)
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

pub(super) async fn overview(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (name, since_ms, bucket_ms) = range(&query);
    let server = server(&query);
    let until_ms = now_ms();
    let result = state
        .query(move |store| {
            let overview = store.overview(since_ms, bucket_ms, server.as_deref())?;
            Ok(Overview {
                range: name,
                since_ms,
                until_ms,
                series: fill(overview.series, since_ms, until_ms, bucket_ms),
                report: overview.report,
                p95_ms: overview.p95_ms,
                users: overview.users,
                servers: overview.servers,
            })
        })
        .await;
    respond(result)
}

pub(super) async fn errors(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (_, since_ms, _) = range(&query);
    let server = server(&query);
    respond(
        state
            .query(move |store| store.recent_errors(since_ms, ROW_LIMIT, server.as_deref()))
            .await,
    )
}

/// Revenue by tool and user, conversion, active subscriptions and failures.
pub(super) async fn payments(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (_, since_ms, _) = range(&query);
    respond(state.query(move |store| store.payments(since_ms)).await)
}

/// The alerts firing, then those resolved within the range.
pub(super) async fn alerts(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (_, since_ms, _) = range(&query);
    respond(state.query(move |store| store.alerts(since_ms)).await)
}

pub(super) async fn session(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = query.get("id").cloned() else {
        return (StatusCode::BAD_REQUEST, "expected ?id=<session id>").into_response();
    };
    let result: Result<SessionTimeline, QueryError> = state
        .query(move |store| store.session(&id, ROW_LIMIT))
        .await;
    respond(result)
}

fn respond<T: Serialize>(result: Result<T, QueryError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

/// Middleware for every API route: without the key, 401.
pub(super) async fn require_key(
    Extract(state): Extract<Arc<State>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.auth.allows(request.headers()) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "sign in: send `Authorization: Bearer <MCP_ANALYTICS_API_KEY>`",
        )
            .into_response()
    }
}
