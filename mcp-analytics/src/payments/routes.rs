//! HTTP endpoints of payments: Stripe's webhook (`POST /stripe/webhook`) and the local test
//! provider's checkout page (`GET`/`POST /pay/{id}`).

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};

use super::{Payments, now_ms, provider::local};

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

/// The Stripe events that change what users hold or have paid.
#[cfg(feature = "stripe")]
const HANDLED: [&str; 12] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.expired",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "refund.created",
    "refund.updated",
    "charge.dispute.created",
    "charge.dispute.closed",
];

#[cfg(feature = "stripe")]
async fn webhook(
    State(payments): State<Payments>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use stripe_webhook::{EventObject, Webhook, WebhookError};

    use super::{fulfil::SubscriptionChange, provider::stripe, store::PaymentEventKind};

    let Some(inner) = payments.inner() else {
        return (StatusCode::NOT_FOUND, "payments are not configured").into_response();
    };
    let Some(secret) = &inner.webhook_secret else {
        return (StatusCode::NOT_FOUND, "STRIPE_WEBHOOK_SECRET is not set").into_response();
    };
    let Ok(payload) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not UTF-8").into_response();
    };
    let Some(signature) = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return (StatusCode::BAD_REQUEST, "missing Stripe-Signature").into_response();
    };
    let event = match Webhook::construct_event(payload, signature, secret) {
        Ok(event) => event,
        // The signature was valid (it is checked first) but the object has a shape we do
        // not model (another API version?). An event that changes what users hold is not
        // dropped: 500 keeps it in Stripe's retries and its dashboard shows the failure.
        // Anything else is acknowledged so Stripe stops resending it.
        Err(WebhookError::BadParse(reason)) => {
            let kind = serde_json::from_str::<serde_json::Value>(payload)
                .ok()
                .and_then(|event| event["type"].as_str().map(str::to_owned))
                .unwrap_or_default();
            if HANDLED.contains(&kind.as_str()) {
                tracing::error!(
                    kind,
                    "a signed Stripe `{kind}` event cannot be read: {reason}"
                );
                return (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the event")
                    .into_response();
            }
            tracing::warn!("Stripe webhook with a valid signature ignored: {reason}");
            return (StatusCode::OK, "ignored").into_response();
        }
        Err(error) => {
            tracing::warn!("Stripe webhook rejected: {error}");
            return (StatusCode::BAD_REQUEST, format!("rejected: {error}")).into_response();
        }
    };
    let event_id = event.id.as_str().to_owned();
    let kind = event.type_.as_str().to_owned();
    match inner.store().webhook_applied(&event_id) {
        Ok(false) => {}
        Ok(true) => return (StatusCode::OK, "duplicate").into_response(),
        Err(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "payment store unavailable",
            )
                .into_response();
        }
    }
    let handled =
        match &event.data.object {
            EventObject::CheckoutSessionCompleted(session)
            | EventObject::CheckoutSessionAsyncPaymentSucceeded(session) => {
                inner.fulfil(&stripe::checkout_info(session)).map(drop)
            }
            EventObject::CheckoutSessionExpired(session) => {
                inner.expire(&stripe::checkout_info(session))
            }
            EventObject::CustomerSubscriptionCreated(sub) => inner
                .apply_subscription(&stripe::subscription_info(sub), SubscriptionChange::Created),
            EventObject::CustomerSubscriptionUpdated(sub) => inner
                .apply_subscription(&stripe::subscription_info(sub), SubscriptionChange::Updated),
            EventObject::CustomerSubscriptionDeleted(sub) => inner
                .apply_subscription(&stripe::subscription_info(sub), SubscriptionChange::Deleted),
            EventObject::InvoicePaid(invoice) | EventObject::InvoicePaymentFailed(invoice) => {
                let paid = matches!(&event.data.object, EventObject::InvoicePaid(_));
                let (kind, amount) = if paid {
                    (PaymentEventKind::InvoicePaid, invoice.amount_paid)
                } else {
                    (PaymentEventKind::PaymentFailed, invoice.amount_due)
                };
                inner.invoice(
                    kind,
                    invoice.id.as_ref().map(|id| id.as_str()),
                    invoice.subscription.as_ref().map(|s| s.id().as_str()),
                    invoice.customer.as_ref().map(|c| c.id().as_str()),
                    amount,
                    &invoice.currency.to_string(),
                )
            }
            EventObject::RefundCreated(refund) | EventObject::RefundUpdated(refund) => {
                let status = refund.status.as_deref().unwrap_or("");
                match &refund.payment_intent {
                    // A failed or canceled refund gives nothing back.
                    Some(intent) if matches!(status, "succeeded" | "pending") => inner.refund(
                        refund.id.as_str(),
                        intent.id().as_str(),
                        refund.amount,
                        &refund.currency.to_string(),
                    ),
                    _ => Ok(()),
                }
            }
            EventObject::ChargeDisputeCreated(dispute)
            | EventObject::ChargeDisputeClosed(dispute) => {
                let closed = matches!(&event.data.object, EventObject::ChargeDisputeClosed(_));
                let won = dispute.status == stripe_shared::DisputeStatus::Won;
                match &dispute.payment_intent {
                    // Opened: taken back. Closed: only a win is news (the money returns).
                    Some(intent) if !closed || won => inner.dispute(
                        dispute.id.as_str(),
                        intent.id().as_str(),
                        dispute.amount,
                        &dispute.currency.to_string(),
                        won,
                    ),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        };
    // Marked only once applied: a failure answers 500 and Stripe delivers the event again.
    let handled = handled.and_then(|()| {
        inner
            .store()
            .mark_webhook_applied(&event_id, &kind, now_ms())
    });
    match handled {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(error) => {
            tracing::error!(event = %event_id, "cannot apply Stripe event: {error}");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot apply the event").into_response()
        }
    }
}

#[cfg(not(feature = "stripe"))]
async fn webhook() -> Response {
    (StatusCode::NOT_FOUND, "built without the `stripe` feature").into_response()
}

async fn pay_page(State(payments): State<Payments>, Path(id): Path<String>) -> Response {
    render(&payments, &id, None)
}

async fn pay(State(payments): State<Payments>, Path(id): Path<String>) -> Response {
    let Some(inner) = payments.inner() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(provider) = inner.provider.as_local() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let prices = inner
        .store()
        .checkout_owner(&id)
        .ok()
        .flatten()
        .map(|(_, tool, key, _)| {
            let pricing = inner.pricing.lock().unwrap_or_else(|e| e.into_inner());
            pricing
                .get(tool.as_str())
                .map(|p| {
                    p.line_items
                        .iter()
                        .map(|(price, _)| price.clone())
                        .collect()
                })
                .unwrap_or_else(|| vec![key])
        })
        .unwrap_or_default();
    let Some((session, subscription)) = provider.complete(&id, now_ms() / 1000, prices) else {
        return (StatusCode::NOT_FOUND, "no such checkout").into_response();
    };
    let result = inner.fulfil(&session).and_then(|_| match &subscription {
        Some(sub) => inner.apply_subscription(sub, super::fulfil::SubscriptionChange::Created),
        None => Ok(()),
    });
    match result {
        Ok(()) if session.status == "complete" => render(
            &payments,
            &id,
            Some("Test payment complete. Go back to your MCP client and call the tool again."),
        ),
        Ok(()) => render(&payments, &id, None),
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

fn render(payments: &Payments, id: &str, message: Option<&str>) -> Response {
    let Some(inner) = payments.inner() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(provider) = inner.provider.as_local() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(session) = provider.retrieve_checkout(id) else {
        return (StatusCode::NOT_FOUND, "no such checkout").into_response();
    };
    let tool = session
        .metadata
        .get("mcp_tool")
        .cloned()
        .unwrap_or_default();
    let reason = inner
        .pricing
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(tool.as_str())
        .map(|p| p.reason.clone())
        .unwrap_or_default();
    Html(local::page(&session, &reason, message)).into_response()
}
