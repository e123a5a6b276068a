//! The payment gate of one call: decide from what the user holds (in memory; the store and
//! then the provider on a miss), reserve a credit, or answer `payment_required` with a
//! checkout link / `payment_unavailable`. A [`Ticket`] settles after the tool ran.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rmcp::model::{
    CallToolResult, ContentBlock, ElicitRequest, ElicitRequestParams, InputRequest, InputRequests,
    InputRequiredResult,
};
use serde_json::json;

use super::{
    Inner, Payments, now_ms,
    pricing::{CheckoutMode, Grant, Pricing, ResolvedPricing},
    provider::{CheckoutInfo, CheckoutRequest, ProviderError},
    store::{EntitlementRow, EventRow, NewCheckout, PaymentEventKind},
};
use crate::{
    Environment,
    event::Status,
    private::{Outcome, ToolSpec},
};

/// How long "not entitled" is believed before asking the provider again.
const NEGATIVE_TTL_MS: i64 = 60_000;
/// Checkout sessions live this long (Stripe accepts 30 min to 24 h).
const CHECKOUT_LIFETIME_S: i64 = 3600;
/// How long a legacy client may take to answer the URL elicitation.
const ELICITATION_WAIT: std::time::Duration = std::time::Duration::from_secs(300);
/// How long, after the user accepted, the call waits for the purchase to complete.
const PURCHASE_WAIT: std::time::Duration = std::time::Duration::from_secs(600);
/// How often the provider is asked meanwhile.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// An open checkout is reused while it has at least this long left.
const REUSE_MARGIN_S: i64 = 300;

/// What one user holds for one price, as the gate sees it.
#[derive(Clone, Debug, Default)]
struct Held {
    credits: i64,
    unlimited: bool,
    subscription_active: bool,
    checked_ms: i64,
}

impl From<&EntitlementRow> for Held {
    fn from(row: &EntitlementRow) -> Self {
        Held {
            credits: row.credits,
            unlimited: row.unlimited,
            subscription_active: row
                .subscription_status
                .as_deref()
                .is_some_and(super::provider::grants_access),
            checked_ms: row.checked_ms,
        }
    }
}

/// The in-memory view of `payment_entitlements`: user → price key → holdings.
#[derive(Default)]
pub(crate) struct Holdings(Mutex<HashMap<String, HashMap<String, Held>>>);

/// What the caller may do right now.
enum Local {
    Granted(Grant_),
    Refused,
    Unknown,
}

/// Why a call may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grant_ {
    /// One reserved credit, used on success and returned otherwise.
    Credit,
    Unlimited,
    Subscription,
}

impl Holdings {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, HashMap<String, Held>>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Decides from memory, reserving a credit when that is what grants the call.
    fn admit(&self, user: &str, key: &str, subscription_ttl_ms: i64, now: i64) -> Local {
        self.with(|users| {
            let Some(held) = users.get_mut(user).and_then(|keys| keys.get_mut(key)) else {
                return Local::Unknown;
            };
            if held.unlimited {
                return Local::Granted(Grant_::Unlimited);
            }
            if held.credits > 0 {
                held.credits -= 1;
                return Local::Granted(Grant_::Credit);
            }
            let age = now - held.checked_ms;
            if held.subscription_active && age < subscription_ttl_ms {
                return Local::Granted(Grant_::Subscription);
            }
            if !held.subscription_active && age < NEGATIVE_TTL_MS {
                return Local::Refused;
            }
            Local::Unknown
        })
    }

    fn set(&self, user: &str, key: &str, held: Held) {
        self.with(|users| {
            users
                .entry(user.to_owned())
                .or_default()
                .insert(key.to_owned(), held);
        });
    }

    /// Forgets the user's holdings for `key` so the next call reloads them from the store.
    pub(crate) fn forget(&self, user: &str, key: &str) {
        self.with(|users| {
            if let Some(keys) = users.get_mut(user) {
                keys.remove(key);
            }
        });
    }

    fn refund(&self, user: &str, key: &str) {
        self.with(|users| {
            if let Some(held) = users.get_mut(user).and_then(|keys| keys.get_mut(key)) {
                held.credits += 1;
            }
        });
    }
}

/// The gate's answer.
pub(crate) enum Admission {
    /// Run the tool, then [`Ticket::settle`].
    Run(Ticket),
    /// Do not run the tool; answer with this.
    Refuse(Outcome),
}

/// Permission to run one paid call, settled once it ended.
pub(crate) struct Ticket {
    inner: Arc<Inner>,
    user: String,
    pricing: Arc<ResolvedPricing>,
    /// `None` once settled.
    grant: Option<Grant_>,
}

/// Who is paying for a call.
pub(crate) struct Payer {
    /// The signed-in user's id.
    pub user_id: Option<Arc<str>>,
    /// Their email, a hint for the Stripe customer.
    pub email: Option<String>,
    /// The session, for the anonymous development fallback.
    pub session: Option<crate::capture::Session>,
    /// The client takes URL elicitation in an `InputRequiredResult` (MCP 2026-07-28): the
    /// checkout link is sent that way, and the retry comes back through this gate.
    pub url_elicitation: bool,
    /// A pre-2026 client's peer: when it takes URL elicitation, the link is sent with
    /// `elicitation/create` and the call waits (bounded) for the purchase.
    pub legacy_peer: Option<rmcp::Peer<rmcp::RoleServer>>,
}

/// Why the slow path did not grant the call.
enum Refusal {
    /// The final answer.
    Final(Box<Outcome>),
    /// Not entitled; this checkout is open for the user.
    Checkout(Box<CheckoutInfo>),
}

impl From<Outcome> for Refusal {
    fn from(outcome: Outcome) -> Self {
        Refusal::Final(Box::new(outcome))
    }
}

impl Payments {
    /// The gate for one call of the paid tool `spec`.
    pub(crate) async fn admit(
        &self,
        spec: &ToolSpec,
        pricing: &'static Pricing,
        payer: Payer,
    ) -> Admission {
        let Some(inner) = self.inner() else {
            tracing::error!(
                tool = spec.name,
                "paid tool called but payments are not configured (serve with mcp_analytics::serve, or call Payments::init_global)"
            );
            return Admission::Refuse(unavailable(
                spec.name,
                "payments are not configured on this server",
            ));
        };
        let resolved = match inner.resolve(spec, pricing) {
            Ok(resolved) => resolved,
            Err(error) => {
                tracing::error!(tool = spec.name, "{error}");
                return Admission::Refuse(unavailable(spec.name, &error));
            }
        };
        let user = match (payer.user_id.as_deref(), &payer.session, inner.environment) {
            (Some(user), _, _) => user.to_owned(),
            (None, Some(session), Environment::Development) => format!("anon-{session}"),
            _ => return Admission::Refuse(sign_in_required(spec.name)),
        };
        let key = resolved.key().to_owned();
        let ttl = inner.subscription_ttl.as_millis() as i64;
        let grant = match inner.held.admit(&user, &key, ttl, now_ms()) {
            Local::Granted(grant) => Ok(grant),
            Local::Refused | Local::Unknown => {
                match inner
                    .slow_path(&user, payer.email.as_deref(), &resolved)
                    .await
                {
                    Ok(grant) => Ok(grant),
                    Err(Refusal::Final(outcome)) => Err(*outcome),
                    Err(Refusal::Checkout(session)) => {
                        match payer.legacy_peer.as_ref().filter(|peer| {
                            peer.supported_elicitation_modes()
                                .contains(&rmcp::service::ElicitationMode::Url)
                        }) {
                            Some(peer) => {
                                inner
                                    .elicit_and_wait(peer, &user, &resolved, &session)
                                    .await
                            }
                            None => {
                                Err(payment_required(&resolved, &session, payer.url_elicitation))
                            }
                        }
                    }
                }
            }
        };
        match grant {
            Ok(grant) => Admission::Run(Ticket {
                inner: inner.clone(),
                user,
                pricing: resolved,
                grant: Some(grant),
            }),
            Err(refusal) => Admission::Refuse(refusal),
        }
    }
}

impl Inner {
    /// Under the user's lock: reload from the store, ask the provider, reuse or create a
    /// checkout. Every provider failure refuses the call (fail closed).
    async fn slow_path(
        &self,
        user: &str,
        email: Option<&str>,
        pricing: &ResolvedPricing,
    ) -> Result<Grant_, Refusal> {
        let lock = self.user_lock(user);
        let _guard = lock.lock().await;
        let key = pricing.key();
        let ttl = self.subscription_ttl.as_millis() as i64;
        let store_error = |error: rusqlite::Error| {
            tracing::error!("payment store: {error}");
            unavailable(&pricing.tool, "the payment records cannot be read")
        };
        // Another call may have settled it while we waited, or the store knows more.
        let row = self.store().entitlement(user, key).map_err(store_error)?;
        if let Some(row) = row {
            self.held.set(user, key, Held::from(&row));
        }
        match self.held.admit(user, key, ttl, now_ms()) {
            Local::Granted(grant) => return Ok(grant),
            Local::Refused => {}
            Local::Unknown => {
                let customer = self
                    .customer(user, email)
                    .await
                    .map_err(|e| self.unavailable(pricing, &e))?;
                self.sync(user, &customer, pricing)
                    .await
                    .map_err(|e| self.unavailable(pricing, &e))?;
                if let Local::Granted(grant) = self.held.admit(user, key, ttl, now_ms()) {
                    return Ok(grant);
                }
            }
        }
        let checkout = self
            .checkout(user, email, pricing)
            .await
            .map_err(|e| self.unavailable(pricing, &e))?;
        match checkout {
            CheckoutState::Paid => match self.held.admit(user, key, ttl, now_ms()) {
                Local::Granted(grant) => Ok(grant),
                _ => Err(unavailable(&pricing.tool, "the purchase is being processed").into()),
            },
            CheckoutState::Open(session) => Err(Refusal::Checkout(session)),
        }
    }

    /// Legacy URL elicitation: sends the checkout link to the client, and once the user
    /// accepts, waits (bounded) for the purchase, confirmed by a webhook or by asking the
    /// provider, never by the client's answer.
    async fn elicit_and_wait(
        &self,
        peer: &rmcp::Peer<rmcp::RoleServer>,
        user: &str,
        pricing: &ResolvedPricing,
        session: &CheckoutInfo,
    ) -> Result<Grant_, Outcome> {
        let refused = || payment_required(pricing, session, false);
        let Some(url) = session
            .url
            .as_deref()
            .and_then(|url| url.parse::<url::Url>().ok())
        else {
            return Err(refused());
        };
        let message = format!("Pay for `{}`: {}", pricing.tool, pricing.reason);
        let answer = peer
            .elicit_url_with_timeout(message, url, session.id.clone(), Some(ELICITATION_WAIT))
            .await;
        if !matches!(answer, Ok(rmcp::model::ElicitationAction::Accept)) {
            return Err(refused());
        }
        let key = pricing.key();
        let ttl = self.subscription_ttl.as_millis() as i64;
        let deadline = tokio::time::Instant::now() + PURCHASE_WAIT;
        loop {
            let _ = self.reload(user, key);
            if let Local::Granted(grant) = self.held.admit(user, key, ttl, now_ms()) {
                return Ok(grant);
            }
            if let Ok(current) = self.provider.retrieve_checkout(&session.id).await
                && current.is_paid()
            {
                let _ = self.fulfil(&current);
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(refused());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn unavailable(&self, pricing: &ResolvedPricing, error: &ProviderError) -> Outcome {
        tracing::warn!(tool = %pricing.tool, "payment gate failed closed: {error}");
        unavailable(&pricing.tool, &error.to_string())
    }

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
    async fn sync(
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
                match active {
                    Some(sub) => {
                        store.set_subscription(user, key, Some((&sub.id, &sub.status)), now)
                    }
                    None => store.set_subscription(user, key, None, now),
                }
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
        self.held.forget(user, key);
        let row = self
            .store()
            .entitlement(user, key)
            .map_err(store_unavailable)?
            .unwrap_or_default();
        self.held.set(user, key, Held::from(&row));
        Ok(())
    }

    /// Reuses the user's open checkout for the price (noticing when it was paid meanwhile)
    /// or creates one.
    async fn checkout(
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
            let session = self.provider.retrieve_checkout(&open.session_id).await?;
            if session.is_paid() {
                self.fulfil(&session).map_err(store_unavailable)?;
                self.held.forget(user, key);
                self.reload(user, key)?;
                return Ok(CheckoutState::Paid);
            }
            if session.status == "open" && session.expires_at - now_s > REUSE_MARGIN_S {
                return Ok(CheckoutState::Open(Box::new(session)));
            }
            let status = if session.status == "open" {
                "stale"
            } else {
                session.status.as_str()
            };
            self.store()
                .set_checkout_status(&session.id, status)
                .map_err(store_unavailable)?;
        }
        let customer = self.customer(user, email).await?;
        let purchases = self
            .store()
            .fulfilled_count(user, key)
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
        let quantities: Vec<Option<u64>> = pricing
            .line_items
            .iter()
            .map(|(_, quantity)| match (pricing.mode, &pricing.meter) {
                (CheckoutMode::Subscription, Some(_)) => None,
                (CheckoutMode::Subscription, None) => Some(u64::from(quantity.unwrap_or(1))),
                (CheckoutMode::Payment, _) => Some(u64::from(quantity.unwrap_or(1))),
            })
            .collect();
        // The same key within a 10-minute window: concurrent or retried requests get one
        // session; a completed purchase changes the key so the user can buy again.
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
                idempotency_key: checkout_key(user, key, purchases, bucket),
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
                    expires_ms: session.expires_at * 1000,
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

    /// Loads the user's holdings for `key` from the store into memory.
    pub(crate) fn reload(&self, user: &str, key: &str) -> Result<(), ProviderError> {
        let row = self
            .store()
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

enum CheckoutState {
    Paid,
    Open(Box<CheckoutInfo>),
}

fn checkout_key(user: &str, key: &str, purchases: i64, bucket: i64) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in [user, key, &purchases.to_string(), &bucket.to_string()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let hex: String = hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("mcpa-checkout-{hex}")
}

fn store_unavailable(error: rusqlite::Error) -> ProviderError {
    ProviderError::Unavailable(format!("payment store: {error}"))
}

impl Ticket {
    /// Settles the call: on success a credit is used for good or one meter event is queued;
    /// otherwise a reserved credit is given back. Nothing here waits on the network.
    pub(crate) fn settle(mut self, outcome: &Outcome) {
        let succeeded = outcome.status == Status::Ok;
        let key = self.pricing.key();
        let Some(grant) = self.grant.take() else {
            return;
        };
        match grant {
            Grant_::Credit if succeeded => {
                match self.inner.store().consume_credit(&self.user, key) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(user = %self.user, tool = %self.pricing.tool, "a reserved credit was missing in the store")
                    }
                    Err(error) => tracing::error!("payment store: cannot use a credit: {error}"),
                }
            }
            Grant_::Credit => self.inner.held.refund(&self.user, key),
            Grant_::Subscription if succeeded => {
                if let Some(event_name) = &self.pricing.meter {
                    self.inner
                        .queue_meter(&self.user, &self.pricing.tool, event_name);
                }
            }
            Grant_::Subscription | Grant_::Unlimited => {}
        }
    }
}

impl Drop for Ticket {
    /// A call that never finished (cancelled, its future dropped) gives its credit back.
    fn drop(&mut self) {
        if self.grant == Some(Grant_::Credit) {
            self.inner.held.refund(&self.user, self.pricing.key());
        }
    }
}

/// `payment_required` with a checkout link: an error result clients and models can act on, or
/// for clients that take it, a URL elicitation (`InputRequiredResult`) whose retry re-enters
/// the gate (the purchase is confirmed server-side, never from the client's answer).
fn payment_required(
    pricing: &ResolvedPricing,
    session: &CheckoutInfo,
    url_elicitation: bool,
) -> Outcome {
    let url = session.url.clone().unwrap_or_default();
    let amount = match (session.amount_total, &session.currency) {
        (Some(amount), Some(currency)) => format!(
            " ({}.{:02} {})",
            amount / 100,
            amount % 100,
            currency.to_uppercase()
        ),
        _ => String::new(),
    };
    let text = format!(
        "Payment required to use `{tool}`: {reason}{amount}. Complete the payment at {url} and then call the tool again.",
        tool = pricing.tool,
        reason = pricing.reason,
    );
    let structured = json!({
        "status": "payment_required",
        "tool": pricing.tool,
        "reason": pricing.reason,
        "mode": pricing.mode.as_str(),
        "checkout_url": url,
        "checkout_session_id": session.id,
        "amount": session.amount_total,
        "currency": session.currency,
        "expires_at": session.expires_at,
    });
    let detail = format!("checkout {}", session.id);
    if url_elicitation && !url.is_empty() {
        let request = ElicitRequest::new(ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message: text,
            url,
            elicitation_id: session.id.clone(),
        });
        let requests =
            InputRequests::from([("payment".to_owned(), InputRequest::Elicitation(request))]);
        let response = InputRequiredResult::new(Some(requests), None);
        return Outcome::refused(
            response,
            Status::PaymentRequired,
            "payment_required",
            detail,
        );
    }
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    Outcome::refused(result, Status::PaymentRequired, "payment_required", detail)
}

fn sign_in_required(tool: &str) -> Outcome {
    let text = format!(
        "Sign-in required: `{tool}` is a paid tool, and paying needs a signed-in user. Connect with an authenticated (OAuth) session and call it again."
    );
    let mut result = CallToolResult::error(vec![ContentBlock::text(text.clone())]);
    result.structured_content = Some(json!({ "status": "sign_in_required", "tool": tool }));
    Outcome::refused(result, Status::PaymentRequired, "sign_in_required", text)
}

fn unavailable(tool: &str, why: &str) -> Outcome {
    let text = format!(
        "Payments are unavailable right now, so `{tool}` did not run and nothing was charged. Try again in a minute."
    );
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content =
        Some(json!({ "status": "payment_unavailable", "tool": tool, "retry_after_s": 30 }));
    Outcome::refused(
        result,
        Status::PaymentUnavailable,
        "payment_unavailable",
        why.to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_reserve_and_refund_credits() {
        let held = Holdings::default();
        assert!(matches!(
            held.admit("u", "price_1", 1000, 0),
            Local::Unknown
        ));
        held.set(
            "u",
            "price_1",
            Held {
                credits: 1,
                checked_ms: 0,
                ..Held::default()
            },
        );
        assert!(matches!(
            held.admit("u", "price_1", 1000, 10),
            Local::Granted(Grant_::Credit)
        ));
        assert!(
            matches!(held.admit("u", "price_1", 1000, 10), Local::Refused),
            "the only credit is reserved"
        );
        held.refund("u", "price_1");
        assert!(matches!(
            held.admit("u", "price_1", 1000, 10),
            Local::Granted(Grant_::Credit)
        ));
        assert!(
            matches!(
                held.admit("u", "price_1", 1000, NEGATIVE_TTL_MS + 1),
                Local::Unknown
            ),
            "negative answers expire"
        );
    }

    #[test]
    fn subscriptions_are_trusted_for_their_ttl() {
        let held = Holdings::default();
        held.set(
            "u",
            "p",
            Held {
                subscription_active: true,
                checked_ms: 0,
                ..Held::default()
            },
        );
        assert!(matches!(
            held.admit("u", "p", 1000, 999),
            Local::Granted(Grant_::Subscription)
        ));
        assert!(matches!(held.admit("u", "p", 1000, 1000), Local::Unknown));
        held.set(
            "u",
            "p",
            Held {
                unlimited: true,
                ..Held::default()
            },
        );
        assert!(matches!(
            held.admit("u", "p", 1000, i64::MAX / 2),
            Local::Granted(Grant_::Unlimited)
        ));
    }

    #[test]
    fn checkout_keys_change_with_purchases_and_time() {
        let a = checkout_key("u", "p", 0, 5);
        assert_eq!(a, checkout_key("u", "p", 0, 5));
        assert_ne!(a, checkout_key("u", "p", 1, 5));
        assert_ne!(a, checkout_key("u", "p", 0, 6));
        assert!(a.len() <= 255);
    }
}
