//! Payments for `#[paid]` tools: the gate in front of each paid call, Stripe (or the local test
//! provider), webhooks, the meter-event outbox and the `payment_events` table.
//!
//! The path of a paid call: who is calling, then what they hold (the ledger:
//! memory, kept equal to the store; the store and then the provider on a miss, with a timeout,
//! failing closed) → run the tool → on success use a credit or queue one meter event (`meter`,
//! delivered in the background, durable, exactly once).
//!
//! Components, each owning its state: `ledger` (entitlements, reservations, grants and
//! take-backs), `checkouts` (customers and checkouts at the provider), `webhooks`, `meter`
//! and `gate` (admission); [`Payments`] composes them. Each reaches its tables through
//! `store::PaymentDb`: a SQLite file serving one process, or a PostgreSQL database shared by
//! replicas — credits are then reserved in the database, every replica's memory hears the
//! others' changes (`LISTEN`/`NOTIFY`), and checkouts, customers and webhook events are
//! created or applied once whichever replica sees them. On a Cloudflare Worker the tables are
//! in D1 (`store::d1`, `ledger::d1`): each step one statement or one conditional batch.

// Builds without Stripe or HTTP reach only part of this module (no webhooks, no test pages).
#![cfg_attr(not(all(feature = "stripe", feature = "http")), allow(dead_code))]
// A build without a payment database (neither `sqlite` nor `postgres`) has no `PaymentDb`
// value: building payments fails, and the code past each match on the database is unreachable.
// With D1 only (a Worker), what D1 does not store yet leaves arguments unused.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(unused_variables, unreachable_code)
)]

mod answers;
mod builder;
mod checkouts;
mod domain;
mod gate;
mod ledger;
mod meter;
pub(crate) mod pages;
pub mod pricing;
mod provider;
#[cfg(all(test, feature = "postgres", feature = "http", feature = "stripe"))]
mod replica_tests;
pub mod report;
#[cfg(feature = "http")]
mod routes;
mod store;
#[cfg(feature = "stripe")]
mod webhooks;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

pub use crate::error::{PaymentsError, PriceProblem, ProviderError};
pub use answers::PAYMENT_ERROR;
pub(crate) use answers::refusal_error;
pub use builder::PaymentsBuilder;
pub(crate) use gate::{Admission, Payer};
pub use meter::{MeterDurability, UnknownMeterDurability};
pub use store::PaymentEventKind;
#[cfg(all(feature = "workers", target_arch = "wasm32"))]
pub(crate) use store::d1::{BatchFuture, D1Payments, SharedExecutor};

use self::{
    checkouts::Checkouts,
    gate::Gate,
    ledger::Ledger,
    meter::Meter,
    pricing::{CheckoutMode, EnvLookup, PaidTool, PricingTable, ResolvedPricing},
    provider::Provider,
    store::PaymentDb,
};
use crate::{Environment, Error};

/// The payment side of a server: a cheap handle to share.
///
/// Servers with `#[paid]` tools use the process-wide handle set up from the environment by the
/// serve helpers (or `#[mcp_server(payments = self.payments)]` for an explicit one).
#[derive(Clone)]
pub struct Payments {
    core: Option<Arc<Core>>,
}

/// The components, composed.
struct Core {
    provider: Arc<Provider>,
    pricing: Arc<PricingTable>,
    ledger: Arc<Ledger>,
    gate: Gate,
    #[cfg(feature = "stripe")]
    webhooks: webhooks::Webhooks,
    meter: Arc<Meter>,
    has_webhook_secret: bool,
    environment: Environment,
    environment_chosen: bool,
}

/// What [`PaymentsBuilder::build`] hands to [`Payments::compose`].
struct Parts {
    db: PaymentDb,
    provider: Provider,
    meter_provider: Provider,
    webhook_secret: Option<String>,
    environment: Environment,
    environment_chosen: bool,
    subscription_ttl: Duration,
    lookup: EnvLookup,
    meter_durability: MeterDurability,
}

static GLOBAL: OnceLock<Payments> = OnceLock::new();

/// Why a paid tool refuses to run when payments were not set up (recorded with the call).
const NOT_CONFIGURED: &str = if cfg!(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "workers"
)) {
    "payments are not configured on this server"
} else {
    "no payment database is available in this build (mcp-analytics was built without the `sqlite` and `postgres` features)"
};

impl Payments {
    fn compose(parts: Parts) -> Result<Self, Error> {
        let provider = Arc::new(parts.provider);
        let ledger = Ledger::open(&parts.db, parts.subscription_ttl)?;
        let checkouts = Arc::new(Checkouts::new(
            provider.clone(),
            parts.db.clone(),
            ledger.clone(),
        ));
        let meter = Meter::start(
            parts.db.clone(),
            parts.meter_provider,
            parts.meter_durability,
        )?;
        let pricing = Arc::new(PricingTable::new(parts.lookup));
        let has_webhook_secret = parts.webhook_secret.is_some();
        #[cfg(not(feature = "stripe"))]
        let _ = parts.webhook_secret;
        let core = Core {
            #[cfg(feature = "stripe")]
            webhooks: webhooks::Webhooks::new(
                parts.webhook_secret,
                parts.db,
                ledger.clone(),
                checkouts.clone(),
            ),
            gate: Gate {
                ledger: ledger.clone(),
                checkouts,
                meter: meter.clone(),
                pricing: pricing.clone(),
                environment: parts.environment,
            },
            provider,
            pricing,
            ledger,
            meter,
            has_webhook_secret,
            environment: parts.environment,
            environment_chosen: parts.environment_chosen,
        };
        Ok(Payments {
            core: Some(Arc::new(core)),
        })
    }

    /// Settings from the environment; see [`PaymentsBuilder`].
    pub fn builder() -> PaymentsBuilder {
        PaymentsBuilder::default()
    }

    /// A builder with the settings from the environment, to add to before building.
    pub fn builder_from_env() -> Result<PaymentsBuilder, Error> {
        PaymentsBuilder::from_env()
    }

    /// Payments from the environment ([`PaymentsBuilder::from_env`]).
    pub fn from_env() -> Result<Self, Error> {
        PaymentsBuilder::from_env()?.build()
    }

    /// The process-wide handle; unconfigured (paid tools refuse to run) until
    /// [`Payments::init_global`].
    pub fn global() -> &'static Payments {
        static UNCONFIGURED: Payments = Payments { core: None };
        GLOBAL.get().unwrap_or(&UNCONFIGURED)
    }

    /// Sets the process-wide handle up from the environment (once; later calls return it).
    pub fn init_global() -> Result<&'static Payments, Error> {
        if let Some(payments) = GLOBAL.get() {
            return Ok(payments);
        }
        let payments = Payments::from_env()?;
        Ok(GLOBAL.get_or_init(|| payments))
    }

    /// Makes `payments` the process-wide handle (once; later calls return the first).
    #[cfg(all(feature = "workers", target_arch = "wasm32"))]
    pub(crate) fn set_global(payments: Payments) -> &'static Payments {
        GLOBAL.get_or_init(|| payments)
    }

    /// What takes the payments, for startup messages.
    pub fn description(&self) -> String {
        match &self.core {
            Some(core) => core.provider.describe(),
            None => "not configured".into(),
        }
    }

    /// Checks the pricing of every paid tool of a server: prices from the environment are set,
    /// and (with Stripe) every price exists, is active and fits the mode and meter.
    pub async fn check_tools(
        &self,
        tools: impl IntoIterator<Item = PaidTool>,
    ) -> Result<(), Error> {
        let Some(core) = &self.core else {
            return Err(PaymentsError::NotConfigured.into());
        };
        let mut checked = Vec::new();
        for tool in tools {
            let resolved = core.pricing.resolve(&tool)?;
            check_prices(&core.provider, &resolved).await?;
            checked.push(resolved);
        }
        check_shared_prices(&checked)?;
        if core.environment == Environment::Development && !core.provider.is_local() {
            tracing::debug!("paid tools use Stripe in development");
        }
        if !core.has_webhook_secret && !core.provider.is_local() {
            eprintln!(
                "payments: STRIPE_WEBHOOK_SECRET is not set; purchases are confirmed by asking Stripe when the user calls again"
            );
        }
        if core.environment == Environment::Development {
            eprintln!(
                "payments: development mode: callers without a signed-in identity pay as an anonymous per-session user"
            );
        }
        Ok(())
    }

    /// Whether payments go to the local test provider (no Stripe key, development).
    pub fn is_local(&self) -> bool {
        self.core
            .as_ref()
            .is_some_and(|core| core.provider.is_local())
    }

    /// Refuses to serve the local test provider on `addr` by accident: without a Stripe key,
    /// anyone reaching a non-loopback address could unlock paid tools with test payments, so
    /// that needs `ENVIRONMENT=development` (or [`PaymentsBuilder::environment`]) set
    /// explicitly. Over stdio the server is a local process and its test pages listen on
    /// 127.0.0.1, so no check is needed there.
    #[cfg(feature = "http")]
    pub(crate) fn check_listener(&self, addr: std::net::SocketAddr) -> Result<(), Error> {
        let Some(core) = &self.core else {
            return Ok(());
        };
        if builder::test_payments_allowed(core.provider.is_local(), core.environment_chosen, addr) {
            return Ok(());
        }
        Err(PaymentsError::TestPaymentsOffLoopback { addr }.into())
    }

    /// Whether a Worker reached at `host` may take test payments: as [`Payments::check_listener`]
    /// natively, only on a loopback name unless `ENVIRONMENT=development` was set explicitly.
    #[cfg(all(feature = "workers", target_arch = "wasm32"))]
    pub(crate) fn test_payments_allowed_at(&self, host: &str) -> bool {
        let Some(core) = &self.core else {
            return true;
        };
        !core.provider.is_local()
            || core.environment_chosen
            || matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
    }

    /// Tells the local test provider where this server is reachable (checkout links).
    pub fn set_public_url(&self, url: &str) {
        self.local_base_url(url, false);
    }

    /// The address the server bound (natively; a Worker's the request's origin), used unless
    /// a public URL was configured.
    #[cfg(any(feature = "http", all(feature = "workers", target_arch = "wasm32")))]
    pub(crate) fn default_public_url(&self, url: &str) {
        self.local_base_url(url, true);
    }

    fn local_base_url(&self, url: &str, only_if_unset: bool) {
        if let Some(local) = self.core.as_ref().and_then(|core| core.provider.as_local()) {
            local.set_base_url(url, only_if_unset);
        }
    }

    /// Waits until queued meter events have been written to the outbox and one delivery round
    /// has run (what is still undelivered stays in the outbox for the next start).
    pub async fn flush(&self) {
        if let Some(core) = &self.core {
            core.meter.flush().await;
        }
    }

    /// Meter events waiting in the outbox.
    pub fn pending_meter_events(&self) -> u64 {
        self.core.as_ref().map_or(0, |core| core.meter.pending())
    }

    /// The router with the Stripe webhook (`POST /stripe/webhook`) and the local test checkout
    /// pages (`/pay/{id}`); `serve::http` mounts it. The checkout pages answer only to loopback
    /// `Host` names and same-origin form posts.
    #[cfg(feature = "http")]
    pub fn router(&self) -> axum::Router {
        self.router_for_hosts(&[])
    }

    /// [`Payments::router`] with the checkout pages also answering to `hosts`.
    #[cfg(feature = "http")]
    pub(crate) fn router_for_hosts(&self, hosts: &[String]) -> axum::Router {
        routes::router(self.clone(), hosts)
    }

    fn core(&self) -> Option<&Core> {
        self.core.as_deref()
    }

    /// The gate for one call of the paid `tool`.
    pub(crate) async fn admit(&self, tool: PaidTool, payer: Payer) -> Admission {
        match &self.core {
            Some(core) => core.gate.admit(tool, payer).await,
            None => {
                tracing::error!(
                    tool = %tool.label(),
                    "paid tool called but payments are not configured (serve with mcp_analytics::serve, or call Payments::init_global)"
                );
                Admission::Refuse(answers::unavailable(&tool.label(), NOT_CONFIGURED))
            }
        }
    }
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("provider", &self.description())
            .finish_non_exhaustive()
    }
}

/// Checks a paid tool's prices at the provider: each exists, is active and fits the mode; a
/// metered price has a `meter` to report to, and its meter's event name is that `meter`.
async fn check_prices(provider: &Provider, pricing: &ResolvedPricing) -> Result<(), PaymentsError> {
    let tool = &pricing.tool;
    let mut metered = Vec::with_capacity(pricing.line_items.len());
    for (price, _) in &pricing.line_items {
        let info = match provider.price(price).await {
            Ok(Some(info)) => info,
            // The local test provider knows no prices.
            Ok(None) => return Ok(()),
            Err(cause) => {
                return Err(PaymentsError::PriceLookup {
                    price: price.clone(),
                    tool: tool.clone(),
                    cause,
                });
            }
        };
        let meter_mismatch = match (&info.meter_event_name, &pricing.meter) {
            (Some(event_name), Some(meter)) if event_name != meter => {
                Some(PriceProblem::MeterMismatch {
                    event_name: event_name.clone(),
                    meter: meter.clone(),
                })
            }
            _ => None,
        };
        let problem = if !info.active {
            Some(PriceProblem::Inactive)
        } else if pricing.mode == CheckoutMode::Payment && info.recurring {
            Some(PriceProblem::RecurringInPayment)
        } else if pricing.mode == CheckoutMode::Subscription && !info.recurring {
            Some(PriceProblem::OneTimeInSubscription)
        } else if info.metered && pricing.meter.is_none() {
            Some(PriceProblem::MeteredWithoutMeter)
        } else {
            meter_mismatch
        };
        if let Some(problem) = problem {
            return Err(PaymentsError::PriceUnfit {
                price: price.clone(),
                tool: tool.clone(),
                problem,
            });
        }
        metered.push(info.metered);
    }
    if pricing.meter.is_some() && !metered.contains(&true) {
        return Err(PaymentsError::NoMeteredPrice { tool: tool.clone() });
    }
    let _ = pricing.metered.set(metered);
    Ok(())
}

/// Refuses two paid tools with the same set of prices that grant different things: what a
/// user bought is held per price set, so an unlimited unlock would also run a credits tool (or
/// a subscription a one-time tool) of the same prices for free.
fn check_shared_prices(tools: &[Arc<ResolvedPricing>]) -> Result<(), PaymentsError> {
    let grants = |pricing: &ResolvedPricing| match pricing.mode {
        CheckoutMode::Payment => Some(pricing.grant),
        CheckoutMode::Subscription => None,
    };
    for (i, first) in tools.iter().enumerate() {
        if let Some(second) = tools[i + 1..]
            .iter()
            .find(|other| other.key() == first.key() && grants(other) != grants(first))
        {
            return Err(PaymentsError::SharedPrices {
                first: first.tool.clone(),
                second: second.tool.clone(),
                prices: first.key().to_string(),
            });
        }
    }
    Ok(())
}

pub(crate) use crate::clock::now_ms;

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::{
        pricing::{Grant, LineItem, Price, Pricing},
        *,
    };

    const UNLOCK: &[LineItem] = &[LineItem {
        price: Price::Id("price_unlock"),
        quantity: Some(1),
    }];
    const fn pricing(grant: Grant) -> Pricing {
        Pricing {
            mode: CheckoutMode::Payment,
            success_url: "https://example.com/ok",
            cancel_url: None,
            line_items: UNLOCK,
            meter: None,
            reason: None,
            grant,
        }
    }
    static UNLIMITED: Pricing = pricing(Grant::Unlimited);
    static CREDITS: Pricing = pricing(Grant::Credits);
    static PACK_OF_10: Pricing = pricing(Grant::pack(10));
    static PACK_OF_50: Pricing = pricing(Grant::pack(50));

    fn tool(name: &'static str, pricing: &'static Pricing) -> PaidTool {
        PaidTool {
            kind: pricing::PaidKind::Tool,
            name,
            description: None,
            pricing,
        }
    }

    #[cfg(feature = "workers")]
    #[tokio::test]
    async fn a_paid_call_on_d1_gets_a_checkout_and_runs_once_the_test_checkout_is_paid() {
        use crate::d1::{Statement, Value};
        let db = store::d1::D1Payments::on_sqlite();
        let payments = Payments::builder()
            .environment(Environment::Development)
            .d1(db.clone())
            .build()
            .unwrap();
        payments.set_public_url("http://127.0.0.1:8790");
        let payer = || Payer {
            user_id: Some("u".into()),
            email: None,
            session: None,
            url_elicitation: false,
            legacy_peer: None,
        };
        let column = |sql: &'static str| {
            let db = db.clone();
            async move {
                let rows = db.rows(Statement::new(sql, Vec::new())).await.unwrap();
                rows.into_iter().flatten().collect::<Vec<Value>>()
            }
        };
        let Admission::Refuse(refused) = payments
            .admit(tool("generate_image", &CREDITS), payer())
            .await
        else {
            panic!("an unpaid call ran");
        };
        assert_eq!(refused.status, crate::Status::PaymentRequired);
        let [Value::Text(id)] = &column("SELECT session_id FROM payment_checkouts").await[..]
        else {
            panic!("one checkout stored in D1");
        };
        let page = payments.pay_test_checkout(id).await;
        assert!(
            matches!(&page.body, pages::PageBody::Html(html) if html.contains("Test payment complete")),
            "status {}",
            page.status
        );
        let Admission::Run(ticket) = payments
            .admit(tool("generate_image", &CREDITS), payer())
            .await
        else {
            panic!("a paid call was refused");
        };
        ticket.settle_with(true).await;
        assert_eq!(
            column("SELECT credits FROM payment_entitlements").await,
            [Value::Int(0)]
        );
        assert_eq!(
            column("SELECT kind FROM payment_events ORDER BY id").await,
            [
                Value::Text("checkout_created".into()),
                Value::Text("checkout_completed".into())
            ]
        );
        let Admission::Refuse(again) = payments
            .admit(tool("generate_image", &CREDITS), payer())
            .await
        else {
            panic!("a used credit ran a second call");
        };
        assert_eq!(again.status, crate::Status::PaymentRequired);
    }

    #[tokio::test]
    async fn tools_with_the_same_prices_but_different_grants_are_refused_at_startup() {
        let dir = tempfile::tempdir().unwrap();
        let payments = Payments::builder()
            .environment(Environment::Development)
            .database(dir.path().join("paid.db"))
            .build()
            .unwrap();
        let same = [
            tool("export_all", &UNLIMITED),
            tool("export_more", &UNLIMITED),
        ];
        payments.check_tools(same).await.unwrap();
        let mixed = [
            tool("export_all", &UNLIMITED),
            tool("thumbnail", &CREDITS),
            tool("export_one", &CREDITS),
        ];
        let error = payments.check_tools(mixed).await.unwrap_err().to_string();
        assert!(
            error.contains("`export_all`") && error.contains("`thumbnail`"),
            "{error}"
        );
        assert!(error.contains("price_unlock"), "{error}");
        let packs = [
            tool("thumbnails", &PACK_OF_50),
            tool("more_thumbnails", &PACK_OF_50),
        ];
        payments.check_tools(packs).await.unwrap();
        let packs = [tool("few", &PACK_OF_10), tool("many", &PACK_OF_50)];
        let error = payments.check_tools(packs).await.unwrap_err().to_string();
        assert!(
            error.contains("`few`") && error.contains("`many`"),
            "packs of another size: {error}"
        );
    }
}

#[cfg(all(
    test,
    not(any(feature = "sqlite", feature = "postgres", feature = "workers"))
))]
mod no_database_tests {
    use super::{
        pricing::{Grant, LineItem, PaidKind, Price, Pricing},
        *,
    };
    use crate::{Database, Status};

    static UNLOCK: Pricing = Pricing {
        mode: CheckoutMode::Payment,
        success_url: "https://example.com/ok",
        cancel_url: None,
        line_items: &[LineItem {
            price: Price::Id("price_unlock"),
            quantity: Some(1),
        }],
        meter: None,
        reason: None,
        grant: Grant::Unlimited,
    };

    #[tokio::test]
    async fn without_a_payment_database_payments_cannot_be_built_and_paid_tools_refuse_to_run() {
        let error = Payments::builder()
            .environment(Environment::Development)
            .database(Database::Sqlite("paid.db".into()))
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no payment database is available in this build"),
            "{error}"
        );

        let payer = Payer {
            user_id: Some("ann".into()),
            email: None,
            session: None,
            url_elicitation: false,
            legacy_peer: None,
        };
        let tool = PaidTool {
            kind: PaidKind::Tool,
            name: "generate_image",
            description: None,
            pricing: &UNLOCK,
        };
        let Admission::Refuse(outcome) = Payments::global().admit(tool, payer).await else {
            panic!("a paid tool ran without a payment database");
        };
        assert_eq!(outcome.status, Status::PaymentUnavailable);
        let (kind, message) = outcome.error.expect("the refusal says why");
        assert_eq!(kind, "payment_unavailable");
        assert!(
            message.contains("no payment database is available in this build"),
            "{message}"
        );
    }
}
