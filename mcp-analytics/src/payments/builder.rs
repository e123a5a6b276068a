//! [`PaymentsBuilder`]: the settings of payments (usually from the environment), the checks on
//! Stripe keys, and building the components.

use std::{collections::HashMap, sync::Arc, time::Duration};

use super::store::PaymentDb;
#[cfg(feature = "sqlite")]
use super::store::{PaymentStore, SharedStore};
use super::{
    MeterDurability, Parts, Payments, PaymentsError,
    pricing::EnvLookup,
    provider::{Provider, local::LocalProvider},
};
use crate::{Database, Environment, Error};

/// Settings of [`Payments`], usually from the environment.
///
/// | variable | meaning |
/// |---|---|
/// | `STRIPE_SECRET_KEY` | Stripe secret key (`sk_test_…`, `sk_live_…`, `rk_…`); unset → local test payments (development only) |
/// | `STRIPE_WEBHOOK_SECRET` | signing secret of the webhook endpoint (`whsec_…`) at `/stripe/webhook` |
/// | `STRIPE_API_BASE` | another Stripe API base URL (a proxy or a test double) |
/// | `MCP_PUBLIC_URL` | this server's public URL (local test checkout links) |
/// | `ENVIRONMENT` | `production` makes a missing key a startup error |
/// | `MCP_ANALYTICS_DB` | the database holding the payment tables (with the analytics): a SQLite file (one process) or a `postgres://` URL (feature `postgres`; any number of replicas) |
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
    database: Database,
    timeout: Duration,
    subscription_ttl: Duration,
    local_prices: HashMap<String, (i64, String)>,
    meter_durability: MeterDurability,
    lookup: EnvLookup,
    /// The payment tables in a Worker's D1 database (over `database`).
    #[cfg(feature = "workers")]
    d1: Option<super::store::d1::D1Payments>,
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
            database: Database::from(crate::Config::DEFAULT_DATABASE),
            timeout: Duration::from_secs(5),
            subscription_ttl: Duration::from_secs(3600),
            local_prices: HashMap::new(),
            meter_durability: MeterDurability::default(),
            lookup: Arc::new(|_| None),
            #[cfg(feature = "workers")]
            d1: None,
        }
    }
}

impl PaymentsBuilder {
    /// Settings from the environment (see the table above).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(crate::env::lookup()?)
    }

    /// Settings from `lookup` (the environment's names; a Worker's variables).
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        let config = crate::Config::from_lookup(&lookup)?;
        let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let meter_durability = match non_empty("MCP_ANALYTICS_METER_DURABILITY") {
            Some(value) => value.parse().map_err(|_| Error::InvalidConfig {
                var: "MCP_ANALYTICS_METER_DURABILITY",
                value,
                expected: MeterDurability::EXPECTED.into(),
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

    /// The database for the payment tables: what users bought must survive restarts
    /// (default: the analytics default, `./mcp-analytics.db`). A SQLite file serves one
    /// process; a `postgres://` URL (feature `postgres`) serves many replicas.
    pub fn database(mut self, database: impl Into<Database>) -> Self {
        self.database = database.into();
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

    /// Keeps the payment tables in a Worker's D1 database.
    #[cfg(all(feature = "workers", any(test, target_arch = "wasm32")))]
    pub(crate) fn d1(mut self, db: super::store::d1::D1Payments) -> Self {
        self.d1 = Some(db);
        self
    }

    /// Opens the payment tables, chooses the provider and starts the meter-event sender.
    pub fn build(self) -> Result<Payments, Error> {
        // Development lets anonymous callers pay (per session): not with real money.
        if self.environment != Environment::Production
            && self.secret_key.as_deref().is_some_and(is_live_key)
        {
            return Err(PaymentsError::LiveKeyOutsideProduction.into());
        }
        if self.secret_key.is_none() && self.environment == Environment::Production {
            return Err(PaymentsError::MissingSecretKey.into());
        }
        // The meter thread has its own client: pooled connections belong to the runtime that
        // opened them.
        let meter_provider = match &self.secret_key {
            Some(key) => stripe_provider(key, self.base_url.as_deref(), self.timeout)?,
            None => Provider::Local(LocalProvider::default()),
        };
        #[cfg(feature = "workers")]
        let d1 = self.d1.clone().map(PaymentDb::D1);
        #[cfg(not(feature = "workers"))]
        let d1: Option<PaymentDb> = None;
        let db = match (d1, &self.database) {
            (Some(db), _) => db,
            #[cfg(not(feature = "sqlite"))]
            (None, Database::Sqlite(_)) => return Err(PaymentsError::NoDatabase.into()),
            #[cfg(feature = "sqlite")]
            (None, Database::Sqlite(path)) => {
                let store = PaymentStore::open(path).map_err(|cause| PaymentsError::Store {
                    path: path.clone(),
                    cause,
                })?;
                PaymentDb::Sqlite(SharedStore::new(store))
            }
            #[cfg(feature = "postgres")]
            (None, Database::Postgres(url)) => {
                PaymentDb::Postgres(super::store::pg::PgPayments::open(url)?)
            }
            #[cfg(not(feature = "postgres"))]
            (None, Database::Postgres(_)) => {
                return Err(Error::Database {
                    database: self.database.clone(),
                    reason: "built without the `postgres` feature".into(),
                });
            }
        };
        let provider = match &self.secret_key {
            Some(key) => stripe_provider(key, self.base_url.as_deref(), self.timeout)?,
            None if self.environment == Environment::Production => {
                return Err(PaymentsError::MissingSecretKey.into());
            }
            None => {
                let local = LocalProvider::new(self.local_prices.clone());
                // Replicas share the test checkouts: one's page pays another's link.
                #[cfg(feature = "postgres")]
                let local = match &db {
                    PaymentDb::Postgres(pg) => local.shared_in(pg.clone()),
                    _ => local,
                };
                if let Some(url) = &self.public_url {
                    local.set_base_url(url, false);
                }
                Provider::Local(local)
            }
        };
        Payments::compose(Parts {
            db,
            provider,
            meter_provider,
            webhook_secret: self.webhook_secret,
            environment: self.environment,
            environment_chosen: self.environment_chosen,
            subscription_ttl: self.subscription_ttl,
            lookup: self.lookup,
            meter_durability: self.meter_durability,
        })
    }
}

#[cfg(feature = "stripe")]
fn stripe_provider(
    key: &str,
    base_url: Option<&str>,
    timeout: Duration,
) -> Result<Provider, PaymentsError> {
    let live = is_live_key(key);
    if !(key.starts_with("sk_") || key.starts_with("rk_")) {
        return Err(PaymentsError::MalformedSecretKey);
    }
    if let Some(base_url) = base_url
        && live
        && !is_stripe_api(base_url)
    {
        return Err(PaymentsError::LiveKeyToOtherHost {
            base_url: base_url.to_owned(),
        });
    }
    super::provider::stripe::StripeProvider::new(key, base_url, timeout)
        .map(|stripe| Provider::Stripe(Box::new(stripe)))
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
pub(super) fn test_payments_allowed(
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
fn stripe_provider(_: &str, _: Option<&str>, _: Duration) -> Result<Provider, PaymentsError> {
    Err(PaymentsError::StripeNotBuilt)
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
        let error = builder().build().err().unwrap();
        assert!(
            matches!(
                error,
                Error::Payments(PaymentsError::LiveKeyOutsideProduction)
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("ENVIRONMENT=production"),
            "{error}"
        );
        let error = builder()
            .environment(Environment::Production)
            .stripe_base_url("https://api.stripe.com.evil.example")
            .build()
            .err()
            .unwrap();
        assert!(
            matches!(
                &error,
                Error::Payments(PaymentsError::LiveKeyToOtherHost { base_url })
                    if base_url == "https://api.stripe.com.evil.example"
            ),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("refusing to send a live Stripe key"),
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
