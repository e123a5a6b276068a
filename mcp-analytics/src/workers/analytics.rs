//! The Worker's analytics: the request's events written to D1 after the response, and the
//! dashboard's JSON API read from D1.

use worker::{Context, Env, Request, Response};

use super::{API_KEY, D1_BINDING, d1::D1};
use crate::{Analytics, Config, clock::now_ms, d1};

/// Hands what `analytics` recorded to `ctx.wait_until`, which writes it to D1 once the
/// response has gone. Without the binding nothing is stored (and the Worker logs it once per
/// isolate).
pub(super) fn store_after_response(analytics: &Analytics, env: &Env, ctx: &Context) {
    let drained = analytics.drain();
    if drained.batch.calls.is_empty()
        && drained.batch.requests.is_empty()
        && drained.catalogs.is_empty()
    {
        return;
    }
    let database = match env.d1(D1_BINDING) {
        Ok(database) => D1(database),
        Err(_) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                worker::console_warn!(
                    "mcp-analytics: no D1 binding `{D1_BINDING}`: calls are not stored (see examples/workers/wrangler.toml)"
                );
            });
            return;
        }
    };
    ctx.wait_until(async move {
        for catalog in &drained.catalogs {
            if let Err(error) = d1::write_catalog(&database, catalog).await {
                worker::console_error!("mcp-analytics: the tool catalogue was not stored: {error}");
            }
        }
        let written = d1::write(
            &database,
            &drained.batch.calls,
            &drained.batch.requests,
            Config::DEFAULT_SESSION_IDLE,
        )
        .await;
        if let Err(error) = written {
            worker::console_error!(
                "mcp-analytics: {} calls and {} requests were not stored: {error}",
                drained.batch.calls.len(),
                drained.batch.requests.len()
            );
        }
    });
}

/// How far back the API looks, by `?range=`.
fn range(request: &Request) -> (i64, i64) {
    let range = request.url().ok().and_then(|url| {
        url.query_pairs()
            .find(|(key, _)| key == "range")
            .map(|(_, value)| value.into_owned())
    });
    let hour = 3_600_000;
    match range.as_deref() {
        Some("1h") => (hour, 60_000),
        Some("7d") => (7 * 24 * hour, hour),
        Some("30d") => (30 * 24 * hour, 6 * hour),
        _ => (24 * hour, 15 * 60_000),
    }
}

fn query(request: &Request, name: &str) -> Option<String> {
    request
        .url()
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `GET /analytics/…`: the JSON API behind the API key.
pub(super) async fn answer(request: &Request, env: &Env, path: &str) -> worker::Result<Response> {
    let Some(key) = super::variable(env, API_KEY).filter(|key| !key.is_empty()) else {
        return Response::error(
            format!(
                "the analytics API is off: set the Worker secret {API_KEY} (`wrangler secret put {API_KEY}`)"
            ),
            401,
        );
    };
    let sent = request.headers().get("authorization")?;
    if !sent.is_some_and(|sent| same(sent.strip_prefix("Bearer ").unwrap_or_default(), &key)) {
        return Response::error(
            format!("sign in: send `Authorization: Bearer <{API_KEY}>`"),
            401,
        );
    }
    let Ok(database) = env.d1(D1_BINDING).map(D1) else {
        return Response::error(format!("no D1 binding `{D1_BINDING}`"), 503);
    };
    let (span_ms, bucket_ms) = range(request);
    let since_ms = now_ms() - span_ms;
    let server = query(request, "server");
    const ROWS: usize = 100;
    let answer = match path.trim_end_matches('/') {
        "/api/overview" => {
            json(d1::overview(&database, since_ms, bucket_ms, server.as_deref()).await)
        }
        "/api/errors" => {
            json(d1::recent_errors(&database, since_ms, ROWS, server.as_deref(), None).await)
        }
        "/api/sessions" => json(d1::recent_sessions(&database, since_ms, ROWS).await),
        "/api/session" => match query(request, "id") {
            Some(id) => json(d1::session(&database, &id, ROWS).await),
            None => Response::error("expected ?id=<session id>", 400),
        },
        "/api/report" => json(
            d1::report(
                &database,
                since_ms,
                query(request, "tool").as_deref(),
                server.as_deref(),
            )
            .await,
        ),
        _ => Response::error(
            "not found: the API is /analytics/api/{overview,errors,sessions,session,report}",
            404,
        ),
    };
    answer
}

fn json<T: serde::Serialize>(result: Result<T, d1::D1Error>) -> worker::Result<Response> {
    match result {
        Ok(value) => Response::from_json(&value),
        Err(error) => Response::error(error.to_string(), 503),
    }
}

/// Compares keys in time independent of where they differ.
fn same(sent: &str, key: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (sent, key) = (Sha256::digest(sent), Sha256::digest(key));
    sent.iter()
        .zip(key.iter())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}
