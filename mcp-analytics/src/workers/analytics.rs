//! The Worker's analytics: the request's events written to D1 after the response, and the
//! dashboard (the native page, sign-in and JSON API) read from D1.

use std::collections::HashMap;

use worker::{Context, Env, Method, Request, Response};

use super::{API_KEY, D1_BINDING, d1::D1};
use crate::{
    Analytics, Config,
    clock::now_ms,
    d1,
    dashboard::{
        self,
        api::{OverviewView, ROW_LIMIT, SESSION_ID_EXPECTED},
        auth::{self, Auth, SignIn},
    },
    origin::is_cross_origin,
    payments::report::PaymentsSummary,
};

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

/// `/analytics…`: the dashboard's page (or its sign-in form) and its JSON API, read from D1,
/// behind the API key (a bearer token, or the sign-in form's cookie), as natively.
pub(super) async fn answer(
    mut request: Request,
    env: &Env,
    path: &str,
) -> worker::Result<Response> {
    let Some(key) = super::variable(env, API_KEY).filter(|key| !key.is_empty()) else {
        return Response::error(
            format!(
                "the dashboard is off: set the Worker secret {API_KEY} (`wrangler secret put {API_KEY}`)"
            ),
            401,
        );
    };
    let auth = Auth::new(Some(&key));
    let parts = super::mcp::parts(&request)?;
    let page = path.is_empty() || path == "/";
    match (request.method(), page) {
        (Method::Get, true) if auth.allows(&parts.headers) => html(dashboard::page_html(), 200),
        (Method::Get, true) => html(&auth::sign_in_form(auth::NO_MESSAGE), 401),
        (Method::Post, true) if is_cross_origin(&parts.headers) => {
            Response::error("Forbidden: cross-origin request", 403)
        }
        (Method::Post, true) => match auth.sign_in(&request.bytes().await?) {
            SignIn::Refused => html(&auth::sign_in_form(auth::WRONG_KEY), 401),
            signed_in => {
                // Back to the page by GET (post, redirect, get), signed in.
                let mut response = Response::empty()?.with_status(303);
                response
                    .headers_mut()
                    .set("location", request.path().as_str())?;
                if let SignIn::Accepted { set_cookie } = signed_in {
                    response.headers_mut().set("set-cookie", &set_cookie)?;
                }
                Ok(response)
            }
        },
        (Method::Get, false) if auth.allows(&parts.headers) => api(&request, env, path).await,
        (Method::Get, false) => Response::error(auth::SIGN_IN_HINT, 401),
        _ => Response::error("method not allowed", 405),
    }
}

fn html(page: &str, status: u16) -> worker::Result<Response> {
    Ok(Response::from_html(page)?.with_status(status))
}

/// `GET /analytics/api/…`: the JSON the page reads, plus `sessions` and `report`.
async fn api(request: &Request, env: &Env, path: &str) -> worker::Result<Response> {
    let Ok(database) = env.d1(D1_BINDING).map(D1) else {
        return Response::error(format!("no D1 binding `{D1_BINDING}`"), 503);
    };
    let query: HashMap<String, String> = request.url()?.query_pairs().into_owned().collect();
    let range = dashboard::api::range(&query);
    let since_ms = range.since_ms;
    let server = dashboard::api::server(&query);
    match path.trim_end_matches('/') {
        "/api/overview" => json(
            d1::overview(&database, since_ms, range.bucket_ms, server.as_deref())
                .await
                .map(|overview| OverviewView::new(overview, range, now_ms())),
        ),
        "/api/errors" => {
            json(d1::recent_errors(&database, since_ms, ROW_LIMIT, server.as_deref(), None).await)
        }
        "/api/payments" => json(
            d1::read(&database, |source| {
                PaymentsSummary::read_from(source, since_ms)
            })
            .await,
        ),
        "/api/alerts" => json(
            d1::read(&database, |source| {
                dashboard::alerts::recent(source, since_ms)
            })
            .await,
        ),
        "/api/sessions" => json(d1::recent_sessions(&database, since_ms, ROW_LIMIT).await),
        "/api/session" => match query.get("id") {
            Some(id) => json(d1::session(&database, id, ROW_LIMIT).await),
            None => Response::error(SESSION_ID_EXPECTED, 400),
        },
        "/api/report" => json(
            d1::report(
                &database,
                since_ms,
                query.get("tool").map(String::as_str),
                server.as_deref(),
            )
            .await,
        ),
        _ => Response::error(
            "not found: the API is /analytics/api/{overview,errors,payments,alerts,sessions,session,report}",
            404,
        ),
    }
}

fn json<T: serde::Serialize>(result: Result<T, d1::D1Error>) -> worker::Result<Response> {
    match result {
        Ok(value) => Response::from_json(&value),
        Err(error) => Response::error(error.to_string(), 503),
    }
}
