//! What a purchase changes, whoever reports it (a webhook, the local test page, or the gate
//! finding a paid checkout): entitlements, the checkout row and `payment_events`. Each change
//! is idempotent, so a webhook delivered twice or a purchase seen by two paths grants once.

use super::{
    Inner, now_ms,
    provider::{CheckoutInfo, SubscriptionInfo, grants_access},
    store::{EventRow, NewCheckout, PaymentEventKind},
};

/// What a paid checkout grants; stored as `granted` (a number of credits, `unlimited` or
/// `subscription`), which refunds and disputes read back.
enum Grant {
    Credits(i64),
    Unlimited,
    Subscription,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grant::Credits(credits) => write!(f, "{credits}"),
            Grant::Unlimited => f.write_str("unlimited"),
            Grant::Subscription => f.write_str("subscription"),
        }
    }
}

/// Which subscription event is being applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubscriptionChange {
    Created,
    Updated,
    Deleted,
}

impl Inner {
    /// Grants what a paid checkout bought (once per session). `true` when this call granted.
    pub(crate) fn fulfil(&self, session: &CheckoutInfo) -> rusqlite::Result<bool> {
        if !session.is_paid() {
            return Ok(false);
        }
        let meta = |key: &str| session.metadata.get(key).map(String::as_str);
        let (Some(user), Some(key)) = (
            meta("mcp_user_id").or(session.client_reference_id.as_deref()),
            meta("mcp_price_key"),
        ) else {
            tracing::debug!(session = %session.id, "a completed checkout not created by mcp-analytics; ignored");
            return Ok(false);
        };
        let tool = meta("mcp_tool").unwrap_or("");
        let now = now_ms();
        // One transaction: a purchase is marked fulfilled only together with its grant, so a
        // failure part way leaves it to be granted by the next delivery.
        let granted = self.store().transaction(|store| {
            if store.checkout(&session.id)?.is_none() {
                store.insert_checkout(
                    &NewCheckout {
                        session_id: &session.id,
                        user_id: user,
                        tool,
                        price_key: key,
                        mode: &session.mode,
                        url: session.url.as_deref(),
                        status: &session.status,
                        amount: session.amount_total,
                        currency: session.currency.as_deref(),
                        expires_ms: session.expires_at.saturating_mul(1000),
                    },
                    now,
                )?;
            }
            if let Some(customer) = &session.customer {
                store.insert_customer(user, customer, now)?;
            }
            if !store.mark_fulfilled(&session.id)? {
                return Ok(false);
            }
            let subscription = session.mode == "subscription";
            // What the purchase grants: credits (a number), `unlimited` or `subscription`.
            let granted = match meta("mcp_grant") {
                _ if subscription => Grant::Subscription,
                Some("unlimited") => Grant::Unlimited,
                grant => Grant::Credits(grant.and_then(|g| g.parse::<i64>().ok()).unwrap_or(1)),
            };
            store.set_checkout_grant(
                &session.id,
                session.payment_intent.as_deref(),
                &granted.to_string(),
            )?;
            match granted {
                Grant::Subscription => {
                    let id = session.subscription.as_deref().unwrap_or("");
                    if store.is_late_status(id, "active")? {
                        tracing::info!(subscription = %id, "checkout completed for a subscription already ended; no access");
                    } else {
                        store.set_subscription(user, key, Some((id, "active")), now)?;
                        if !id.is_empty() {
                            store.upsert_subscription(id, Some(user), Some(tool), "active", now)?;
                        }
                    }
                }
                Grant::Unlimited => store.grant(user, key, 0, true, now)?,
                Grant::Credits(credits) => store.grant(user, key, credits, false, now)?,
            }
            // Subscription revenue is counted from paid invoices; one-time revenue here.
            let (amount, currency) = if subscription {
                (None, None)
            } else {
                (session.amount_total, session.currency.as_deref())
            };
            store.record_event(
                now,
                PaymentEventKind::CheckoutCompleted,
                &EventRow {
                    user_id: Some(user),
                    tool: Some(tool),
                    amount,
                    currency,
                    reference: Some(&session.id),
                    detail: Some(&session.mode),
                },
            )?;
            Ok(true)
        })?;
        if granted {
            self.held.invalidate(user, key);
        }
        Ok(granted)
    }

    /// Records a refund of a one-time purchase's payment (once per refund); once refunded in
    /// full it takes back what the purchase granted (remaining credits up to what it bought, or
    /// the unlimited unlock). Payments mcp-analytics did not take are ignored.
    #[cfg(feature = "stripe")]
    pub(crate) fn refund(
        &self,
        refund_id: &str,
        payment_intent: &str,
        amount: i64,
        currency: &str,
    ) -> rusqlite::Result<()> {
        self.take_back(
            PaymentEventKind::Refunded,
            refund_id,
            payment_intent,
            amount,
            currency,
        )
    }

    /// Records a dispute (chargeback) of a one-time purchase's payment and takes the purchase
    /// back; `won` records a dispute decided for the seller (access stays taken back).
    #[cfg(feature = "stripe")]
    pub(crate) fn dispute(
        &self,
        dispute_id: &str,
        payment_intent: &str,
        amount: i64,
        currency: &str,
        won: bool,
    ) -> rusqlite::Result<()> {
        let kind = if won {
            PaymentEventKind::DisputeWon
        } else {
            PaymentEventKind::Disputed
        };
        self.take_back(kind, dispute_id, payment_intent, amount, currency)
    }

    /// Records a refund or dispute event once per `reference`, and takes back what the
    /// checkout granted when it is refunded in full or disputed.
    #[cfg(feature = "stripe")]
    fn take_back(
        &self,
        kind: PaymentEventKind,
        reference: &str,
        payment_intent: &str,
        amount: i64,
        currency: &str,
    ) -> rusqlite::Result<()> {
        let revoked = self.store().transaction(|store| {
            let Some(checkout) = store.paid_checkout(payment_intent)? else {
                return Ok(None);
            };
            if store.event_recorded(kind, reference)? {
                return Ok(None);
            }
            store.record_event(
                now_ms(),
                kind,
                &EventRow {
                    user_id: Some(&checkout.user_id),
                    tool: Some(&checkout.tool),
                    amount: Some(amount),
                    currency: Some(currency),
                    reference: Some(reference),
                    detail: Some(&checkout.session_id),
                },
            )?;
            let take_back = match kind {
                // Refunded in full, in one refund or several.
                PaymentEventKind::Refunded => {
                    let refunded = store.refunded_total(&checkout.session_id)?;
                    checkout.amount.is_none_or(|paid| refunded >= paid)
                }
                PaymentEventKind::Disputed => true,
                _ => false,
            };
            Ok((take_back && store.revoke(&checkout)?).then_some(checkout))
        })?;
        if let Some(checkout) = revoked {
            tracing::info!(user = %checkout.user_id, tool = %checkout.tool, kind = kind.as_str(), "a purchase was taken back");
            self.held.invalidate(&checkout.user_id, &checkout.price_key);
        }
        Ok(())
    }

    /// Marks an unpaid checkout expired.
    #[cfg(feature = "stripe")]
    pub(crate) fn expire(&self, session: &CheckoutInfo) -> rusqlite::Result<()> {
        let store = self.store();
        store.set_checkout_status(&session.id, "expired")?;
        let meta = |key: &str| session.metadata.get(key).map(String::as_str);
        store.record_event(
            now_ms(),
            PaymentEventKind::CheckoutExpired,
            &EventRow {
                user_id: meta("mcp_user_id"),
                tool: meta("mcp_tool"),
                reference: Some(&session.id),
                ..EventRow::default()
            },
        )
    }

    /// Applies a subscription's new state to the user's access for each of its prices.
    pub(crate) fn apply_subscription(
        &self,
        sub: &SubscriptionInfo,
        change: SubscriptionChange,
    ) -> rusqlite::Result<()> {
        let now = now_ms();
        let store = self.store();
        let user = match sub.metadata.get("mcp_user_id") {
            Some(user) => Some(user.clone()),
            None => store.user_of_customer(&sub.customer)?,
        };
        let Some(user) = user else {
            tracing::debug!(subscription = %sub.id, "a subscription of a customer mcp-analytics does not know; ignored");
            return Ok(());
        };
        let tool = sub.metadata.get("mcp_tool").map(String::as_str);
        let status = if change == SubscriptionChange::Deleted {
            "canceled"
        } else {
            sub.status.as_str()
        };
        if store.is_late_status(&sub.id, status)? {
            tracing::info!(subscription = %sub.id, status, "a late subscription event; ignored");
            return Ok(());
        }
        for price in &sub.price_ids {
            store.set_subscription(&user, price, Some((&sub.id, status)), now)?;
        }
        store.upsert_subscription(&sub.id, Some(&user), tool, status, now)?;
        let kind = match change {
            SubscriptionChange::Created => PaymentEventKind::SubscriptionStarted,
            SubscriptionChange::Deleted => PaymentEventKind::SubscriptionCancelled,
            SubscriptionChange::Updated if !grants_access(status) && status == "canceled" => {
                PaymentEventKind::SubscriptionCancelled
            }
            SubscriptionChange::Updated => PaymentEventKind::SubscriptionUpdated,
        };
        store.record_event(
            now,
            kind,
            &EventRow {
                user_id: Some(&user),
                tool,
                reference: Some(&sub.id),
                detail: Some(status),
                ..EventRow::default()
            },
        )?;
        drop(store);
        for price in &sub.price_ids {
            self.held.invalidate(&user, price);
        }
        Ok(())
    }

    /// Records a paid or failed invoice against the subscription's user and tool.
    #[cfg(feature = "stripe")]
    pub(crate) fn invoice(
        &self,
        kind: PaymentEventKind,
        invoice_id: Option<&str>,
        subscription: Option<&str>,
        customer: Option<&str>,
        amount: i64,
        currency: &str,
    ) -> rusqlite::Result<()> {
        let store = self.store();
        let (mut user, mut tool) = (None, None);
        if let Some((sub_user, sub_tool, _)) = subscription
            .map(|s| store.subscription(s))
            .transpose()?
            .flatten()
        {
            user = sub_user;
            tool = sub_tool;
        }
        if user.is_none()
            && let Some(customer) = customer
        {
            user = store.user_of_customer(customer)?;
        }
        store.record_event(
            now_ms(),
            kind,
            &EventRow {
                user_id: user.as_deref(),
                tool: tool.as_deref(),
                amount: Some(amount),
                currency: Some(currency),
                reference: invoice_id.or(subscription),
                detail: subscription,
            },
        )
    }
}
