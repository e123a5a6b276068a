//! Asking the provider what a user bought and selling them access: the user's customer,
//! syncing subscriptions and completed checkouts into the store, and reusing or creating the
//! checkout a refused call links to.

use std::collections::HashMap;

use super::{
    Inner,
    holdings::Held,
    now_ms,
    pricing::{CheckoutMode, Grant, ResolvedPricing},
    provider::{CheckoutInfo, CheckoutRequest, ProviderError, hashed_key},
    store::{EventRow, NewCheckout, PaymentEventKind},
};

/// Checkout sessions live this long (Stripe accepts 30 min to 24 h).
const CHECKOUT_LIFETIME_S: i64 = 3600;
/// An open checkout is reused while it has at least this long left.
const REUSE_MARGIN_S: i64 = 300;

impl Inner {
    /// The user's customer id: from the store, else created (idempotently) at the provider.
    pub(crate) async fn customer(
        &self,
        user: &str,
        email: Option<&str>,
    ) -> Result<String, ProviderError> {
        if let Some(customer) = self.store().customer(user).map_err(store_unavailable)? {
            return Ok(customer);
        }
        let customer = self.provider.create_customer(user, email).await?;
        self.store()
            .insert_customer(user, &customer, now_ms())
            .map_err(store_unavailable)?;
        Ok(self
            .store()
            .customer(user)
            .map_err(store_unavailable)?
            .unwrap_or(customer))
    }

    /// Asks the provider what the user holds for the price and stores it.
    pub(super) async fn sync(
        &self,
        user: &str,
        customer: &str,
        pricing: &ResolvedPricing,
    ) -> Result<(), ProviderError> {
        let key = pricing.key();
        match pricing.mode {
            CheckoutMode::Subscription => {
                let subscriptions = self.provider.subscriptions(customer, key).await?;
                let active = subscriptions.iter().find(|s| s.grants_access());
                let now = now_ms();
                let store = self.store();
                // A webhook applied while Stripe answered may already know better.
                let late = match active {
                    Some(sub) => store
                        .is_late_status(&sub.id, &sub.status)
                        .map_err(store_unavailable)?,
                    None => false,
                };
                let current = active
                    .filter(|_| !late)
                    .map(|sub| (sub.id.as_str(), sub.status.as_str()));
                store
                    .set_subscription(user, key, current, now)
                    .map_err(store_unavailable)?;
            }
            CheckoutMode::Payment => {
                let completed = self.provider.completed_checkouts(customer).await?;
                for session in completed
                    .iter()
                    .filter(|s| s.metadata.get("mcp_price_key").map(String::as_str) == Some(key))
                {
                    self.fulfil(session).map_err(store_unavailable)?;
                }
                self.store()
                    .touch(user, key, now_ms())
                    .map_err(store_unavailable)?;
            }
        }
        self.held.invalidate(user, key);
        let store = self.store();
        let row = store
            .entitlement(user, key)
            .map_err(store_unavailable)?
            .unwrap_or_default();
        self.held.set(user, key, Held::from(&row));
        Ok(())
    }

    /// Reuses the user's open checkout for the price (noticing when it was paid meanwhile)
    /// or creates one.
    pub(super) async fn checkout(
        &self,
        user: &str,
        email: Option<&str>,
        pricing: &ResolvedPricing,
    ) -> Result<CheckoutState, ProviderError> {
        let key = pricing.key();
        let now_s = now_ms() / 1000;
        let open = self
            .store()
            .open_checkout(user, key)
            .map_err(store_unavailable)?;
        if let Some(open) = open {
            let mut session = self.provider.retrieve_checkout(&open.session_id).await?;
            if session.status == "open" && session.expires_at - now_s <= REUSE_MARGIN_S {
                // Too close to its end to hand out: expire it before offering a new one, so
                // a tab still showing it cannot buy the same thing a second time.
                session = match self.provider.expire_checkout(&session.id).await {
                    Ok(expired) => expired,
                    // Completed meanwhile (it can no longer be expired): see what it is now.
                    Err(ProviderError::Rejected(_)) => {
                        self.provider.retrieve_checkout(&session.id).await?
                    }
                    Err(error) => return Err(error),
                };
            }
            if session.is_paid() {
                self.fulfil(&session).map_err(store_unavailable)?;
                self.held.invalidate(user, key);
                self.reload(user, key)?;
                return Ok(CheckoutState::Paid);
            }
            if session.status == "open" {
                return Ok(CheckoutState::Open(Box::new(session)));
            }
            self.store()
                .set_checkout_status(&session.id, &session.status)
                .map_err(store_unavailable)?;
        }
        let customer = self.customer(user, email).await?;
        let offered = self
            .store()
            .checkout_count(user, key)
            .map_err(store_unavailable)?;
        let grant = match (pricing.mode, pricing.grant) {
            (CheckoutMode::Subscription, _) => "subscription".to_owned(),
            (CheckoutMode::Payment, Grant::Unlimited) => "unlimited".to_owned(),
            (CheckoutMode::Payment, Grant::Credits) => {
                pricing.line_items[0].1.unwrap_or(1).to_string()
            }
        };
        let metadata = HashMap::from([
            ("mcp_user_id".to_owned(), user.to_owned()),
            ("mcp_tool".to_owned(), pricing.tool.clone()),
            ("mcp_price_key".to_owned(), key.to_owned()),
            ("mcp_grant".to_owned(), grant),
        ]);
        let quantities = pricing.quantities();
        // The same key for the same number of earlier checkouts within a 10-minute window: a
        // retried request gets the one session; once it is stored (then paid, expired or
        // replaced) the next checkout has a new key.
        let bucket = now_s / 600;
        let session = self
            .provider
            .create_checkout(CheckoutRequest {
                pricing,
                quantities: &quantities,
                customer: &customer,
                user_id: user,
                metadata,
                expires_at: now_s + CHECKOUT_LIFETIME_S,
                idempotency_key: checkout_key(user, key, offered, bucket),
            })
            .await?;
        let store = self.store();
        store
            .insert_checkout(
                &NewCheckout {
                    session_id: &session.id,
                    user_id: user,
                    tool: &pricing.tool,
                    price_key: key,
                    mode: pricing.mode.as_str(),
                    url: session.url.as_deref(),
                    status: &session.status,
                    amount: session.amount_total,
                    currency: session.currency.as_deref(),
                    expires_ms: session.expires_at.saturating_mul(1000),
                },
                now_ms(),
            )
            .map_err(store_unavailable)?;
        store
            .record_event(
                now_ms(),
                PaymentEventKind::CheckoutCreated,
                &EventRow {
                    user_id: Some(user),
                    tool: Some(&pricing.tool),
                    amount: session.amount_total,
                    currency: session.currency.as_deref(),
                    reference: Some(&session.id),
                    ..EventRow::default()
                },
            )
            .map_err(store_unavailable)?;
        Ok(CheckoutState::Open(Box::new(session)))
    }

    /// Loads the user's holdings for `key` from the store into memory (the store stays locked
    /// until memory agrees, so a call settling a credit meanwhile is counted once).
    pub(crate) fn reload(&self, user: &str, key: &str) -> Result<(), ProviderError> {
        let store = self.store();
        let row = store
            .entitlement(user, key)
            .map_err(store_unavailable)?
            .unwrap_or_default();
        self.held.set(
            user,
            key,
            Held {
                checked_ms: row.checked_ms.max(now_ms()),
                ..Held::from(&row)
            },
        );
        Ok(())
    }
}

/// Where the user's checkout for a price stands.
pub(super) enum CheckoutState {
    Paid,
    Open(Box<CheckoutInfo>),
}

/// The idempotency key of the checkout for a user, price, count of earlier checkouts and time
/// window.
fn checkout_key(user: &str, key: &str, offered: i64, bucket: i64) -> String {
    hashed_key(
        "checkout",
        &[user, key, &offered.to_string(), &bucket.to_string()],
    )
}

/// A store failure, as the gate sees it: payments are unavailable.
pub(super) fn store_unavailable(error: rusqlite::Error) -> ProviderError {
    ProviderError::Unavailable(format!("payment store: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkout_keys_change_with_earlier_checkouts_and_time() {
        let a = checkout_key("u", "p", 0, 5);
        assert_eq!(a, checkout_key("u", "p", 0, 5));
        assert_ne!(a, checkout_key("u", "p", 1, 5));
        assert_ne!(a, checkout_key("u", "p", 0, 6));
        assert!(a.len() <= 255);
    }
}
