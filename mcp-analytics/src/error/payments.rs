//! [`PaymentsError`]: why payments could not be set up, or a paid tool's pricing cannot be used
//! (inside [`crate::Error::Payments`]); [`ProviderError`]: why a request to Stripe (or the local
//! test provider) failed.

use std::net::SocketAddr;

/// Why payments could not be set up or a paid tool's pricing cannot be used. Every variant's
/// message says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentsError {
    /// Payments were used before being set up ([`crate::Payments::global`] before
    /// [`crate::Payments::init_global`]).
    #[error("payments are not configured")]
    NotConfigured,
    /// No `STRIPE_SECRET_KEY` in production, where test payments are not taken.
    #[error(
        "STRIPE_SECRET_KEY is not set: paid tools cannot take payments in production (set it, or ENVIRONMENT=development for local test payments)"
    )]
    MissingSecretKey,
    /// `STRIPE_SECRET_KEY` is not shaped like a Stripe secret or restricted key.
    #[error(
        "STRIPE_SECRET_KEY does not look like a Stripe secret key (`sk_test_…`, `sk_live_…` or `rk_…`)"
    )]
    MalformedSecretKey,
    /// A live key outside production, where anonymous callers may pay per session.
    #[error(
        "a live Stripe key outside production: set ENVIRONMENT=production (development accepts anonymous callers), or use a test key (sk_test_…)"
    )]
    LiveKeyOutsideProduction,
    /// A live key with a `STRIPE_API_BASE` that is not Stripe's own API.
    #[error("refusing to send a live Stripe key to a base URL other than https://api.stripe.com")]
    LiveKeyToOtherHost {
        /// The configured base URL.
        base_url: String,
    },
    /// A Stripe key is set, but this build has no Stripe support.
    #[error("STRIPE_SECRET_KEY is set but mcp-analytics was built without the `stripe` feature")]
    StripeNotBuilt,
    /// The Stripe client could not be built from the settings.
    #[error("cannot build the Stripe client: {cause}")]
    StripeClient {
        /// Why.
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// This build has no database for the payment tables (neither the `sqlite` nor the
    /// `postgres` feature): paid tools refuse to run.
    #[error(
        "no payment database is available in this build (mcp-analytics was built without the `sqlite` and `postgres` features): paid tools cannot run"
    )]
    NoDatabase,
    /// The payment tables could not be opened.
    #[cfg(feature = "sqlite")]
    #[error("cannot open the payment tables in {}: {cause}", path.display())]
    Store {
        /// The database file.
        path: std::path::PathBuf,
        /// Why.
        cause: rusqlite::Error,
    },
    /// The local test provider would serve on a non-loopback address without an explicit
    /// environment: anyone reaching it could unlock paid tools with test payments.
    #[error(
        "STRIPE_SECRET_KEY is not set, so paid tools would take test payments from anyone reaching {addr}: set STRIPE_SECRET_KEY for real payments, or ENVIRONMENT=development to allow test payments on this address (or listen on 127.0.0.1)"
    )]
    TestPaymentsOffLoopback {
        /// The listening address.
        addr: SocketAddr,
    },
    /// `price = env("VAR")`, but the variable is not set.
    #[error("{var} is not set: it holds the Stripe price id of the paid tool `{tool}`")]
    PriceVarUnset {
        /// The variable.
        var: &'static str,
        /// The paid tool.
        tool: String,
    },
    /// `price = env("VAR")`, but the variable holds no price id.
    #[error(
        "{var}={value:?} (price of tool `{tool}`) is not a Stripe price id: expected `price_…`"
    )]
    PriceVarInvalid {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// The paid tool.
        tool: String,
    },
    /// The provider could not be asked about a price at startup.
    #[error("cannot check price {price} of tool `{tool}`: {cause}")]
    PriceLookup {
        /// The price id.
        price: String,
        /// The paid tool.
        tool: String,
        /// The provider's answer.
        cause: ProviderError,
    },
    /// A price does not fit the tool's `#[paid(...)]`.
    #[error("price {price} of tool `{tool}` {problem}")]
    PriceUnfit {
        /// The price id.
        price: String,
        /// The paid tool.
        tool: String,
        /// What does not fit.
        problem: PriceProblem,
    },
    /// The tool reports usage to a meter, but none of its prices is metered.
    #[error("tool `{tool}` reports usage to a meter, but none of its prices is metered")]
    NoMeteredPrice {
        /// The paid tool.
        tool: String,
    },
    /// Two paid tools share a set of prices but grant different things.
    #[error(
        "tools `{first}` and `{second}` have the same prices ({prices}) but grant different things (mode or `grant`): a purchase for one would run the other; give them different prices"
    )]
    SharedPrices {
        /// The first tool.
        first: String,
        /// The second tool.
        second: String,
        /// Their price ids.
        prices: String,
    },
}

/// How a price at the provider does not fit a tool's `#[paid(...)]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PriceProblem {
    /// The price is archived.
    #[error("is not active")]
    Inactive,
    /// A recurring price in a one-time payment.
    #[error("is recurring, but the tool uses mode = \"payment\"")]
    RecurringInPayment,
    /// A one-time price in a subscription.
    #[error("is one-time, but the tool uses mode = \"subscription\"")]
    OneTimeInSubscription,
    /// A metered price, but no `meter` to report usage to.
    #[error("is metered, but the tool names no `meter` to report usage to")]
    MeteredWithoutMeter,
    /// The price's meter takes events of another name than the tool's `meter`.
    #[error(
        "bills the meter with event name \"{event_name}\", but the tool reports usage as `meter = \"{meter}\"` (Stripe would refuse every event)"
    )]
    MeterMismatch {
        /// The event name of the price's meter.
        event_name: String,
        /// The tool's `meter`.
        meter: String,
    },
}

/// Why a request to the payment provider (Stripe, or the local test provider) failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// Worth retrying: timeouts, connection errors, 429, 5xx.
    #[error("payments unavailable: {0}")]
    Unavailable(String),
    /// The key is not allowed (401, 403: rotated, restricted, revoked): retrying once it is
    /// fixed will work.
    #[error("payment provider refused the key: {0}")]
    Unauthorized(String),
    /// An object the request names does not exist (any more) at the provider: a deleted
    /// customer, a key of another account or mode, a restarted local provider.
    #[error("payment provider does not know {0}")]
    Missing(String),
    /// The provider refused the request; retrying the same request will not help.
    #[error("payment provider refused the request: {0}")]
    Rejected(String),
}
