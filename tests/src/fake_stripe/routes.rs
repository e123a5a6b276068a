//! The HTTP side: one entry point for `/v1/…` (auth, faults, idempotency, recording, then the
//! endpoint handlers) and the hosted checkout page at `/checkout/pay/{id}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::Value;

use super::endpoints::dispatch;
use super::form::decode;
use super::objects::error;
use super::state::{Fault, IdempotentEntry, RecordedRequest, Shared, now};
use super::webhook;

fn json_response(status: u16, body: &str, extra: &[(&'static str, String)]) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_owned(),
    )
        .into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(*name, v);
        }
    }
    resp
}

fn fault_reply(status: u16, retry: Option<bool>) -> (u16, Value, bool) {
    let should_retry = retry.unwrap_or(status == 409 || status == 429 || status >= 500);
    let body = match status {
        429 => error(
            "invalid_request_error",
            "Request rate limit exceeded. (injected by the fake)",
            Some("rate_limit"),
            None,
        ),
        409 => error(
            "invalid_request_error",
            "There is currently another in-progress request using this Idempotent Key. (injected by the fake)",
            Some("idempotency_key_in_use"),
            None,
        ),
        // Stripe answers auth failures as `invalid_request_error` with these messages.
        401 => error(
            "invalid_request_error",
            "Invalid API Key provided: sk_test_********fake (injected by the fake)",
            None,
            None,
        ),
        403 => error(
            "invalid_request_error",
            "The provided key 'rk_test_********fake' does not have the required permissions for \
             this endpoint on account 'acct_fake'. (injected by the fake)",
            None,
            None,
        ),
        s if s >= 500 => error(
            "api_error",
            "An unknown error occurred (injected by the fake).",
            None,
            None,
        ),
        _ => error("invalid_request_error", "Injected failure.", None, None),
    };
    (status, body, should_retry)
}

/// The `/v1/…` entry point. Handling runs in its own task so that, like real Stripe, a request
/// whose client gave up (timeout during a [`Fault::Delay`]) is still processed.
async fn api(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tokio::spawn(handle_api(shared, method, uri, headers, body))
        .await
        .unwrap_or_else(|e| {
            json_response(
                500,
                &error(
                    "api_error",
                    &format!("fake stripe handler failed: {e}"),
                    None,
                    None,
                )
                .to_string(),
                &[],
            )
        })
}

async fn handle_api(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let raw_query = uri.query().unwrap_or_default().to_owned();
    let query = decode(raw_query.as_bytes());
    let form = decode(&body);
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_id = format!("req_fake{:x}", now() ^ (body.len() as i64));
    let mut record = RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        raw_query,
        idempotency_key: idempotency_key.clone(),
        form: form.clone(),
        raw_body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
        replayed: false,
        faulted: false,
    };
    let finish = |mut record: RecordedRequest,
                  status: u16,
                  body: String,
                  extra: Vec<(&'static str, String)>| {
        record.status = status;
        shared.lock().requests.push(record);
        json_response(status, &body, &extra)
    };

    // Auth.
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let expected = format!("Bearer {}", shared.secret_key);
    if auth != Some(expected.as_str()) {
        let message = match auth {
            None => "You did not provide an API key. You need to provide your API key in the \
                     Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
                .to_owned(),
            Some(a) => {
                let key = a.trim_start_matches("Bearer ");
                let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
                format!("Invalid API Key provided: sk_test_********{tail}")
            }
        };
        let body = error("invalid_request_error", &message, None, None).to_string();
        return finish(record, 401, body, vec![("request-id", request_id)]);
    }

    // Faults.
    let fault = shared.lock().take_fault(method.as_str(), &path);
    match fault {
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Status(s)) | Some(Fault::StatusWithRetryHeader(s, _)) => {
            let retry = match fault {
                Some(Fault::StatusWithRetryHeader(_, r)) => Some(r),
                _ => None,
            };
            let (status, body, should_retry) = fault_reply(s, retry);
            record.faulted = true;
            return finish(
                record,
                status,
                body.to_string(),
                vec![
                    ("request-id", request_id),
                    ("stripe-should-retry", should_retry.to_string()),
                ],
            );
        }
        None => {}
    }

    // Idempotency + handling, atomically.
    let base = shared.base_url.clone();
    let (status, body, events, extra) = {
        let mut state = shared.lock();
        let key = idempotency_key.filter(|_| method == Method::POST);
        let stored = key.as_ref().and_then(|k| state.idempotency.get(k).cloned());
        match (key, stored) {
            (Some(k), Some(entry)) => {
                if entry.path != path || entry.method != method.as_str() {
                    let msg = format!(
                        "Keys for idempotent requests can only be used for the same endpoint they \
                         were first used for ('{}' vs '{}'). Try using a key other than '{k}' if \
                         you meant to execute a different request.",
                        entry.path, path
                    );
                    (
                        400,
                        error("idempotency_error", &msg, None, None).to_string(),
                        vec![],
                        vec![],
                    )
                } else if entry.params != form {
                    let msg = format!(
                        "Keys for idempotent requests can only be used with the same parameters \
                         they were first used with. Try using a key other than '{k}' if you meant \
                         to execute a different request."
                    );
                    (
                        400,
                        error("idempotency_error", &msg, None, None).to_string(),
                        vec![],
                        vec![],
                    )
                } else {
                    record.replayed = true;
                    (
                        entry.status,
                        entry.body,
                        vec![],
                        vec![("idempotent-replayed", "true".to_owned())],
                    )
                }
            }
            (key, _) => {
                let reply = match dispatch(&mut state, &base, &method, &path, &query, &form) {
                    Ok(r) | Err(r) => r,
                };
                let body = reply.body.to_string();
                if let Some(k) = key
                    && (200..300).contains(&reply.status)
                {
                    state.idempotency.insert(
                        k,
                        IdempotentEntry {
                            method: method.to_string(),
                            path: path.clone(),
                            params: form.clone(),
                            status: reply.status,
                            body: body.clone(),
                        },
                    );
                }
                (reply.status, body, reply.events, vec![])
            }
        }
    };
    if !events.is_empty() {
        let shared = shared.clone();
        tokio::spawn(async move {
            webhook::deliver(&shared, events).await;
        });
    }
    let mut extra = extra;
    extra.push(("request-id", request_id));
    if status == 200 && record.idempotency_key.is_some() && method == Method::POST {
        extra.push((
            "idempotency-key",
            record.idempotency_key.clone().unwrap_or_default(),
        ));
    }
    finish(record, status, body, extra)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /checkout/pay/{id}`: a minimal hosted checkout page with a "Pay" button.
async fn pay_page(AxState(shared): AxState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    let Some(s) = state.sessions.iter().find(|s| s.id == id) else {
        return (StatusCode::NOT_FOUND, "no such checkout session").into_response();
    };
    Html(format!(
        "<!doctype html><title>Fake Stripe Checkout</title><h1>Fake Stripe Checkout</h1>\
         <p id=\"session\">{}</p><p id=\"status\">{}</p><p id=\"amount\">{} {}</p>\
         <form method=\"post\"><button type=\"submit\">Pay</button></form>",
        escape(&s.id),
        escape(&s.status),
        s.amount_total,
        escape(&s.currency.to_uppercase()),
    ))
    .into_response()
}

/// `POST /checkout/pay/{id}`: completes the session (sending its webhooks) and redirects to the
/// success URL (`{CHECKOUT_SESSION_ID}` substituted).
async fn pay_submit(AxState(shared): AxState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let result = shared.lock().complete_checkout(&id, false);
    match result {
        Ok(events) => {
            webhook::deliver(&shared, events).await;
            let success = shared
                .lock()
                .sessions
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.success_url.clone())
                .unwrap_or_default()
                .replace("{CHECKOUT_SESSION_ID}", &id);
            Redirect::to(&success).into_response()
        }
        Err(e) => (StatusCode::CONFLICT, e).into_response(),
    }
}

/// `GET /billing_portal/{id}`: a minimal hosted Billing Portal page.
async fn portal_page(AxState(shared): AxState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    let Some(p) = state.portal_sessions.iter().find(|p| p.id == id) else {
        return (StatusCode::NOT_FOUND, "no such billing portal session").into_response();
    };
    Html(format!(
        "<!doctype html><title>Fake Stripe Billing Portal</title><h1>Fake Stripe Billing \
         Portal</h1><p id=\"session\">{}</p><p id=\"customer\">{}</p>",
        escape(&p.id),
        escape(&p.customer),
    ))
    .into_response()
}

/// `GET /invoice/{id}`: a minimal hosted invoice page.
async fn invoice_page(AxState(shared): AxState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    let Some(i) = state.invoices.iter().find(|i| i.id == id) else {
        return (StatusCode::NOT_FOUND, "no such invoice").into_response();
    };
    Html(format!(
        "<!doctype html><title>Fake Stripe Invoice</title><h1>Fake Stripe Invoice</h1>\
         <p id=\"invoice\">{}</p><p id=\"status\">{}</p><p id=\"amount\">{} {}</p>",
        escape(&i.id),
        escape(&i.status),
        i.amount_due,
        escape(&i.currency.to_uppercase()),
    ))
    .into_response()
}

/// The fake's router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/checkout/pay/{id}", get(pay_page).post(pay_submit))
        .route("/billing_portal/{id}", get(portal_page))
        .route("/invoice/{id}", get(invoice_page))
        .fallback(api)
        .with_state(shared)
}
