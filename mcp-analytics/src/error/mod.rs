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
    /// A database could not be opened, migrated or used: a PostgreSQL server unreachable, a
    /// malformed URL, or a PostgreSQL URL in a build without the `postgres` feature.
    #[error("cannot use the database {database}: {reason}")]
    Database {
        /// The database (its password never shows).
        database: crate::Database,
        /// Why.
        reason: String,
    },
    /// Payments could not be set up (missing Stripe key in production, unknown price, …); match
    /// on the [`PaymentsError`] for which. Its message is part of this one, so it is not also
    /// this error's `source()` (an error report would print it twice).
    #[error("payments: {0}")]
    Payments(PaymentsError),
    /// A `#[complete]` method completes an argument its prompt does not have (the prompt's
    /// arguments come from its arguments type, which the macro cannot see).
    #[error(
        "`#[complete(prompt = \"{prompt}\", argument = \"{argument}\")]`: prompt `{prompt}` has no argument `{argument}`; its arguments are {arguments}"
    )]
    UnknownCompletionArgument {
        /// The prompt.
        prompt: String,
        /// The argument named by the completion.
        argument: String,
        /// The prompt's arguments, listed.
        arguments: String,
    },
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

impl From<PaymentsError> for Error {
    fn from(error: PaymentsError) -> Self {
        Error::Payments(error)
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, PaymentsError, ProviderError};

    /// Every message in an error report (`Display`, then each `source()`), as `anyhow` prints it.
    fn report(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
        std::iter::successors(Some(error), |error| error.source())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_payments_error_report_says_each_cause_once() {
        let error = Error::from(PaymentsError::PriceLookup {
            price: "price_123".into(),
            tool: "generate_image".into(),
            cause: ProviderError::Unavailable("connection refused".into()),
        });
        let report = report(&error);
        assert_eq!(
            report,
            [
                "payments: cannot check price price_123 of tool `generate_image`: payments unavailable: connection refused"
            ],
            "each message appears once in the report"
        );
    }
}
