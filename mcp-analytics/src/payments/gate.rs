//! The payment gate of one call: decide from what the user holds (`holdings`, in memory; the
//! store and then the provider on a miss, `purchase`), reserve a credit, or answer (`answers`)
//! with a checkout link / `payment_unavailable`. A [`Ticket`] settles after the tool ran.

use std::sync::Arc;

use super::{
    Inner, Payments,
    answers::{payment_required, sign_in_required, unavailable},
    holdings::{Access, Decision, Held},
    now_ms,
    pricing::{Pricing, ResolvedPricing},
    provider::{CheckoutInfo, ProviderError},
    purchase::CheckoutState,
};
use crate::{
    Environment,
    event::Status,
    private::{Outcome, ToolSpec},
};

/// How long a legacy client may take to answer the URL elicitation.
const ELICITATION_WAIT: std::time::Duration = std::time::Duration::from_secs(300);
/// How long, after the user accepted, the call waits for the purchase to complete.
const PURCHASE_WAIT: std::time::Duration = std::time::Duration::from_secs(600);
/// How often the provider is asked meanwhile.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

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
    grant: Option<Access>,
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
        let ttl = inner.subscription_ttl.as_millis() as i64;
        let grant = match inner.held.admit(&user, resolved.key(), ttl, now_ms()) {
            Decision::Granted(grant) => Ok(grant),
            Decision::Refused | Decision::Unknown => {
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
    ) -> Result<Access, Refusal> {
        let lock = self.user_lock(user);
        let _guard = lock.lock().await;
        let key = pricing.key();
        let ttl = self.subscription_ttl.as_millis() as i64;
        let store_error = |error: rusqlite::Error| {
            tracing::error!("payment store: {error}");
            unavailable(&pricing.tool, "the payment records cannot be read")
        };
        // Another call may have settled it while we waited, or the store knows more. The store
        // stays locked until memory agrees with it, so a credit settled meanwhile counts once.
        {
            let store = self.store();
            if let Some(row) = store.entitlement(user, key).map_err(store_error)? {
                self.held.set(user, key, Held::from(&row));
            }
        }
        match self.held.admit(user, key, ttl, now_ms()) {
            Decision::Granted(grant) => return Ok(grant),
            Decision::Refused => {}
            Decision::Unknown => {
                let customer = self
                    .customer(user, email)
                    .await
                    .map_err(|e| self.unavailable(pricing, &e))?;
                self.sync(user, &customer, pricing)
                    .await
                    .map_err(|e| self.unavailable(pricing, &e))?;
                if let Decision::Granted(grant) = self.held.admit(user, key, ttl, now_ms()) {
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
                Decision::Granted(grant) => Ok(grant),
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
    ) -> Result<Access, Outcome> {
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
            if let Decision::Granted(grant) = self.held.admit(user, key, ttl, now_ms()) {
                return Ok(grant);
            }
            if let Ok(current) = self.provider.retrieve_checkout(&session.id).await
                && current.is_paid()
            {
                // Paid: grant it (unless a webhook did) and look once more. Still nothing means
                // another call took what it bought: this one needs a new purchase.
                if let Err(error) = self.fulfil(&current) {
                    tracing::error!("payment store: cannot record a purchase: {error}");
                }
                let _ = self.reload(user, key);
                return match self.held.admit(user, key, ttl, now_ms()) {
                    Decision::Granted(grant) => Ok(grant),
                    _ => Err(refused()),
                };
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
}

impl Ticket {
    /// Settles the call: on success a credit is used for good or one meter event is recorded;
    /// otherwise a reserved credit is given back. Nothing here waits on the network.
    pub(crate) fn settle(mut self, outcome: &Outcome) {
        let succeeded = outcome.status == Status::Ok;
        let key = self.pricing.key();
        let Some(grant) = self.grant.take() else {
            return;
        };
        match grant {
            Access::Credit if succeeded => {
                // Store and memory change together (reloads hold the store lock too).
                let store = self.inner.store();
                match store.consume_credit(&self.user, key) {
                    Ok(found) => {
                        if !found {
                            tracing::error!(user = %self.user, tool = %self.pricing.tool, "a reserved credit was missing in the store");
                        }
                        self.inner.held.used(&self.user, key);
                    }
                    // The credit stays reserved in memory, so this process does not sell it
                    // again although the store still counts it.
                    Err(error) => tracing::error!("payment store: cannot use a credit: {error}"),
                }
            }
            Access::Credit => self.inner.held.refund(&self.user, key),
            Access::Subscription if succeeded => {
                if let Some(event_name) = &self.pricing.meter {
                    self.inner
                        .meter_call(&self.user, &self.pricing.tool, event_name);
                }
            }
            Access::Subscription | Access::Unlimited => {}
        }
    }
}

impl Drop for Ticket {
    /// A call that never finished (cancelled, its future dropped) gives its credit back.
    fn drop(&mut self) {
        if self.grant == Some(Access::Credit) {
            self.inner.held.refund(&self.user, self.pricing.key());
        }
    }
}
