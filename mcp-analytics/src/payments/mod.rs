//! Payments for `#[paid]` tools: the gate in front of each paid call, Stripe (or the local test
//! provider), webhooks, the meter-event outbox and the `payment_events` table.
//!
//! The path of a paid call: who is calling (`gate`) → what they hold (an in-memory view of
//! `payment_entitlements`, kept current by webhooks; Stripe is asked only on a miss, with a
//! timeout, failing closed) → run the tool → on success use a credit or queue one meter event
//! (`meter`, delivered in the background, durable, exactly once).

// Builds without Stripe or HTTP reach only part of this module (no webhooks, no test pages).
#![cfg_attr(not(all(feature = "stripe", feature = "http")), allow(dead_code))]

mod answers;
mod fulfil;
mod gate;
mod holdings;
mod meter;
pub mod pricing;
mod provider;
mod purchase;
pub mod report;
#[cfg(feature = "http")]
mod routes;
mod store;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

pub(crate) use gate::{Admission, Payer};
pub use meter::MeterDurability;
pub use store::PaymentEventKind;

use self::{
    pricing::{Pricing, ResolvedPricing},
    provider::{Provider, local::LocalProvider},
    store::PaymentStore,
};
use crate::{Environment, Error, private::ToolSpec};

/// Settings of [`Payments`], usually from the environment.
///
/// | variable | meaning |
/// |---|---|
/// | `STRIPE_SECRET_KEY` | Stripe secret key (`sk_test_…`, `sk_live_…`, `rk_…`); unset → local test payments (development only) |
/// | `STRIPE_WEBHOOK_SECRET` | signing secret of the webhook endpoint (`whsec_…`) at `/stripe/webhook` |
/// | `STRIPE_API_BASE` | another Stripe API base URL (a proxy or a test double) |
/// | `MCP_PUBLIC_URL` | this server's public URL (local test checkout links) |
/// | `ENVIRONMENT` | `production` makes a missing key a startup error |
/// | `MCP_ANALYTICS_DB` | the database holding the payment tables (with the analytics) |
/// | `MCP_ANALYTICS_METER_DURABILITY` | `queued` (default) or `committed`: see [`MeterDurability`] |
pub struct PaymentsBuilder {
    secret_key: Option<String>,
    webhook_secret: Option<String>,
    base_url: Option<String>,
    public_url: Option<String>,
    environment: Environment,
    /// Whether `environment` was chosen (`ENVIRONMENT` or [`PaymentsBuilder::environment`])
    /// rather than defaulted.
    environment_chosen: bool,
    database: PathBuf,
    timeout: Duration,
    subscription_ttl: Duration,
    local_prices: HashMap<String, (i64, String)>,
    meter_durability: MeterDurability,
    lookup: EnvLookup,
}

impl Default for PaymentsBuilder {
    fn default() -> Self {
        Self {
            secret_key: None,
            webhook_secret: None,
            base_url: None,
            public_url: None,
            environment: Environment::Development,
            environment_chosen: false,
            database: PathBuf::from(crate::Config::DEFAULT_DATABASE),
            timeout: Duration::from_secs(5),
            subscription_ttl: Duration::from_secs(3600),
            local_prices: HashMap::new(),
            meter_durability: MeterDurability::default(),
            lookup: Arc::new(|_| None),
        }
    }
}

impl PaymentsBuilder {
    /// Settings from the environment (see the table above).
    pub fn from_env() -> Result<Self, Error> {
        let lookup = crate::config::env_lookup()?;
        let config = crate::Config::from_lookup(&lookup)?;
        let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let meter_durability = match non_empty("MCP_ANALYTICS_METER_DURABILITY") {
            Some(value) => value.parse().map_err(|error| {
                Error::Payments(format!("MCP_ANALYTICS_METER_DURABILITY: {error}"))
            })?,
            None => MeterDurability::default(),
        };
        Ok(Self {
            secret_key: non_empty("STRIPE_SECRET_KEY"),
            webhook_secret: non_empty("STRIPE_WEBHOOK_SECRET"),
            base_url: non_empty("STRIPE_API_BASE"),
            public_url: non_empty("MCP_PUBLIC_URL"),
            environment: config.environment,
            environment_chosen: lookup("ENVIRONMENT").is_some(),
            database: config.database,
            meter_durability,
            lookup: Arc::new(lookup),
            ..Self::default()
        })
    }

    /// The Stripe secret key.
    pub fn secret_key(mut self, key: impl Into<String>) -> Self {
        self.secret_key = Some(key.into());
        self
    }

    /// The webhook signing secret (`whsec_…`).
    pub fn webhook_secret(mut self, secret: impl Into<String>) -> Self {
        self.webhook_secret = Some(secret.into());
        self
    }

    /// Talk to Stripe at `url` (a proxy, or a test double such as an in-process fake).
    pub fn stripe_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// This server's public base URL (for local test checkout links).
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Development or production. Without a Stripe key, test payments are taken on a
    /// non-loopback address only when development is chosen here or by `ENVIRONMENT`.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self.environment_chosen = true;
        self
    }

    /// The SQLite file for the payment tables: what users bought must survive restarts
    /// (default: the analytics default, `./mcp-analytics.db`).
    pub fn database(mut self, path: impl Into<PathBuf>) -> Self {
        self.database = path.into();
        self
    }

    /// The longest a single Stripe request may take on the call path (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a subscription seen active is trusted without asking Stripe again (default
    /// 1 h; webhooks update it at once).
    pub fn subscription_ttl(mut self, ttl: Duration) -> Self {
        self.subscription_ttl = ttl;
        self
    }

    /// When a successful metered call's usage becomes durable (default: queued, in the outbox
    /// within 50 ms; see [`MeterDurability`]).
    pub fn meter_durability(mut self, durability: MeterDurability) -> Self {
        self.meter_durability = durability;
        self
    }

    /// The amount of a price, shown by the local test provider's checkout page.
    pub fn local_price(mut self, price: &str, amount: i64, currency: &str) -> Self {
        self.local_prices
            .insert(price.to_owned(), (amount, currency.to_ascii_lowercase()));
        self
    }

    /// Where `price = env("VAR")` prices are read from (default for the builder: nowhere;
    /// [`PaymentsBuilder::from_env`] reads the environment).
    pub fn env(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    /// Opens the payment tables, chooses the provider and starts the meter-event sender.
    pub fn build(self) -> Result<Payments, Error> {
        // Development lets anonymous callers pay (per session): not with real money.
        if self.environment != Environment::Production
            && self.secret_key.as_deref().is_some_and(is_live_key)
        {
            return Err(Error::Payments(
                "a live Stripe key outside production: set ENVIRONMENT=production (development accepts anonymous callers), or use a test key (sk_test_…)".into(),
            ));
        }
        // The meter thread has its own client: pooled connections belong to the runtime that
        // opened them.
        let meter_provider = match &self.secret_key {
            Some(key) => stripe_provider(key, self.base_url.as_deref(), self.timeout)?,
            None => Provider::Local(LocalProvider::default()),
        };
        let provider = match &self.secret_key {
            Some(key) => stripe_provider(key, self.base_url.as_deref(), self.timeout)?,
            None if self.environment == Environment::Production => {
                return Err(Error::Payments(
                    "STRIPE_SECRET_KEY is not set: paid tools cannot take payments in production (set it, or ENVIRONMENT=development for local test payments)".into(),
                ));
            }
            None => {
                let local = LocalProvider::new(self.local_prices.clone());
                if let Some(url) = &self.public_url {
                    local.set_base_url(url, false);
                }
                Provider::Local(local)
            }
        };
        let store = PaymentStore::open(&self.database).map_err(|error| {
            Error::Payments(format!(
                "cannot open the payment tables in {}: {error}",
                self.database.display()
            ))
        })?;
        let inner = Arc::new(Inner {
            provider,
            meter_provider,
            store: Mutex::new(store),
            webhook_secret: self.webhook_secret,
            environment: self.environment,
            environment_chosen: self.environment_chosen,
            subscription_ttl: self.subscription_ttl,
            lookup: self.lookup,
            pricing: Mutex::new(HashMap::new()),
            held: holdings::Holdings::default(),
            user_locks: Mutex::new(HashMap::new()),
            meter_durability: self.meter_durability,
            meter: OnceLock::new(),
        });
        let sender = meter::start(&inner)?;
        let _ = inner.meter.set(sender);
        Ok(Payments { inner: Some(inner) })
    }
}

#[cfg(feature = "stripe")]
fn stripe_provider(
    key: &str,
    base_url: Option<&str>,
    timeout: Duration,
) -> Result<Provider, Error> {
    let official = base_url.is_none_or(is_stripe_api);
    let live = is_live_key(key);
    if !(key.starts_with("sk_") || key.starts_with("rk_")) {
        return Err(Error::Payments(
            "STRIPE_SECRET_KEY does not look like a Stripe secret key (`sk_test_…`, `sk_live_…` or `rk_…`)".into(),
        ));
    }
    if live && !official {
        return Err(Error::Payments(
            "refusing to send a live Stripe key to a base URL other than https://api.stripe.com"
                .into(),
        ));
    }
    provider::stripe::StripeProvider::new(key, base_url, timeout)
        .map(|stripe| Provider::Stripe(Box::new(stripe)))
        .map_err(Error::Payments)
}

/// Whether `url` is Stripe's own API (`https://api.stripe.com`, no user info, default port).
#[cfg(feature = "stripe")]
fn is_stripe_api(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|url| {
        url.scheme() == "https"
            && url.host_str() == Some("api.stripe.com")
            && url.port().is_none()
            && url.username().is_empty()
            && url.password().is_none()
    })
}

/// Whether payments may be served on `addr`: Stripe anywhere; the local test provider on a
/// loopback address, or anywhere when the environment was chosen (development: production
/// without a key fails to build).
#[cfg(feature = "http")]
fn test_payments_allowed(
    local: bool,
    environment_chosen: bool,
    addr: std::net::SocketAddr,
) -> bool {
    !local || environment_chosen || addr.ip().is_loopback()
}

fn is_live_key(key: &str) -> bool {
    key.starts_with("sk_live_") || key.starts_with("rk_live_")
}

#[cfg(not(feature = "stripe"))]
fn stripe_provider(_: &str, _: Option<&str>, _: Duration) -> Result<Provider, Error> {
    Err(Error::Payments(
        "STRIPE_SECRET_KEY is set but mcp-analytics was built without the `stripe` feature".into(),
    ))
}

/// The payment side of a server: a cheap handle to share.
///
/// Servers with `#[paid]` tools use the process-wide handle set up from the environment by the
/// serve helpers (or `#[mcp_server(payments = self.payments)]` for an explicit one).
#[derive(Clone)]
pub struct Payments {
    inner: Option<Arc<Inner>>,
}

pub(crate) struct Inner {
    provider: Provider,
    /// The provider the meter thread uses.
    meter_provider: Provider,
    store: Mutex<PaymentStore>,
    webhook_secret: Option<String>,
    environment: Environment,
    environment_chosen: bool,
    subscription_ttl: Duration,
    lookup: EnvLookup,
    /// Resolved pricing per tool name.
    pricing: Mutex<HashMap<&'static str, Arc<ResolvedPricing>>>,
    held: holdings::Holdings,
    /// One async lock per user for the slow path (no duplicate customers or checkouts).
    user_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    meter_durability: MeterDurability,
    meter: OnceLock<meter::Sender>,
}

/// Where `price = env("VAR")` values come from.
type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

static GLOBAL: OnceLock<Payments> = OnceLock::new();

impl Payments {
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
        static UNCONFIGURED: Payments = Payments { inner: None };
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

    /// What takes the payments, for startup messages.
    pub fn description(&self) -> String {
        match &self.inner {
            Some(inner) => inner.provider.describe(),
            None => "not configured".into(),
        }
    }

    /// Checks the pricing of every paid tool of a server: prices from the environment are set,
    /// and (with Stripe) every price exists, is active and fits the mode and meter.
    pub async fn check_tools(&self, tools: &[ToolSpec]) -> Result<(), Error> {
        let Some(inner) = &self.inner else {
            return Err(Error::Payments("payments are not configured".into()));
        };
        for spec in tools {
            let Some(pricing) = spec.paid else { continue };
            let resolved = inner.resolve(spec, pricing).map_err(Error::Payments)?;
            inner.check_prices(&resolved).await?;
        }
        if inner.environment == Environment::Development && !inner.provider.is_local() {
            tracing::debug!("paid tools use Stripe in development");
        }
        if inner.webhook_secret.is_none() && !inner.provider.is_local() {
            eprintln!(
                "payments: STRIPE_WEBHOOK_SECRET is not set; purchases are confirmed by asking Stripe when the user calls again"
            );
        }
        if inner.environment == Environment::Development {
            eprintln!(
                "payments: development mode: callers without a signed-in identity pay as an anonymous per-session user"
            );
        }
        Ok(())
    }

    /// Whether payments go to the local test provider (no Stripe key, development).
    pub fn is_local(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.provider.is_local())
    }

    /// Refuses to serve the local test provider on `addr` by accident: without a Stripe key,
    /// anyone reaching a non-loopback address could unlock paid tools with test payments, so
    /// that needs `ENVIRONMENT=development` (or [`PaymentsBuilder::environment`]) set
    /// explicitly. Over stdio the server is a local process and its test pages listen on
    /// 127.0.0.1, so no check is needed there.
    #[cfg(feature = "http")]
    pub(crate) fn check_listener(&self, addr: std::net::SocketAddr) -> Result<(), Error> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        if test_payments_allowed(inner.provider.is_local(), inner.environment_chosen, addr) {
            return Ok(());
        }
        Err(Error::Payments(format!(
            "STRIPE_SECRET_KEY is not set, so paid tools would take test payments from anyone reaching {addr}: set STRIPE_SECRET_KEY for real payments, or ENVIRONMENT=development to allow test payments on this address (or listen on 127.0.0.1)"
        )))
    }

    /// Tells the local test provider where this server is reachable (checkout links).
    pub fn set_public_url(&self, url: &str) {
        self.local_base_url(url, false);
    }

    /// The address the server bound, used unless a public URL was configured.
    #[cfg(feature = "http")]
    pub(crate) fn default_public_url(&self, url: &str) {
        self.local_base_url(url, true);
    }

    fn local_base_url(&self, url: &str, only_if_unset: bool) {
        if let Some(local) = self
            .inner
            .as_ref()
            .and_then(|inner| inner.provider.as_local())
        {
            local.set_base_url(url, only_if_unset);
        }
    }

    /// Waits until queued meter events have been written to the outbox and one delivery round
    /// has run (what is still undelivered stays in the outbox for the next start).
    pub async fn flush(&self) {
        if let Some(sender) = self.inner.as_ref().and_then(|inner| inner.meter.get()) {
            sender.flush().await;
        }
    }

    /// Meter events waiting in the outbox.
    pub fn pending_meter_events(&self) -> u64 {
        self.inner.as_ref().map_or(0, |inner| {
            inner.store().pending_meters().unwrap_or(0).max(0) as u64
        })
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

    pub(crate) fn inner(&self) -> Option<&Arc<Inner>> {
        self.inner.as_ref()
    }
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("provider", &self.description())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn store(&self) -> std::sync::MutexGuard<'_, PaymentStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The resolved pricing of a paid tool (prices from the environment read once).
    fn resolve(
        &self,
        spec: &ToolSpec,
        pricing: &'static Pricing,
    ) -> Result<Arc<ResolvedPricing>, String> {
        let mut cache = self.pricing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(resolved) = cache.get(spec.name) {
            return Ok(resolved.clone());
        }
        let resolved = Arc::new(ResolvedPricing::resolve(
            spec.name,
            spec.description,
            pricing,
            |name| (self.lookup)(name),
        )?);
        cache.insert(spec.name, resolved.clone());
        Ok(resolved)
    }

    async fn check_prices(&self, pricing: &ResolvedPricing) -> Result<(), Error> {
        let tool = &pricing.tool;
        let mut metered = Vec::with_capacity(pricing.line_items.len());
        for (price, _) in &pricing.line_items {
            let info = match self.provider.price(price).await {
                Ok(Some(info)) => info,
                // The local test provider knows no prices.
                Ok(None) => return Ok(()),
                Err(error) => {
                    return Err(Error::Payments(format!(
                        "cannot check price {price} of tool `{tool}`: {error}"
                    )));
                }
            };
            let problem = if !info.active {
                Some("is not active")
            } else if pricing.mode == pricing::CheckoutMode::Payment && info.recurring {
                Some("is recurring, but the tool uses mode = \"payment\"")
            } else if pricing.mode == pricing::CheckoutMode::Subscription && !info.recurring {
                Some("is one-time, but the tool uses mode = \"subscription\"")
            } else if info.metered && pricing.meter.is_none() {
                Some("is metered, but the tool names no `meter` to report usage to")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(Error::Payments(format!(
                    "price {price} of tool `{tool}` {problem}"
                )));
            }
            metered.push(info.metered);
        }
        if pricing.meter.is_some() && !metered.contains(&true) {
            return Err(Error::Payments(format!(
                "tool `{tool}` reports usage to a meter, but none of its prices is metered"
            )));
        }
        let _ = pricing.metered.set(metered);
        Ok(())
    }

    fn user_lock(&self, user: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.user_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(user.to_owned()).or_default().clone()
    }
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

#[cfg(all(test, feature = "http"))]
mod listener_tests {
    use super::test_payments_allowed;

    #[test]
    fn test_payments_need_loopback_or_a_chosen_environment() {
        let public = "0.0.0.0:8080".parse().unwrap();
        let loopback = "127.0.0.1:8080".parse().unwrap();
        assert!(!test_payments_allowed(true, false, public));
        assert!(
            test_payments_allowed(true, true, public),
            "ENVIRONMENT=development"
        );
        assert!(test_payments_allowed(true, false, loopback));
        assert!(test_payments_allowed(false, false, public), "Stripe");
    }
}

#[cfg(all(test, feature = "stripe"))]
mod tests {
    use super::*;

    #[test]
    fn only_stripe_itself_is_stripe_api() {
        for good in ["https://api.stripe.com", "https://api.stripe.com/v1/"] {
            assert!(is_stripe_api(good), "{good}");
        }
        for bad in [
            "https://api.stripe.com.evil.example",
            "https://api.stripe.com@evil.example",
            "http://api.stripe.com",
            "https://api.stripe.com:8443",
            "https://evil.example/api.stripe.com",
        ] {
            assert!(!is_stripe_api(bad), "{bad}");
        }
    }

    #[test]
    fn live_keys_need_production_and_stripe_itself() {
        let dir = tempfile::tempdir().unwrap();
        let builder = || {
            Payments::builder()
                .database(dir.path().join("p.db"))
                .secret_key("sk_live_123")
        };
        let error = builder().build().err().unwrap().to_string();
        assert!(error.contains("ENVIRONMENT=production"), "{error}");
        let error = builder()
            .environment(Environment::Production)
            .stripe_base_url("https://api.stripe.com.evil.example")
            .build()
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("refusing to send a live Stripe key"),
            "{error}"
        );
        assert!(
            builder()
                .environment(Environment::Production)
                .build()
                .is_ok()
        );
    }
}
