//! Webhook events: signing (`Stripe-Signature: t=…,v1=…`) and delivery to the configured URL.

use super::state::{Event, Shared, now};

/// The `Stripe-Signature` header for `body` signed with `secret` at `timestamp` (Unix
/// seconds): `t={timestamp},v1={hex(hmac_sha256(secret, "{timestamp}.{body}"))}`.
pub fn sign(body: &str, secret: &str, timestamp: i64) -> String {
    stripe_webhook::Webhook::generate_test_header(body, secret, Some(timestamp))
}

/// The outcome of posting one event to the webhook URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// `evt_…`.
    pub event_id: String,
    /// E.g. `checkout.session.completed`.
    pub event_type: String,
    /// The exact body posted.
    pub body: String,
    /// The `Stripe-Signature` header sent.
    pub signature: String,
    /// The receiver's HTTP status; `None` when nothing was sent (no URL set) or the
    /// connection failed (see `error`).
    pub status: Option<u16>,
    /// The receiver's response body.
    pub response_body: String,
    /// Why there is no status.
    pub error: Option<String>,
}

impl WebhookDelivery {
    /// `true` when the receiver answered 2xx.
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Posts `body` with `signature` to `url`, like Stripe's webhook sender.
pub(crate) async fn post(
    client: &reqwest::Client,
    url: Option<&str>,
    event_id: &str,
    event_type: &str,
    body: String,
    signature: String,
) -> WebhookDelivery {
    let mut delivery = WebhookDelivery {
        event_id: event_id.to_owned(),
        event_type: event_type.to_owned(),
        body,
        signature,
        status: None,
        response_body: String::new(),
        error: None,
    };
    let Some(url) = url else {
        delivery.error = Some("no webhook URL set".into());
        return delivery;
    };
    let sent = client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .header("stripe-signature", &delivery.signature)
        .body(delivery.body.clone())
        .send()
        .await;
    match sent {
        Ok(resp) => {
            delivery.status = Some(resp.status().as_u16());
            delivery.response_body = resp.text().await.unwrap_or_default();
        }
        Err(e) => delivery.error = Some(e.to_string()),
    }
    delivery
}

/// Signs each event with the fake's webhook secret at the current time and posts it, in order.
pub(crate) async fn deliver(shared: &Shared, events: Vec<Event>) -> Vec<WebhookDelivery> {
    let url = shared.lock().webhook_url.clone();
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let signature = sign(&event.body, &shared.webhook_secret, now());
        out.push(
            post(
                &shared.http,
                url.as_deref(),
                &event.id,
                &event.event_type,
                event.body,
                signature,
            )
            .await,
        );
    }
    out
}
