//! The fake's mutable state: the Stripe objects it holds, the idempotency store, the request
//! log and the injected faults. Everything lives behind one mutex in [`Shared`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// What kind of price a [`Price`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PriceKind {
    /// A one-time price (`type=one_time`), for `mode=payment`.
    OneTime,
    /// A licensed monthly recurring price (`recurring.usage_type=licensed`).
    Recurring,
    /// A metered monthly recurring price billed by a meter with `event_name` = `meter`
    /// ([`super::FakeStripe::add_price`] reuses the active meter with that event name or
    /// creates one; the price then references the meter by id, [`Price::meter`]).
    Metered {
        /// The meter's `event_name` when the price was added.
        meter: String,
    },
}

/// A price known to the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    /// `price_…`.
    pub id: String,
    /// Amount in the currency's minor unit (per unit, or per metered unit).
    pub unit_amount: i64,
    /// Lower-case ISO currency.
    pub currency: String,
    /// One-time, recurring or metered.
    pub kind: PriceKind,
    /// The product id (`prod_…`).
    pub product: String,
    /// The billing meter (`mtr_…`) of a metered price (`recurring.meter`).
    pub meter: Option<String>,
    /// Creation time.
    pub created: i64,
}

impl Price {
    /// `true` for recurring and metered prices.
    pub fn is_recurring(&self) -> bool {
        !matches!(self.kind, PriceKind::OneTime)
    }

    /// `true` for metered prices.
    pub fn is_metered(&self) -> bool {
        matches!(self.kind, PriceKind::Metered { .. })
    }
}

/// A billing meter (sum of `payload[value]` per `payload[stripe_customer_id]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meter {
    /// `mtr_…`.
    pub id: String,
    /// The `event_name` meter events must carry.
    pub event_name: String,
    /// The display name.
    pub display_name: String,
    /// `active` or `inactive` (an inactive meter accepts no events).
    pub status: String,
    /// Creation time.
    pub created: i64,
    /// Last change.
    pub updated: i64,
    /// When it was deactivated.
    pub deactivated_at: Option<i64>,
}

impl Meter {
    /// `true` while the meter accepts events.
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// A customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// `cus_…`.
    pub id: String,
    /// The email, if given.
    pub email: Option<String>,
    /// The name, if given.
    pub name: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Creation time.
    pub created: i64,
    /// `true` once deleted (`DELETE /v1/customers/{id}`): Stripe then answers
    /// `resource_missing` wherever the customer is named.
    pub deleted: bool,
}

/// A Billing Portal session (`POST /v1/billing_portal/sessions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalSession {
    /// `bps_…`.
    pub id: String,
    /// The customer id.
    pub customer: String,
    /// `return_url`, if given.
    pub return_url: Option<String>,
    /// The hosted portal page, served by the fake at `{base}billing_portal/{id}`.
    pub url: String,
    /// The portal configuration (`bpc_…`).
    pub configuration: String,
    /// Creation time.
    pub created: i64,
}

/// One line item of a Checkout Session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineItem {
    /// The price id.
    pub price: String,
    /// The quantity (absent for metered prices).
    pub quantity: Option<u64>,
}

/// A Checkout Session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutSession {
    /// `cs_test_…`.
    pub id: String,
    /// `payment` or `subscription`.
    pub mode: String,
    /// `open`, `complete` or `expired`.
    pub status: String,
    /// `unpaid`, `paid` or `no_payment_required`.
    pub payment_status: String,
    /// The customer id, if any.
    pub customer: Option<String>,
    /// The prefill email, if any.
    pub customer_email: Option<String>,
    /// `client_reference_id`, if any.
    pub client_reference_id: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// `subscription_data[metadata]`, copied to the subscription on completion.
    pub subscription_metadata: BTreeMap<String, String>,
    /// The line items.
    pub line_items: Vec<LineItem>,
    /// `success_url`.
    pub success_url: Option<String>,
    /// `cancel_url`.
    pub cancel_url: Option<String>,
    /// Sum of the licensed line items.
    pub amount_total: i64,
    /// Currency of the line items.
    pub currency: String,
    /// Expiry time.
    pub expires_at: i64,
    /// Creation time.
    pub created: i64,
    /// The subscription created on completion (subscription mode).
    pub subscription: Option<String>,
    /// The payment intent created on completion (payment mode).
    pub payment_intent: Option<String>,
    /// `true` between a delayed-payment completion
    /// ([`super::FakeStripe::complete_checkout_pending`]) and its outcome
    /// ([`super::FakeStripe::async_payment_succeeded`] / [`super::FakeStripe::async_payment_failed`]).
    pub awaiting_payment: bool,
    /// The hosted page, served by the fake at `{base}checkout/pay/{id}`.
    pub url: String,
}

/// One item of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionItem {
    /// `si_…`.
    pub id: String,
    /// The price id.
    pub price: String,
    /// The quantity (absent for metered prices).
    pub quantity: Option<u64>,
}

/// A subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// `sub_…`.
    pub id: String,
    /// The customer id.
    pub customer: String,
    /// `active`, `past_due`, `unpaid`, `canceled`, `trialing`, `incomplete`, …
    pub status: String,
    /// The items.
    pub items: Vec<SubscriptionItem>,
    /// Metadata (from the session's `subscription_data[metadata]`).
    pub metadata: BTreeMap<String, String>,
    /// Creation time.
    pub created: i64,
    /// Start of the current period.
    pub current_period_start: i64,
    /// End of the current period.
    pub current_period_end: i64,
    /// The latest invoice id.
    pub latest_invoice: Option<String>,
    /// When it was canceled.
    pub canceled_at: Option<i64>,
    /// Currency.
    pub currency: String,
}

/// An invoice (only those the fake creates for subscriptions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    /// `in_…`.
    pub id: String,
    /// The customer id.
    pub customer: String,
    /// The subscription id.
    pub subscription: String,
    /// `paid` or `open`.
    pub status: String,
    /// Amount due.
    pub amount_due: i64,
    /// Amount paid.
    pub amount_paid: i64,
    /// Currency.
    pub currency: String,
    /// Payment attempts so far.
    pub attempt_count: u64,
    /// Creation time.
    pub created: i64,
    /// Billing period start.
    pub period_start: i64,
    /// Billing period end.
    pub period_end: i64,
    /// Lines: (price id, quantity, amount).
    pub lines: Vec<(String, Option<u64>, i64)>,
    /// The hosted invoice page, served by the fake at `{base}invoice/{id}`.
    pub hosted_invoice_url: String,
}

/// An accepted (not deduplicated away) billing meter event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterEvent {
    /// The meter's event name.
    pub event_name: String,
    /// The meter (`mtr_…`) that accepted it.
    pub meter: String,
    /// The identifier (given, or generated by the fake).
    pub identifier: String,
    /// The whole payload.
    pub payload: BTreeMap<String, String>,
    /// `payload[stripe_customer_id]`.
    pub customer: String,
    /// `payload[value]`.
    pub value: String,
    /// The event time.
    pub timestamp: i64,
    /// When the fake accepted it.
    pub created: i64,
}

/// One HTTP request the fake received on `/v1/…` (also those rejected by auth or faults).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, e.g. `/v1/customers`.
    pub path: String,
    /// The decoded query string (bracket notation nested, like [`RecordedRequest::form`]).
    pub query: Value,
    /// The raw query string.
    pub raw_query: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The decoded form body (bracket notation nested into objects/arrays).
    pub form: Value,
    /// The raw body.
    pub raw_body: String,
    /// The status the fake answered.
    pub status: u16,
    /// `true` when the answer was an idempotent replay.
    pub replayed: bool,
    /// `true` when an injected fault produced the answer.
    pub faulted: bool,
}

/// A failure the fake injects instead of (or before) handling a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a JSON Stripe error (`api_error` for 5xx, `rate_limit` for
    /// 429, `idempotency_key_in_use` for 409, otherwise `invalid_request_error`), with
    /// `Stripe-Should-Retry: true` for 409, 429 and 5xx and `false` otherwise. The request is
    /// not processed and nothing is stored under its idempotency key.
    Status(u16),
    /// Like [`Fault::Status`] but with an explicit `Stripe-Should-Retry` value.
    StatusWithRetryHeader(u16, bool),
    /// Wait this long, then process the request normally (a slow Stripe: a client that timed
    /// out has still caused the side effect, which an idempotent retry then replays).
    Delay(Duration),
}

/// Where and how often a [`Fault`] applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// How many matching requests it still applies to; `None` = until cleared.
    pub remaining: Option<usize>,
    /// Only requests with this method (`"POST"`), if set.
    pub method: Option<String>,
    /// Only requests whose path starts with this, if set.
    pub path_prefix: Option<String>,
}

impl FaultRule {
    /// A rule for every `/v1` request until cleared.
    pub fn new(fault: Fault) -> Self {
        Self {
            fault,
            remaining: None,
            method: None,
            path_prefix: None,
        }
    }

    /// Applies to the next `n` matching requests only.
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Applies only to `method` requests whose path starts with `path_prefix`.
    pub fn on(mut self, method: &str, path_prefix: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self.path_prefix = Some(path_prefix.to_owned());
        self
    }

    /// Applies only to requests whose path starts with `path_prefix` (any method).
    pub fn path(mut self, path_prefix: &str) -> Self {
        self.path_prefix = Some(path_prefix.to_owned());
        self
    }

    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining != Some(0)
            && self.method.as_deref().is_none_or(|m| m == method)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

/// A stored first response for an `Idempotency-Key`.
#[derive(Clone, Debug)]
pub(crate) struct IdempotentEntry {
    pub method: String,
    pub path: String,
    pub params: Value,
    pub status: u16,
    pub body: String,
}

/// One event the fake generated (and possibly delivered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// E.g. `checkout.session.completed`.
    pub event_type: String,
    /// The exact JSON body sent.
    pub body: String,
}

/// Everything the fake holds.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub counter: u64,
    pub customers: Vec<Customer>,
    pub prices: Vec<Price>,
    pub meters: Vec<Meter>,
    pub sessions: Vec<CheckoutSession>,
    pub subscriptions: Vec<Subscription>,
    pub invoices: Vec<Invoice>,
    pub meter_events: Vec<MeterEvent>,
    pub portal_sessions: Vec<PortalSession>,
    pub idempotency: HashMap<String, IdempotentEntry>,
    pub requests: Vec<RecordedRequest>,
    pub faults: Vec<FaultRule>,
    pub events: Vec<Event>,
    pub webhook_url: Option<String>,
    /// `http://127.0.0.1:PORT/`, for hosted page URLs.
    pub base_url: String,
}

impl State {
    /// A fresh id with `prefix` (`cus`, `cs_test`, …), unique within this fake.
    pub fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_fake{:010}", self.counter)
    }

    pub fn price(&self, id: &str) -> Option<&Price> {
        self.prices.iter().find(|p| p.id == id)
    }

    /// A customer that exists and is not deleted.
    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customers.iter().find(|c| c.id == id && !c.deleted)
    }

    /// The active meter accepting `event_name`.
    pub fn active_meter(&self, event_name: &str) -> Option<&Meter> {
        self.meters
            .iter()
            .find(|m| m.event_name == event_name && m.is_active())
    }

    /// The active meter for `event_name`, created if missing; returns its id.
    pub fn ensure_meter(&mut self, event_name: &str) -> String {
        if let Some(m) = self.active_meter(event_name) {
            return m.id.clone();
        }
        let id = self.next_id("mtr");
        let t = now();
        self.meters.push(Meter {
            id: id.clone(),
            event_name: event_name.to_owned(),
            display_name: event_name.to_owned(),
            status: "active".into(),
            created: t,
            updated: t,
            deactivated_at: None,
        });
        id
    }

    pub fn meter_mut(&mut self, id: &str) -> Option<&mut Meter> {
        self.meters.iter_mut().find(|m| m.id == id)
    }

    pub fn session_mut(&mut self, id: &str) -> Option<&mut CheckoutSession> {
        self.sessions.iter_mut().find(|s| s.id == id)
    }

    pub fn subscription_mut(&mut self, id: &str) -> Option<&mut Subscription> {
        self.subscriptions.iter_mut().find(|s| s.id == id)
    }

    /// Takes the first matching fault, counting it down.
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let rule = self.faults.iter_mut().find(|r| r.matches(method, path))?;
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        let fault = rule.fault.clone();
        self.faults.retain(|r| r.remaining != Some(0));
        Some(fault)
    }
}

/// The state shared by the server task and the [`super::FakeStripe`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub base_url: String,
    pub secret_key: String,
    pub webhook_secret: String,
    pub http: reqwest::Client,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
