//! Who takes the money: [`Provider::Stripe`] (async-stripe against Stripe or any base URL) or
//! [`Provider::Local`], the development stand-in whose checkout page this server serves itself.
//! Both answer in the provider-neutral shapes below.

use std::collections::HashMap;

pub(crate) mod local;
#[cfg(feature = "stripe")]
pub(crate) mod stripe;

pub use crate::error::ProviderError;

use super::{
    domain::{CheckoutStatus, PaymentStatus, PriceSet, SubscriptionStatus},
    pricing::{CheckoutMode, ResolvedPricing},
};

/// A Checkout Session as far as payments care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckoutInfo {
    pub id: String,
    pub url: Option<String>,
    pub status: CheckoutStatus,
    pub payment_status: PaymentStatus,
    pub mode: CheckoutMode,
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
        self.status == CheckoutStatus::Complete
            && (self.payment_status == PaymentStatus::Paid
                || (self.mode == CheckoutMode::Subscription
                    && self.payment_status == PaymentStatus::NoPaymentRequired))
    }

    /// Complete, with a delayed payment method's money still on its way (SEPA, ACH).
    pub(crate) fn is_pending(&self) -> bool {
        self.status == CheckoutStatus::Complete && self.payment_status == PaymentStatus::Unpaid
    }
}

/// A subscription as far as payments care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubscriptionInfo {
    pub id: String,
    pub status: SubscriptionStatus,
    pub customer: String,
    pub metadata: HashMap<String, String>,
    pub price_ids: PriceSet,
}

/// A price as Stripe describes it (checked at startup).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PriceInfo {
    pub active: bool,
    pub recurring: bool,
    pub metered: bool,
    /// The `event_name` of the meter a metered price bills.
    pub meter_event_name: Option<String>,
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
    /// How many checkouts the user was offered for these prices before.
    pub offered: i64,
}

impl CheckoutRequest<'_> {
    /// The idempotency key: a hash of every parameter sent and of `offered`. A retry with the
    /// same parameters gets the session the first attempt created; different parameters never
    /// reuse a key (which Stripe would refuse with a 400).
    pub(crate) fn idempotency_key(&self) -> String {
        let pricing = self.pricing;
        let mut metadata: Vec<_> = self.metadata.iter().collect();
        metadata.sort();
        let mut parts: Vec<String> = vec![
            self.user_id.to_owned(),
            self.customer.to_owned(),
            pricing.mode.as_str().to_owned(),
            pricing.success_url.clone(),
            pricing.cancel_url.clone().unwrap_or_default(),
            self.expires_at.to_string(),
            self.offered.to_string(),
        ];
        for ((price, _), quantity) in pricing.line_items.iter().zip(self.quantities) {
            parts.push(format!("{price}×{quantity:?}"));
        }
        for (key, value) in metadata {
            parts.push(format!("{key}={value}"));
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        hashed_key("checkout", &parts)
    }
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

    /// The longest one request to the provider may take (the local provider answers at once).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn request_timeout(&self) -> std::time::Duration {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.timeout(),
            Provider::Local(_) => std::time::Duration::ZERO,
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

    /// Creates the user's customer; `replacing` names a customer the provider no longer knows.
    pub(crate) async fn create_customer(
        &self,
        user_id: &str,
        email: Option<&str>,
        replacing: Option<&str>,
    ) -> Result<String, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.create_customer(user_id, email, replacing).await,
            Provider::Local(local) => {
                let _ = replacing;
                Ok(local.create_customer(user_id, email))
            }
        }
    }

    pub(crate) async fn create_checkout(
        &self,
        request: CheckoutRequest<'_>,
    ) -> Result<CheckoutInfo, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.create_checkout(request).await,
            Provider::Local(local) => local.create_checkout(request).await,
        }
    }

    pub(crate) async fn retrieve_checkout(&self, id: &str) -> Result<CheckoutInfo, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.retrieve_checkout(id).await,
            Provider::Local(local) => local.retrieve_checkout(id).await,
        }
    }

    /// Expires an open checkout so it can no longer be paid.
    pub(crate) async fn expire_checkout(&self, id: &str) -> Result<CheckoutInfo, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => stripe.expire_checkout(id).await,
            Provider::Local(local) => local.expire_checkout(id).await,
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
            Provider::Local(local) => local.completed_checkouts(customer).await,
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
            Provider::Local(local) => local.subscriptions(customer, price).await,
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

    /// A page where the customer fixes the payment of a subscription that needs it: a Billing
    /// Portal session, else the subscription's open invoice. `None` when the provider has
    /// neither (the local test provider).
    pub(crate) async fn payment_fix_url(
        &self,
        customer: &str,
        subscription: &str,
        return_url: &str,
    ) -> Result<Option<String>, ProviderError> {
        match self {
            #[cfg(feature = "stripe")]
            Provider::Stripe(stripe) => {
                stripe
                    .payment_fix_url(customer, subscription, return_url)
                    .await
            }
            Provider::Local(_) => {
                let _ = (customer, subscription, return_url);
                Ok(None)
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
