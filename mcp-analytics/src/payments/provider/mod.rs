//! Who takes the money: [`Provider::Stripe`] (async-stripe against Stripe or any base URL) or
//! [`Provider::Local`], the development stand-in whose checkout page this server serves itself.
//! Both answer in the provider-neutral shapes below.

use std::collections::HashMap;

pub(crate) mod local;
#[cfg(feature = "stripe")]
pub(crate) mod stripe;

use super::pricing::ResolvedPricing;

/// A Checkout Session as far as payments care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckoutInfo {
    pub id: String,
    pub url: Option<String>,
    /// `open`, `complete` or `expired`.
    pub status: String,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    /// `payment` or `subscription`.
    pub mode: String,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub client_reference_id: Option<String>,
    pub metadata: HashMap<String, String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// The payment of a paid one-time checkout (what refunds name).
    pub payment_intent: Option<String>,
}

impl CheckoutInfo {
    /// Paid for: complete and paid (or nothing to pay on a subscription, e.g. a trial).
    pub(crate) fn is_paid(&self) -> bool {
        self.status == "complete"
            && (self.payment_status == "paid"
                || (self.mode == "subscription" && self.payment_status == "no_payment_required"))
    }
}

/// A subscription as far as payments care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubscriptionInfo {
    pub id: String,
    /// Stripe's status (`active`, `trialing`, `past_due`, `canceled`, `unpaid`, …).
    pub status: String,
    pub customer: String,
    pub metadata: HashMap<String, String>,
    pub price_ids: Vec<String>,
}

impl SubscriptionInfo {
    /// Whether the subscription grants use: active or trialing; anything else grants nothing.
    pub(crate) fn grants_access(&self) -> bool {
        grants_access(&self.status)
    }
}

/// Whether a subscription status grants use.
pub(crate) fn grants_access(status: &str) -> bool {
    matches!(status, "active" | "trialing")
}

/// A price as Stripe describes it (checked at startup).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PriceInfo {
    pub active: bool,
    pub recurring: bool,
    pub metered: bool,
    pub unit_amount: Option<i64>,
    pub currency: String,
}

/// What to create a Checkout Session with.
pub(crate) struct CheckoutRequest<'a> {
    pub pricing: &'a ResolvedPricing,
    /// Quantity per line item (metered prices have none).
    pub quantities: &'a [Option<u64>],
    pub customer: &'a str,
    pub user_id: &'a str,
    pub metadata: HashMap<String, String>,
    /// Unix seconds.
    pub expires_at: i64,
    pub idempotency_key: String,
}

/// A meter event to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MeterEvent {
    pub identifier: String,
    pub event_name: String,
    pub customer_id: String,
    pub value: i64,
    /// Unix seconds.
    pub timestamp: i64,
}

/// Why a provider request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProviderError {
    /// Worth retrying: timeouts, connection errors, 429, 5xx.
    #[error("payments unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request; retrying the same request will not help.
    #[error("payment provider refused the request: {0}")]
    Rejected(String),
}

/// A deterministic key `mcpa-{kind}-{hash of parts}`: an idempotency key (≤ 255 characters
/// whatever the inputs; parts are separated so `["a", "bc"]` and `["ab", "c"]` differ).
pub(crate) fn hashed_key(kind: &str, parts: &[&str]) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let hex: String = hash.finalize()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("mcpa-{kind}-{hex}")
}

/// The payment provider in use.
pub(crate) enum Provider {
    /// Stripe through async-stripe.
    #[cfg(feature = "stripe")]
    Stripe(Box<stripe::StripeProvider>),
    /// The local test provider (development without a Stripe key).
    Local(local::LocalProvider),
}

impl Provider {
    /// A short description for startup messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.describe(),
            Provider::Local(_) => "local test payments (no Stripe key; nothing is charged)".into(),
        }
    }

    pub(crate) fn is_local(&self) -> bool {
        self.as_local().is_some()
    }

    /// The local test provider, when that is the one in use.
    pub(crate) fn as_local(&self) -> Option<&local::LocalProvider> {
        match self {
            Provider::Local(local) => Some(local),
            #[cfg(feature = "stripe")]
            Provider::Stripe(_) => None,
        }
    }

    pub(crate) async fn create_customer(
        &self,
        user_id: &str,
        email: Option<&str>,
    ) -> Result<String, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.create_customer(user_id, email).await,
            Provider::Local(local) => Ok(local.create_customer(user_id, email)),
        }
    }

    pub(crate) async fn create_checkout(
        &self,
        request: CheckoutRequest<'_>,
    ) -> Result<CheckoutInfo, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.create_checkout(request).await,
            Provider::Local(local) => Ok(local.create_checkout(request)),
        }
    }

    pub(crate) async fn retrieve_checkout(&self, id: &str) -> Result<CheckoutInfo, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.retrieve_checkout(id).await,
            Provider::Local(local) => local.retrieve_checkout(id),
        }
    }

    /// Expires an open checkout so it can no longer be paid.
    pub(crate) async fn expire_checkout(&self, id: &str) -> Result<CheckoutInfo, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.expire_checkout(id).await,
            Provider::Local(local) => local.expire_checkout(id),
        }
    }

    /// Every completed checkout of the customer (all pages).
    pub(crate) async fn completed_checkouts(
        &self,
        customer: &str,
    ) -> Result<Vec<CheckoutInfo>, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.completed_checkouts(customer).await,
            Provider::Local(local) => Ok(local.completed_checkouts(customer)),
        }
    }

    /// The customer's subscriptions to `price` (all pages; Stripe omits cancelled ones).
    pub(crate) async fn subscriptions(
        &self,
        customer: &str,
        price: &str,
    ) -> Result<Vec<SubscriptionInfo>, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.subscriptions(customer, price).await,
            Provider::Local(local) => Ok(local.subscriptions(customer, price)),
        }
    }

    pub(crate) async fn send_meter_event(&self, event: &MeterEvent) -> Result<(), ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.send_meter_event(event).await,
            Provider::Local(_) => {
                let _ = event;
                Ok(())
            }
        }
    }

    /// The price, when the provider knows prices (the local provider does not).
    pub(crate) async fn price(&self, id: &str) -> Result<Option<PriceInfo>, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.price(id).await.map(Some),
            Provider::Local(_) => {
                let _ = id;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_bounded() {
        let long = "u".repeat(1000);
        let key = hashed_key("customer", &[&long]);
        assert_eq!(key, hashed_key("customer", &[&long]));
        assert!(key.len() < 64, "{key}");
        assert_ne!(key, hashed_key("customer", &["other"]));
        assert_ne!(hashed_key("x", &["a", "bc"]), hashed_key("x", &["ab", "c"]));
    }
}
