//! HTTP endpoints of payments: Stripe's webhook (`POST /stripe/webhook`) and the local test
//! provider's checkout page (`GET`/`POST /pay/{id}`).

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};

use super::{
    Payments,
    pages::{Page, PageBody},
};

/// The payments router (mounted at the root by `serve::http`): the checkout pages, which no
/// key protects, answer to loopback names and `hosts` only, and to same-origin posts.
pub(crate) fn router(payments: Payments, hosts: &[String]) -> Router {
    let mut allowed: Vec<String> = crate::guard::LOOPBACK_HOSTS
        .iter()
        .map(|host| (*host).to_owned())
        .collect();
    allowed.extend(hosts.iter().cloned());
    let pages = Router::new()
        .route("/pay/{id}", get(pay_page).post(pay))
        .with_state(payments.clone());
    Router::new()
        .route("/stripe/webhook", post(webhook))
        .with_state(payments)
        .merge(crate::guard::browser(pages, Some(&allowed)))
}

#[cfg(feature = "stripe")]
async fn webhook(
    State(payments): State<Payments>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(core) = payments.core() else {
        return (StatusCode::NOT_FOUND, "payments are not configured").into_response();
    };
    let signature = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    let answer = core.webhooks.receive(signature, &body).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, answer.body).into_response()
}

#[cfg(not(feature = "stripe"))]
async fn webhook() -> Response {
    (StatusCode::NOT_FOUND, "built without the `stripe` feature").into_response()
}

async fn pay_page(State(payments): State<Payments>, Path(id): Path<String>) -> Response {
    answer(payments.checkout_page(&id).await)
}

async fn pay(State(payments): State<Payments>, Path(id): Path<String>) -> Response {
    answer(payments.pay_test_checkout(&id).await)
}

fn answer(page: Page) -> Response {
    let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match page.body {
        PageBody::Html(html) => (status, Html(html)).into_response(),
        PageBody::Text(text) => (status, text).into_response(),
    }
}
