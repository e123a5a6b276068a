//! The crate's error type, [`Error`], and the payment errors it carries ([`payments`]).

pub(crate) mod payments;

use std::path::PathBuf;

pub use payments::{PaymentsError, PriceProblem, ProviderError};

/// Everything that can go wrong while setting analytics up or serving.
///
/// `Debug` prints the same message as `Display`, so `fn main() -> Result<(), Error>` reports
/// errors readably.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An environment variable has a value we cannot use.
    #[error("invalid {var}={value:?}: expected {expected}")]
    InvalidConfig {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: std::borrow::Cow<'static, str>,
    },
    /// A `.env` / `.dev.vars` file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: dotenvy::Error,
    },
    /// The SQLite database could not be opened or prepared.
    #[cfg(feature = "sqlite")]
    #[error("cannot open the analytics database {}: {source} (set MCP_ANALYTICS_DB to a writable file path)", path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// Payments could not be set up (missing Stripe key in production, unknown price, …); match
    /// on the [`PaymentsError`] for which.
    #[error("payments: {0}")]
    Payments(#[from] PaymentsError),
    /// The background writer thread could not be started.
    #[error("cannot start the analytics writer thread: {0}")]
    Writer(std::io::Error),
    /// Serving failed (binding the address, the transport).
    #[error("{context}: {source}")]
    Serve {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
