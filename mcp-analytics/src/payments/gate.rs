//! The payment gate of one call: admission from the ledger (memory: the fast path), else under
//! the user's lock from the store and the provider (`Checkouts`: the slow path, failing
//! closed), else the refusal answer — a checkout link, "payment processing", a link to fix a
//! subscription's payment, or `payment_unavailable`. A [`Ticket`] settles after the tool ran.

use std::sync::Arc;

use super::{
    answers::{
        payment_method_required, payment_processing, payment_required, sign_in_required,
        unavailable,
    },
    checkouts::{CheckoutState, Checkouts, store_unavailable},
    ledger::{Access, Decision, Ledger},
    meter::Meter,
    pricing::{CheckoutMode, PaidTool, PricingTable, ResolvedPricing},
    provider::{CheckoutInfo, ProviderError},
};
use crate::{Environment, event::Status, outcome::Outcome};

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

/// Admission of paid calls.
pub(crate) struct Gate {
    pub(super) ledger: Arc<Ledger>,
    pub(super) checkouts: Arc<Checkouts>,
    pub(super) meter: Arc<Meter>,
    pub(super) pricing: Arc<PricingTable>,
    pub(super) environment: Environment,
}

impl Gate {
    /// The gate for one call of the paid tool (prompt, resource) `tool`.
    pub(crate) async fn admit(&self, tool: PaidTool, payer: Payer) -> Admission {
        let resolved = match self.pricing.resolve(&tool) {
            Ok(resolved) => resolved,
            Err(error) => {
                let error = error.to_string();
                tracing::error!(tool = %tool.label(), "{error}");
                return Admission::Refuse(unavailable(&tool.label(), &error));
            }
        };
        let user = match (payer.user_id.as_deref(), &payer.session, self.environment) {
            (Some(user), _, _) => user.to_owned(),
            (None, Some(session), Environment::Development) => format!("anon-{session}"),
            _ => return Admission::Refuse(sign_in_required(&tool.label())),
        };
        let grant = match self.ledger.reserve(&user, resolved.key()).await {
            Decision::Granted(grant) => Ok(grant),
            Decision::Refused | Decision::Unknown | Decision::Unavailable => match self
                .slow_path(&user, payer.email.as_deref(), &resolved)
                .await
            {
                Ok(grant) => Ok(grant),
                Err(Refusal::Final(outcome)) => Err(*outcome),
                Err(Refusal::Checkout(session)) => {
                    // A Worker cannot wait for the purchase: it has no timers, and no stream
                    // to send the client a request on.
                    match payer.legacy_peer.as_ref().filter(|peer| {
                        !cfg!(target_arch = "wasm32")
                            && peer
                                .supported_elicitation_modes()
                                .contains(&rmcp::service::ElicitationMode::Url)
                    }) {
                        Some(peer) => self.elicit_and_wait(peer, &user, &resolved, &session).await,
                        None => Err(payment_required(&resolved, &session, payer.url_elicitation)),
                    }
                }
            },
        };
        match grant {
            Ok(grant) => Admission::Run(Ticket {
                ledger: self.ledger.clone(),
                meter: self.meter.clone(),
                user,
                pricing: resolved,
                grant: Some(grant),
                succeeded: false,
            }),
            Err(refusal) => Admission::Refuse(refusal),
        }
    }

    /// Under the user's lock: load from the store, ask the provider, send a subscriber with a
    /// payment problem to fix it, reuse or create a checkout. Every failure refuses the call
    /// (fail closed).
    async fn slow_path(
        &self,
        user: &str,
        email: Option<&str>,
        pricing: &ResolvedPricing,
    ) -> Result<Access, Refusal> {
        let lock = self.checkouts.user_lock(user);
        let _guard = lock.lock().await;
        let key = pricing.key();
        let failed = |error: ProviderError| Refusal::from(self.unavailable(pricing, &error));
        // Another call may have settled it while we waited, or the store knows more.
        self.ledger
            .reload(user, key)
            .await
            .map_err(|error| failed(store_unavailable(error)))?;
        match self.ledger.reserve(user, key).await {
            Decision::Granted(grant) => return Ok(grant),
            // The provider was asked recently: no need to ask it again.
            Decision::Refused => {}
            Decision::Unavailable => return Err(failed(store_down())),
            Decision::Unknown => {
                self.checkouts
                    .sync(user, email, pricing)
                    .await
                    .map_err(failed)?;
                match self.ledger.reserve(user, key).await {
                    Decision::Granted(grant) => return Ok(grant),
                    Decision::Unavailable => return Err(failed(store_down())),
                    Decision::Refused | Decision::Unknown => {}
                }
            }
        }
        // A delayed payment still clearing comes first: its subscription is `incomplete`
        // meanwhile, which is not a payment method to fix.
        if let Some(state) = self.checkouts.clearing(user, key).await.map_err(failed)? {
            return self.answer(user, pricing, state).await;
        }
        if pricing.mode == CheckoutMode::Subscription
            && let Some(subscription) = self.ledger.subscription_needing_fix(user, key)
        {
            let url = self
                .checkouts
                .payment_fix_url(user, email, &subscription, pricing)
                .await
                .map_err(failed)?;
            return Err(payment_method_required(pricing, &subscription, url.as_deref()).into());
        }
        let state = self
            .checkouts
            .checkout(user, email, pricing)
            .await
            .map_err(failed)?;
        self.answer(user, pricing, state).await
    }

    /// The call's admission once the user's checkout is known.
    async fn answer(
        &self,
        user: &str,
        pricing: &ResolvedPricing,
        state: CheckoutState,
    ) -> Result<Access, Refusal> {
        match state {
            CheckoutState::Paid => match self.ledger.reserve(user, pricing.key()).await {
                Decision::Granted(grant) => Ok(grant),
                _ => Err(unavailable(&pricing.tool, "the purchase is being processed").into()),
            },
            CheckoutState::Open(session) => Err(Refusal::Checkout(session)),
            CheckoutState::Processing(session) => Err(payment_processing(pricing, &session).into()),
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
        let deadline = tokio::time::Instant::now() + PURCHASE_WAIT;
        loop {
            let _ = self.ledger.reload(user, key).await;
            if let Decision::Granted(grant) = self.ledger.reserve(user, key).await {
                return Ok(grant);
            }
            // Paid: granted (unless a webhook did) and looked at once more. Still nothing
            // means another call took what it bought: this one needs a new purchase.
            if let Ok(
                super::ledger::Fulfilment::Granted | super::ledger::Fulfilment::AlreadyGranted,
            ) = self.checkouts.confirm(&session.id).await
            {
                return match self.ledger.reserve(user, key).await {
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

/// A credit could not be reserved in the store: the call does not run.
fn store_down() -> ProviderError {
    ProviderError::Unavailable("cannot reserve a credit in the payment store".into())
}

/// Permission to run one paid call, settled once it ended.
pub(crate) struct Ticket {
    ledger: Arc<Ledger>,
    meter: Arc<Meter>,
    user: String,
    pricing: Arc<ResolvedPricing>,
    /// `None` once settled.
    grant: Option<Access>,
    /// The call succeeded (known once `settle` began).
    succeeded: bool,
}

impl Ticket {
    /// Settles the call: on success a credit is used for good or one meter event is recorded;
    /// otherwise a reserved credit is given back. Nothing here waits on the network.
    pub(crate) async fn settle(self, outcome: &Outcome) {
        self.settle_with(outcome.status == Status::Ok).await;
    }

    /// Settles a call whose success is known without an [`Outcome`] (a prompt or a resource:
    /// it succeeded when it answered without an error).
    pub(crate) async fn settle_with(mut self, succeeded: bool) {
        self.succeeded = succeeded;
        let Some(grant) = self.grant else {
            return;
        };
        let key = self.pricing.key();
        match grant {
            // On a shared store the commit awaits the database: it runs as a task of its own,
            // to its end even if this future is dropped, and `Drop` has nothing left to do.
            Access::Credit(reservation) if self.succeeded && self.ledger.is_shared() => {
                self.grant = None;
                let (ledger, user, key) = (self.ledger.clone(), self.user.clone(), key.clone());
                let commit =
                    tokio::spawn(async move { ledger.commit(&user, &key, reservation).await });
                if let Err(error) = commit.await {
                    tracing::error!("using a credit failed: {error}");
                }
                return;
            }
            // The grant is kept until the commit returned: if this future is dropped while it
            // waits (the ledger's write lock, or a pause between attempts), `Drop` finishes
            // using the credit. (The SQLite store's decrement completes within one poll, and
            // an attempt that failed was rolled back, so it never counts twice.)
            Access::Credit(reservation) if self.succeeded => {
                self.ledger.commit(&self.user, key, reservation).await;
            }
            // Memory gives the credit back at once; a shared store's part runs to its end
            // even if this future is dropped.
            Access::Credit(reservation) => {
                self.grant = None;
                self.ledger.release(&self.user, key, reservation).await;
                return;
            }
            Access::Subscription if self.succeeded => {
                if let Some(event_name) = &self.pricing.meter {
                    self.meter
                        .record(&self.user, &self.pricing.tool, event_name)
                        .await;
                }
            }
            Access::Subscription | Access::Unlimited => {}
        }
        self.grant = None;
    }
}

impl Drop for Ticket {
    /// A call that never finished (cancelled, its future dropped) gives its credit back; a
    /// successful call whose settling was cancelled before its credit was used uses it in
    /// the background (giving it back would run a successful call for free).
    fn drop(&mut self) {
        let Some(Access::Credit(reservation)) = self.grant else {
            return;
        };
        if !self.succeeded {
            let _ = self
                .ledger
                .release_in_background(&self.user, self.pricing.key(), reservation);
            return;
        }
        let (ledger, pricing, user) = (
            self.ledger.clone(),
            self.pricing.clone(),
            std::mem::take(&mut self.user),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime
                    .spawn(async move { ledger.commit(&user, pricing.key(), reservation).await });
            }
            // No runtime to finish on (shutting down): the credit stays reserved in memory,
            // so this process does not sell it again.
            Err(_) => tracing::error!(
                user,
                tool = %pricing.tool,
                "a successful call's credit could not be used: its settling was cancelled"
            ),
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::{collections::HashMap, future::Future, pin::pin, task::Poll};

    use rmcp::model::{CallToolResponse, CallToolResult};

    use super::*;
    use crate::payments::{
        domain::{CheckoutStatus, PaymentStatus},
        ledger::sqlite::SqliteLedger,
        meter::MeterDurability,
        pricing::Pricing,
        provider::{Provider, local::LocalProvider},
        store::{PaymentStore, SharedStore},
    };

    const USER: &str = "alice";

    /// A ledger on a real database where `USER` bought 2 credits of `price_image`.
    async fn ledger_with_two_credits(db: &std::path::Path) -> (SharedStore, Arc<Ledger>) {
        let store = SharedStore::new(PaymentStore::open(db).unwrap());
        let ledger = Arc::new(Ledger::new(
            Arc::new(SqliteLedger::new(store.clone())),
            std::time::Duration::from_secs(60),
        ));
        let metadata = HashMap::from([
            ("mcp_user_id".to_owned(), USER.to_owned()),
            ("mcp_price_key".to_owned(), "price_image".to_owned()),
            ("mcp_tool".to_owned(), "image".to_owned()),
            ("mcp_grant".to_owned(), "2".to_owned()),
        ]);
        let paid = CheckoutInfo {
            id: "cs_1".into(),
            url: None,
            status: CheckoutStatus::Complete,
            payment_status: PaymentStatus::Paid,
            mode: CheckoutMode::Payment,
            customer: Some("cus_1".into()),
            subscription: None,
            client_reference_id: Some(USER.into()),
            metadata,
            amount_total: Some(1000),
            currency: Some("usd".into()),
            expires_at: 0,
            payment_intent: Some("pi_1".into()),
        };
        ledger.fulfil(&paid).await.unwrap();
        (store, ledger)
    }

    fn credits_in_store(db: &std::path::Path) -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row(
                "SELECT coalesce(sum(credits), 0) FROM payment_entitlements",
                [],
                |row| row.get(0),
            )
            .unwrap()
    }

    /// The handler's future dropped while the successful call's credit was being used (the
    /// ledger's write lock not yet acquired): the credit is still used, once, not left
    /// reserved in memory and free in the store.
    #[tokio::test]
    async fn a_successful_call_cancelled_while_settling_still_uses_its_credit() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("paid.db");
        let (store, ledger) = ledger_with_two_credits(&db).await;
        let pricing = ResolvedPricing::resolve(
            "image",
            None,
            &Pricing {
                mode: CheckoutMode::Payment,
                success_url: "https://example.com/ok",
                cancel_url: None,
                line_items: &[crate::payments::pricing::LineItem {
                    price: crate::payments::pricing::Price::Id("price_image"),
                    quantity: Some(2),
                }],
                meter: None,
                reason: None,
                grant: crate::payments::pricing::Grant::Credits,
            },
            |_| None,
        )
        .unwrap();
        let key = pricing.key().clone();
        ledger.reload(USER, &key).await.unwrap();
        let Decision::Granted(grant) = ledger.reserve(USER, &key).await else {
            panic!("two credits were bought");
        };
        let meter = Meter::start(
            crate::payments::store::PaymentDb::Sqlite(store),
            Provider::Local(LocalProvider::new(HashMap::new())),
            MeterDurability::Queued,
        )
        .unwrap();
        let ticket = Ticket {
            ledger: ledger.clone(),
            meter,
            user: USER.into(),
            pricing: Arc::new(pricing),
            grant: Some(grant),
            succeeded: false,
        };
        let ok = Outcome::from_response(Ok(CallToolResponse::Complete(CallToolResult::success(
            vec![],
        ))));
        assert_eq!(ok.status, Status::Ok);

        // Polled once with the task's cooperative budget used up, the ledger's write lock
        // answers "not yet": the settle future is parked at that point, then dropped.
        let mut settle = Box::pin(ticket.settle(&ok));
        std::future::poll_fn(|cx| {
            while pin!(tokio::task::consume_budget()).poll(cx).is_ready() {}
            assert!(settle.as_mut().poll(cx).is_pending(), "parked on the lock");
            Poll::Ready(())
        })
        .await;
        drop(settle);

        for _ in 0..100 {
            if credits_in_store(&db) == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            credits_in_store(&db),
            1,
            "the successful call used its credit"
        );
        ledger.reload(USER, &key).await.unwrap();
        let Decision::Granted(Access::Credit(reservation)) = ledger.reserve(USER, &key).await
        else {
            panic!("one credit is left");
        };
        ledger.release(USER, &key, reservation).await;
        assert!(
            matches!(
                ledger.reserve(USER, &key).await,
                Decision::Granted(Access::Credit(_))
            ),
            "one credit is left, and it is not stuck reserved"
        );
        assert!(!matches!(
            ledger.reserve(USER, &key).await,
            Decision::Granted(_)
        ));
    }
}
