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
    Payments, domain::CheckoutStatus, ledger::SubscriptionChange, now_ms, provider::local,
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
    render(&payments, &id, None).await
}

async fn pay(State(payments): State<Payments>, Path(id): Path<String>) -> Response {
    let Some(core) = payments.core() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(provider) = core.provider.as_local() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (session, subscription) = match provider.complete(&id, now_ms() / 1000).await {
        Ok(Some(completed)) => completed,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such checkout").into_response(),
        Err(error) => {
            tracing::error!("cannot complete the test payment: {error}");
            return (StatusCode::SERVICE_UNAVAILABLE, "cannot record the payment").into_response();
        }
    };
    let mut result = core.ledger.fulfil(&session).await.map(drop);
    if let (Ok(()), Some(sub)) = (&result, &subscription) {
        result = core
            .ledger
            .apply_subscription(sub, SubscriptionChange::Created)
            .await;
    }
    match result {
        Ok(()) if session.status == CheckoutStatus::Complete => {
            render(
                &payments,
                &id,
                Some("Test payment complete. Go back to your MCP client and call the tool again."),
            )
            .await
        }
        Ok(()) => render(&payments, &id, None).await,
        Err(error) => {
            tracing::error!("cannot record the test payment: {error}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot record the payment",
            )
                .into_response()
        }
    }
}

async fn render(payments: &Payments, id: &str, message: Option<&str>) -> Response {
    let Some(core) = payments.core() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(provider) = core.provider.as_local() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let session = match provider.retrieve_checkout(id).await {
        Ok(session) => session,
        Err(super::ProviderError::Missing(_)) => {
            return (StatusCode::NOT_FOUND, "no such checkout").into_response();
        }
        Err(error) => {
            tracing::error!("cannot show the test checkout: {error}");
            return (StatusCode::SERVICE_UNAVAILABLE, "payments are unavailable").into_response();
        }
    };
    let reason = session
        .metadata
        .get("mcp_tool")
        .and_then(|tool| core.pricing.get(tool))
        .map(|pricing| pricing.reason.clone())
        .unwrap_or_default();
    Html(local::page(&session, &reason, message)).into_response()
}
