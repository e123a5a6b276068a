//! An in-process, stateful fake of the Stripe API for tests, speaking Stripe's real wire format
//! so that the real async-stripe 1.0.0-rc.10 client parses every answer.
//!
//! ```no_run
//! # async fn demo() {
//! use mcp_analytics_tests::fake_stripe::{FakeStripe, PriceKind};
//! let stripe = FakeStripe::start().await;
//! stripe.add_price("price_123", 500, "usd", PriceKind::OneTime);
//! // point the client at it:
//! // stripe::ClientBuilder::new(stripe.secret_key()).url(stripe.base_url()).build()
//! # }
//! ```
//!
//! Endpoints (`/v1`): `POST/GET customers`, `GET/DELETE customers/{id}`, `GET prices/{id}`,
//! `POST/GET checkout/sessions`, `GET checkout/sessions/{id}`,
//! `POST checkout/sessions/{id}/expire`, `GET subscriptions`, `GET subscriptions/{id}`
//! (`expand[]=latest_invoice`), `GET invoices/{id}`, `POST billing/meter_events`,
//! `GET billing/meters/{id}`, `POST billing_portal/sessions`. Every `/v1` request needs
//! `Authorization: Bearer {secret_key}` (else 401); POSTs honour `Idempotency-Key` (replay of
//! the first successful answer with `Idempotent-Replayed: true`; same key with other
//! parameters or another endpoint → 400 `idempotency_error`); lists are newest first with
//! `limit` (≤ 100), `starting_after`, `ending_before`, `has_more`. Errors are always Stripe JSON
//! errors; an unknown or deleted customer named anywhere (`customer`, a list's `customer`
//! filter, a meter event's `payload[stripe_customer_id]`) is 400 `resource_missing`
//! `No such customer: 'cus_…'`. A meter event needs an active meter with its `event_name`.
//! Hosted pages: `GET {base}checkout/pay/{id}` shows the session and `POST` to it pays like
//! [`FakeStripe::complete_checkout`] and redirects to the success URL;
//! `GET {base}billing_portal/{id}` and `GET {base}invoice/{id}` (an invoice's
//! `hosted_invoice_url`) show the portal session and the invoice.

mod controls;
mod endpoints;
pub mod form;
mod objects;
mod routes;
mod state;
mod webhook;

use std::sync::{Arc, Mutex};

use serde_json::Value;

pub use objects::API_VERSION;
pub use state::{
    CheckoutSession, Customer, Event, Fault, FaultRule, Invoice, LineItem, Meter, MeterEvent,
    PortalSession, Price, PriceKind, RecordedRequest, Subscription, SubscriptionItem,
};
pub use webhook::{WebhookDelivery, sign};

use state::{Shared, State, now};

/// The default secret key the fake accepts.
pub const SECRET_KEY: &str = "sk_test_fake_51FakeStripeSecretKey";
/// The default webhook signing secret.
pub const WEBHOOK_SECRET: &str = "whsec_fake_webhook_signing_secret";

/// A running fake Stripe (axum on `127.0.0.1`, random port). Dropping it stops the server.
#[derive(Debug)]
pub struct FakeStripe {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeStripe {
    /// Starts the fake on `127.0.0.1:0` with [`SECRET_KEY`] and [`WEBHOOK_SECRET`].
    ///
    /// # Panics
    /// If the listener cannot be bound.
    pub async fn start() -> Self {
        Self::start_with(SECRET_KEY, WEBHOOK_SECRET).await
    }

    /// Starts the fake with the given secret key and webhook signing secret.
    ///
    /// # Panics
    /// If the listener cannot be bound.
    pub async fn start_with(secret_key: &str, webhook_secret: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake stripe");
        let addr = listener.local_addr().expect("local addr");
        let base_url = format!("http://{addr}/");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                base_url: base_url.clone(),
                ..State::default()
            }),
            base_url,
            secret_key: secret_key.to_owned(),
            webhook_secret: webhook_secret.to_owned(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("webhook http client"),
        });
        let app = routes::router(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { shared, server }
    }

    /// `http://127.0.0.1:PORT/`, for `stripe::ClientBuilder::url`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The secret key the fake accepts (`Authorization: Bearer …`).
    pub fn secret_key(&self) -> &str {
        &self.shared.secret_key
    }

    /// The webhook signing secret (`whsec_…`).
    pub fn webhook_secret(&self) -> &str {
        &self.shared.webhook_secret
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }

    // ---- catalogue -------------------------------------------------------------------------

    /// Adds (or replaces) a price. A metered price references (`recurring.meter`) the active
    /// meter with its event name, created if missing.
    pub fn add_price(&self, id: &str, unit_amount: i64, currency: &str, kind: PriceKind) {
        let mut st = self.state();
        let meter = match &kind {
            PriceKind::Metered { meter } => Some(st.ensure_meter(meter)),
            _ => None,
        };
        let product = format!("prod_fake_{}", id.trim_start_matches("price_"));
        st.prices.retain(|p| p.id != id);
        st.prices.push(Price {
            id: id.to_owned(),
            unit_amount,
            currency: currency.to_ascii_lowercase(),
            kind,
            product,
            meter,
            created: now(),
        });
    }

    /// Adds an active billing meter accepting meter events named `event_name` (or finds the
    /// active one); returns its id (`mtr_…`).
    pub fn add_meter(&self, event_name: &str) -> String {
        self.state().ensure_meter(event_name)
    }

    /// Renames a meter's `event_name` (prices keep referencing it by id): events with the old
    /// name are then refused like Stripe refuses an unknown event name.
    ///
    /// # Panics
    /// If the meter does not exist.
    pub fn rename_meter(&self, meter_id: &str, event_name: &str) {
        let mut st = self.state();
        let m = st.meter_mut(meter_id).expect("no such meter");
        m.event_name = event_name.to_owned();
        m.updated = now();
    }

    /// Deactivates a meter (`status=inactive`): it accepts no more meter events.
    ///
    /// # Panics
    /// If the meter does not exist.
    pub fn deactivate_meter(&self, meter_id: &str) {
        let mut st = self.state();
        let m = st.meter_mut(meter_id).expect("no such meter");
        let t = now();
        m.status = "inactive".into();
        m.deactivated_at = Some(t);
        m.updated = t;
    }

    /// Adds a customer directly (no request recorded); returns its id.
    pub fn add_customer(&self, email: Option<&str>, metadata: &[(&str, &str)]) -> String {
        let mut st = self.state();
        let id = st.next_id("cus");
        st.customers.push(Customer {
            id: id.clone(),
            email: email.map(str::to_owned),
            name: None,
            metadata: metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            created: now(),
            deleted: false,
        });
        id
    }

    /// Deletes a customer as from the Dashboard: its live subscriptions are canceled
    /// (`customer.subscription.deleted` each) and `customer.deleted` is sent. Afterwards every
    /// request naming it answers 400 `resource_missing` (`No such customer: 'cus_…'`), and
    /// `GET /v1/customers/{id}` the deleted stub.
    ///
    /// # Panics
    /// If the customer does not exist or is already deleted.
    pub async fn delete_customer(&self, customer_id: &str) -> Vec<WebhookDelivery> {
        let events = self.control(self.state().delete_customer(customer_id));
        webhook::deliver(&self.shared, events).await
    }

    // ---- webhooks --------------------------------------------------------------------------

    /// Where events are posted (e.g. `http://127.0.0.1:X/stripe/webhook`).
    pub fn set_webhook_url(&self, url: &str) {
        self.state().webhook_url = Some(url.to_owned());
    }

    /// Stops posting events; they are still generated and kept ([`FakeStripe::events`]).
    pub fn clear_webhook_url(&self) {
        self.state().webhook_url = None;
    }

    /// A signed event of `event_type` wrapping `object`, not delivered: `(body, Stripe-Signature
    /// header)` signed now with the webhook secret.
    pub fn signed_event(&self, event_type: &str, object: Value) -> (String, String) {
        let event = self.state().emit(event_type, object, None);
        let header = sign(&event.body, self.webhook_secret(), now());
        (event.body, header)
    }

    /// A `Stripe-Signature` header for `body` with any secret and timestamp (forged or stale
    /// signatures).
    pub fn sign_with(&self, body: &str, secret: &str, timestamp: i64) -> String {
        sign(body, secret, timestamp)
    }

    /// Posts `body` with the `signature` header to the webhook URL as is.
    pub async fn post_webhook(&self, body: &str, signature: &str) -> WebhookDelivery {
        let url = self.state().webhook_url.clone();
        let id = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| Some((v["id"].as_str()?.to_owned(), v["type"].as_str()?.to_owned())));
        let (id, ty) = id.unwrap_or_default();
        webhook::post(
            &self.shared.http,
            url.as_deref(),
            &id,
            &ty,
            body.to_owned(),
            signature.to_owned(),
        )
        .await
    }

    /// Sends an already generated event again (a duplicate delivery), freshly signed.
    ///
    /// # Panics
    /// If no event has this id.
    pub async fn redeliver(&self, event_id: &str) -> WebhookDelivery {
        let event = self
            .state()
            .events
            .iter()
            .find(|e| e.id == event_id)
            .cloned()
            .unwrap_or_else(|| panic!("no such event: {event_id}"));
        webhook::deliver(&self.shared, vec![event]).await.remove(0)
    }

    /// Every event generated so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.state().events.clone()
    }

    // ---- payer / billing engine controls ---------------------------------------------------

    fn control(&self, result: Result<Vec<Event>, String>) -> Vec<Event> {
        result.unwrap_or_else(|e| panic!("fake stripe: {e}"))
    }

    /// Pays an open session: `status=complete`, `payment_status=paid` (`no_payment_required`
    /// when the total is 0, e.g. metered-only). Subscription mode creates an active
    /// subscription (the session's prices, `subscription_data[metadata]`) with a paid first
    /// invoice and sets `session.subscription`. Sends `checkout.session.completed` (then
    /// `customer.subscription.created` and `invoice.paid` for subscriptions) and returns the
    /// deliveries in that order.
    ///
    /// # Panics
    /// If the session does not exist or is not open.
    pub async fn complete_checkout(&self, session_id: &str) -> Vec<WebhookDelivery> {
        let events = self.control(self.state().complete_checkout(session_id, false));
        webhook::deliver(&self.shared, events).await
    }

    /// Completes an open session paid with a delayed method (SEPA Debit, ACH): `status=complete`
    /// but `payment_status=unpaid` while the payment is processing; payment mode gets its
    /// payment intent now. Subscription mode creates an `incomplete` subscription whose first
    /// invoice is `open`. Sends `checkout.session.completed` (then
    /// `customer.subscription.created` for subscriptions). Settle it with
    /// [`FakeStripe::async_payment_succeeded`] or [`FakeStripe::async_payment_failed`].
    ///
    /// # Panics
    /// If the session does not exist, is not open, or has nothing to pay.
    pub async fn complete_checkout_pending(&self, session_id: &str) -> Vec<WebhookDelivery> {
        let events = self.control(self.state().complete_checkout(session_id, true));
        webhook::deliver(&self.shared, events).await
    }

    /// The delayed payment of a [`FakeStripe::complete_checkout_pending`] session succeeds:
    /// `payment_status=paid` and `checkout.session.async_payment_succeeded`; for a
    /// subscription, its first invoice is paid and it becomes `active`
    /// (`customer.subscription.updated` with `previous_attributes.status=incomplete`, then
    /// `invoice.paid`).
    ///
    /// # Panics
    /// If the session does not exist or is not awaiting a delayed payment.
    pub async fn async_payment_succeeded(&self, session_id: &str) -> Vec<WebhookDelivery> {
        let events = self.control(self.state().settle_async_payment(session_id, true));
        webhook::deliver(&self.shared, events).await
    }

    /// The delayed payment of a [`FakeStripe::complete_checkout_pending`] session fails: the
    /// session stays `complete` + `unpaid`, `checkout.session.async_payment_failed` is sent
    /// (then `invoice.payment_failed` for a subscription, which stays `incomplete`).
    ///
    /// # Panics
    /// If the session does not exist or is not awaiting a delayed payment.
    pub async fn async_payment_failed(&self, session_id: &str) -> Vec<WebhookDelivery> {
        let events = self.control(self.state().settle_async_payment(session_id, false));
        webhook::deliver(&self.shared, events).await
    }

    /// Refunds `amount` (all when `None`) of a paid one-time session and sends
    /// `refund.created`.
    ///
    /// # Panics
    /// If the session does not exist or has no payment.
    pub async fn refund_checkout(
        &self,
        session_id: &str,
        amount: Option<i64>,
    ) -> Vec<WebhookDelivery> {
        let events = self.control(self.state().refund_checkout(session_id, amount));
        webhook::deliver(&self.shared, events).await
    }

    /// Disputes the whole payment of a paid one-time session: `needs_response` sends
    /// `charge.dispute.created`, `won` or `lost` sends `charge.dispute.closed`.
    ///
    /// # Panics
    /// If the session does not exist or has no payment.
    pub async fn dispute_checkout(&self, session_id: &str, status: &str) -> Vec<WebhookDelivery> {
        let events = self.control(self.state().dispute_checkout(session_id, status));
        webhook::deliver(&self.shared, events).await
    }

    /// Moves a session's `expires_at` (Unix seconds), to test what happens near its end.
    ///
    /// # Panics
    /// If the session does not exist.
    pub fn set_checkout_expires_at(&self, session_id: &str, expires_at: i64) {
        self.state()
            .session_mut(session_id)
            .expect("no such checkout session")
            .expires_at = expires_at;
    }

    /// Expires an open session and sends `checkout.session.expired`.
    ///
    /// # Panics
    /// If the session does not exist or is not open.
    pub async fn expire_checkout(&self, session_id: &str) -> Vec<WebhookDelivery> {
        let events = self.control(self.state().expire_checkout(session_id));
        webhook::deliver(&self.shared, events).await
    }

    /// Cancels a subscription (`status=canceled`) and sends `customer.subscription.deleted`.
    ///
    /// # Panics
    /// If the subscription does not exist or is already canceled.
    pub async fn cancel_subscription(&self, subscription_id: &str) -> Vec<WebhookDelivery> {
        self.update_subscription_status(subscription_id, "canceled")
            .await
    }

    /// Sets a subscription's status (`past_due`, `unpaid`, `active`, …) and sends
    /// `customer.subscription.updated` (`previous_attributes.status` = the old one);
    /// `canceled` behaves like [`FakeStripe::cancel_subscription`]. `past_due`, `unpaid` and
    /// `incomplete` make sure the subscription's `latest_invoice` is `open` (creating one for
    /// the current period, without an event, unless it already is), with its
    /// `hosted_invoice_url`.
    ///
    /// # Panics
    /// If the subscription does not exist or is already canceled.
    pub async fn update_subscription_status(
        &self,
        subscription_id: &str,
        status: &str,
    ) -> Vec<WebhookDelivery> {
        let events = self.control(
            self.state()
                .set_subscription_status(subscription_id, status),
        );
        webhook::deliver(&self.shared, events).await
    }

    /// A failed renewal: an `open` invoice for the subscription and `invoice.payment_failed`.
    /// The subscription's status is unchanged (follow with
    /// [`FakeStripe::update_subscription_status`] `past_due` to model dunning).
    ///
    /// # Panics
    /// If the subscription does not exist.
    pub async fn fail_invoice(&self, subscription_id: &str) -> Vec<WebhookDelivery> {
        let events = self.control(self.state().renewal_invoice(subscription_id, false));
        webhook::deliver(&self.shared, events).await
    }

    /// A successful renewal: a paid invoice, the period advanced, and `invoice.paid`.
    ///
    /// # Panics
    /// If the subscription does not exist.
    pub async fn renew_subscription(&self, subscription_id: &str) -> Vec<WebhookDelivery> {
        let events = self.control(self.state().renewal_invoice(subscription_id, true));
        webhook::deliver(&self.shared, events).await
    }

    // ---- faults ----------------------------------------------------------------------------

    /// Adds a fault rule (checked in insertion order; the first match applies).
    pub fn inject(&self, rule: FaultRule) {
        self.state().faults.push(rule);
    }

    /// The next `times` `/v1` requests (any path) fail with `fault`.
    pub fn fail_next(&self, fault: Fault, times: usize) {
        self.inject(FaultRule::new(fault).times(times));
    }

    /// While `down`, every `/v1` request answers 500 `api_error` (`Stripe-Should-Retry: true`).
    pub fn set_outage(&self, down: bool) {
        let mut st = self.state();
        let outage = FaultRule::new(Fault::Status(500));
        st.faults.retain(|r| r != &outage);
        if down {
            st.faults.insert(0, outage);
        }
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    // ---- inspection ------------------------------------------------------------------------

    /// Every `/v1` request received, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// How many `/v1` requests had this method and exact path.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .count()
    }

    /// All customers, oldest first.
    pub fn customers(&self) -> Vec<Customer> {
        self.state().customers.clone()
    }

    /// All prices.
    pub fn prices(&self) -> Vec<Price> {
        self.state().prices.clone()
    }

    /// All Checkout Sessions, oldest first.
    pub fn checkout_sessions(&self) -> Vec<CheckoutSession> {
        self.state().sessions.clone()
    }

    /// One Checkout Session.
    pub fn checkout_session(&self, id: &str) -> Option<CheckoutSession> {
        self.state().sessions.iter().find(|s| s.id == id).cloned()
    }

    /// All subscriptions, oldest first.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.state().subscriptions.clone()
    }

    /// One subscription.
    pub fn subscription(&self, id: &str) -> Option<Subscription> {
        self.state()
            .subscriptions
            .iter()
            .find(|s| s.id == id)
            .cloned()
    }

    /// All invoices, oldest first.
    pub fn invoices(&self) -> Vec<Invoice> {
        self.state().invoices.clone()
    }

    /// All billing meters, oldest first.
    pub fn meters(&self) -> Vec<Meter> {
        self.state().meters.clone()
    }

    /// All Billing Portal sessions created, oldest first.
    pub fn portal_sessions(&self) -> Vec<PortalSession> {
        self.state().portal_sessions.clone()
    }

    /// Accepted meter events (duplicates by `identifier` are not in here), oldest first.
    pub fn meter_events(&self) -> Vec<MeterEvent> {
        self.state().meter_events.clone()
    }

    /// Sum of the accepted meter events' values for `event_name` and `customer`.
    pub fn meter_total(&self, event_name: &str, customer: &str) -> f64 {
        self.state()
            .meter_events
            .iter()
            .filter(|e| e.event_name == event_name && e.customer == customer)
            .filter_map(|e| e.value.parse::<f64>().ok())
            .sum()
    }

    /// The Stripe JSON of a Checkout Session (e.g. to forge events with [`Self::signed_event`]).
    pub fn checkout_session_json(&self, id: &str) -> Option<Value> {
        let st = self.state();
        st.sessions
            .iter()
            .find(|s| s.id == id)
            .map(objects::checkout_session)
    }

    /// The Stripe JSON of a subscription.
    pub fn subscription_json(&self, id: &str) -> Option<Value> {
        let st = self.state();
        st.subscriptions
            .iter()
            .find(|s| s.id == id)
            .map(|s| objects::subscription(&st, s))
    }

    /// The Stripe JSON of an invoice.
    pub fn invoice_json(&self, id: &str) -> Option<Value> {
        let st = self.state();
        st.invoices
            .iter()
            .find(|i| i.id == id)
            .map(|i| objects::invoice(&st, i))
    }
}
