//! [`LocalProvider`]: payments without a Stripe account, for development. Checkout links point
//! at `/pay/{id}` on this server; the page is labelled as a test payment, and submitting it
//! completes the purchase exactly as Stripe's `checkout.session.completed` webhook would.
//! On PostgreSQL its sessions and subscriptions live in the database (`sessions`), so a
//! checkout created by one replica can be paid through another's page.

#[cfg(feature = "postgres")]
mod sessions;

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use super::{CheckoutInfo, CheckoutRequest, ProviderError, SubscriptionInfo};
use crate::payments::{
    domain::{CheckoutStatus, PaymentStatus, PriceSet, SubscriptionStatus},
    pricing::CheckoutMode,
    report::format_amount,
};

/// The development payment provider.
#[derive(Default)]
pub(crate) struct LocalProvider {
    base_url: Mutex<Option<String>>,
    prices: HashMap<String, (i64, String)>,
    sessions: Mutex<HashMap<String, CheckoutInfo>>,
    subscriptions: Mutex<HashMap<String, SubscriptionInfo>>,
    next: AtomicU64,
    /// Where the sessions are kept when replicas share them (else in memory above).
    #[cfg(feature = "postgres")]
    shared: Option<Box<crate::payments::store::pg::PgPayments>>,
}

impl LocalProvider {
    /// A provider that knows the amount of these prices (`price id → (minor units, currency)`).
    pub(crate) fn new(prices: HashMap<String, (i64, String)>) -> Self {
        Self {
            prices,
            ..Self::default()
        }
    }

    /// Keeps the sessions and subscriptions in the PostgreSQL payment tables, shared by every
    /// replica.
    #[cfg(feature = "postgres")]
    pub(crate) fn shared_in(mut self, pg: crate::payments::store::pg::PgPayments) -> Self {
        self.shared = Some(Box::new(pg));
        self
    }

    /// Where this server is reachable, for checkout links; `only_if_unset` keeps a configured
    /// public URL over the address the server happened to bind.
    pub(crate) fn set_base_url(&self, url: &str, only_if_unset: bool) {
        let mut base = self.base_url.lock().unwrap_or_else(|e| e.into_inner());
        if !(only_if_unset && base.is_some()) {
            *base = Some(url.trim_end_matches('/').to_owned());
        }
    }

    pub(crate) fn create_customer(&self, user_id: &str, _email: Option<&str>) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(user_id.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("cus_local_{hex}")
    }

    pub(crate) async fn create_checkout(
        &self,
        request: CheckoutRequest<'_>,
    ) -> Result<CheckoutInfo, ProviderError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let nanos = crate::clock::now_ns() % 1_000_000_000;
        // Unique across replicas too.
        let id = format!(
            "cs_local_{n}{nanos:08x}{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        let base = self
            .base_url
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1".into());
        let mut amount = Some(0);
        let mut currency = None;
        for ((price, _), quantity) in request.pricing.line_items.iter().zip(request.quantities) {
            match self.prices.get(price) {
                Some((unit, price_currency)) => {
                    amount = amount.map(|sum| sum + unit * quantity.unwrap_or(1) as i64);
                    currency = Some(price_currency.clone());
                }
                None => amount = None,
            }
        }
        let session = CheckoutInfo {
            url: Some(format!("{base}/pay/{id}")),
            id: id.clone(),
            status: CheckoutStatus::Open,
            payment_status: PaymentStatus::Unpaid,
            mode: request.pricing.mode,
            customer: Some(request.customer.to_owned()),
            subscription: None,
            client_reference_id: Some(request.user_id.to_owned()),
            metadata: request.metadata,
            amount_total: amount,
            currency,
            expires_at: request.expires_at,
            payment_intent: None,
        };
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.shared {
            sessions::insert_checkout(pg, &session).await?;
            return Ok(session);
        }
        self.lock_sessions().insert(id, session.clone());
        Ok(session)
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, CheckoutInfo>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) async fn retrieve_checkout(&self, id: &str) -> Result<CheckoutInfo, ProviderError> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.shared {
            return sessions::checkout(pg, id)
                .await?
                .ok_or_else(|| ProviderError::Missing(format!("checkout session {id}")));
        }
        self.lock_sessions()
            .get(id)
            .cloned()
            .ok_or_else(|| ProviderError::Missing(format!("checkout session {id}")))
    }

    pub(crate) async fn expire_checkout(&self, id: &str) -> Result<CheckoutInfo, ProviderError> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.shared {
            return sessions::change(pg, id, |session| expire(session).map(|()| None))
                .await?
                .map(|(session, _)| session)
                .ok_or_else(|| ProviderError::Missing(format!("checkout session {id}")));
        }
        let mut sessions = self.lock_sessions();
        let session = sessions
            .get_mut(id)
            .ok_or_else(|| ProviderError::Missing(format!("checkout session {id}")))?;
        expire(session)?;
        Ok(session.clone())
    }

    pub(crate) async fn completed_checkouts(
        &self,
        customer: &str,
    ) -> Result<Vec<CheckoutInfo>, ProviderError> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.shared {
            return sessions::completed_checkouts(pg, customer).await;
        }
        Ok(self
            .lock_sessions()
            .values()
            .filter(|s| {
                s.status == CheckoutStatus::Complete && s.customer.as_deref() == Some(customer)
            })
            .cloned()
            .collect())
    }

    pub(crate) async fn subscriptions(
        &self,
        customer: &str,
        price: &str,
    ) -> Result<Vec<SubscriptionInfo>, ProviderError> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.shared {
            return Ok(sessions::subscriptions(pg, customer)
                .await?
                .into_iter()
                .filter(|s| s.price_ids.iter().any(|p| p == price))
                .collect());
        }
        Ok(self
            .subscriptions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.customer == customer && s.price_ids.iter().any(|p| p == price))
            .cloned()
            .collect())
    }

    /// Completes an open, unexpired session as paid (creating the subscription in
    /// subscription mode). `None` for an unknown session.
    pub(crate) async fn complete(
        &self,
        id: &str,
        now_s: i64,
    ) -> Result<Option<(CheckoutInfo, Option<SubscriptionInfo>)>, ProviderError> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.shared {
            return sessions::change(pg, id, |session| Ok(complete(session, now_s))).await;
        }
        let mut sessions = self.lock_sessions();
        let Some(session) = sessions.get_mut(id) else {
            return Ok(None);
        };
        let subscription = complete(session, now_s);
        if let Some(sub) = &subscription {
            self.subscriptions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(sub.id.clone(), sub.clone());
        }
        Ok(Some((session.clone(), subscription)))
    }
}

/// Expires an open session.
fn expire(session: &mut CheckoutInfo) -> Result<(), ProviderError> {
    if session.status != CheckoutStatus::Open {
        return Err(ProviderError::Rejected(format!(
            "checkout session {} is {}, not open",
            session.id, session.status
        )));
    }
    session.status = CheckoutStatus::Expired;
    Ok(())
}

/// Completes an open, unexpired session as paid; in subscription mode, the subscription it
/// creates. (A session past its expiry is expired instead; one not open stays as it is.)
fn complete(session: &mut CheckoutInfo, now_s: i64) -> Option<SubscriptionInfo> {
    if session.status == CheckoutStatus::Open && session.expires_at < now_s {
        session.status = CheckoutStatus::Expired;
    }
    if session.status != CheckoutStatus::Open {
        return None;
    }
    session.status = CheckoutStatus::Complete;
    session.payment_status = PaymentStatus::Paid;
    if session.mode != CheckoutMode::Subscription {
        return None;
    }
    let sub = SubscriptionInfo {
        id: format!("sub_local_{}", &session.id["cs_local_".len()..]),
        status: SubscriptionStatus::Active,
        customer: session.customer.clone().unwrap_or_default(),
        metadata: session.metadata.clone(),
        price_ids: PriceSet::decode(
            session
                .metadata
                .get("mcp_price_key")
                .map_or("", String::as_str),
        ),
    };
    session.subscription = Some(sub.id.clone());
    Some(sub)
}

/// The test checkout page for `session` (`GET /pay/{id}`).
pub(crate) fn page(session: &CheckoutInfo, reason: &str, message: Option<&str>) -> String {
    let amount = match (session.amount_total, &session.currency) {
        (Some(amount), Some(currency)) => format_amount(amount, currency),
        _ => "amount not configured for the local test provider".into(),
    };
    let tool = session.metadata.get("mcp_tool").map_or("", String::as_str);
    let action = if session.status == CheckoutStatus::Open {
        r#"<form method="post"><button type="submit">Complete test payment</button></form>"#
            .to_owned()
    } else {
        format!(
            "<p>This checkout is <strong>{}</strong>.</p>",
            escape(session.status.as_str())
        )
    };
    let message = message
        .map(|m| format!("<p class=\"msg\">{}</p>", escape(m)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Test payment</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
.banner{{background:#fde68a;border:1px solid #b45309;padding:.6rem .8rem;border-radius:6px}}
button{{font-size:1rem;padding:.6rem 1.2rem}} .msg{{color:#166534}}</style></head><body>
<p class="banner"><strong>TEST PAYMENT</strong> — local test provider, no money moves (set STRIPE_SECRET_KEY for real payments).</p>
<h1>Pay for <code>{tool}</code></h1>
<p id="reason">{reason}</p>
<p>Amount: <strong id="amount">{amount}</strong> · mode: {mode}</p>
{message}{action}
</body></html>"#,
        tool = escape(tool),
        reason = escape(reason),
        amount = escape(&amount),
        mode = escape(session.mode.as_str()),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
