//! [`AnalyticsBuilder`]: sinks, database, redaction rules and queue size of an [`Analytics`]
//! handle, usually applied from a [`Config`].

use std::{path::Path, time::Duration};

use super::Analytics;
use crate::{Config, Database, Error, Sanitizer, Sink, UserDetails};

/// Builds an [`Analytics`] handle: sinks, database, redaction rules, queue size.
#[derive(Default)]
pub struct AnalyticsBuilder {
    enabled: Option<bool>,
    database: Option<Database>,
    sinks: Vec<Box<dyn Sink>>,
    sanitizer: Option<Sanitizer>,
    queue_capacity: Option<usize>,
    drained: bool,
    write_interval: Option<Duration>,
    user_details: Option<UserDetails>,
    session_idle: Option<Duration>,
    /// `MCP_ANALYTICS_ENDPOINT` and key, turned into an exporter by `build`.
    endpoint: Option<(String, Option<String>)>,
    #[cfg(feature = "otlp")]
    otlp: Option<crate::export::OtlpConfig>,
    #[cfg(feature = "alerts")]
    alerts: Option<crate::alerts::Alerts>,
}

impl AnalyticsBuilder {
    /// The events the queue holds before new ones are dropped (and counted).
    pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
    /// How often the writer stores queued events when the queue is not filling up.
    pub const DEFAULT_WRITE_INTERVAL: Duration = Duration::from_millis(5);

    /// Applies a [`Config`] (enabled flag, database file, collector endpoint and key, user
    /// details, session idle gap).
    pub fn config(mut self, config: Config) -> Self {
        #[cfg(feature = "otlp")]
        if config.otlp.is_some() {
            self.otlp = config.otlp;
        }
        #[cfg(feature = "alerts")]
        if config.alerts.is_some() {
            self.alerts = config.alerts;
        }
        self.endpoint = config.endpoint.map(|endpoint| (endpoint, config.api_key));
        self.enabled(config.enabled)
            .database(config.database)
            .user_details(config.user_details)
            .session_idle(config.session_idle)
    }

    /// How long a sessionless caller (MCP 2026-07-28, stateless HTTP) may pause before its next
    /// call starts a new session (default [`Config::DEFAULT_SESSION_IDLE`], 30 minutes; see
    /// *Sessions* in the `store` module's reference). Calls carrying one W3C trace id stay in
    /// one session whatever the pause between them and their clients' connections.
    pub fn session_idle(mut self, idle: Duration) -> Self {
        self.session_idle = Some(idle);
        self
    }

    /// How callers' email and name are stored (default [`UserDetails::Masked`]); overrides the
    /// [`Sanitizer`]'s setting.
    pub fn user_details(mut self, details: UserDetails) -> Self {
        self.user_details = Some(details);
        self
    }

    /// `false` makes [`build`](Self::build) return [`Analytics::disabled`].
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Stores events in this database: a SQLite file (created if missing; ignored without
    /// the `sqlite` feature) or a `postgres://` URL (feature `postgres`).
    pub fn database(mut self, database: impl Into<Database>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// Adds a sink (an exporter, or a [`crate::MemorySink`] in tests).
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Exports every call to an OpenTelemetry backend over OTLP/HTTP (spans and the duration
    /// histogram; see [`crate::export::OtlpExporter`]).
    #[cfg(feature = "otlp")]
    pub fn otlp(mut self, config: crate::export::OtlpConfig) -> Self {
        self.otlp = Some(config);
        self
    }

    /// Evaluates these alert rules on the SQLite database every interval, in a thread of
    /// their own, and posts their transitions to the webhooks (see [`crate::alerts`]).
    #[cfg(feature = "alerts")]
    pub fn alerts(mut self, alerts: crate::alerts::Alerts) -> Self {
        self.alerts = Some(alerts);
        self
    }

    /// Replaces the redaction rules.
    pub fn sanitizer(mut self, sanitizer: Sanitizer) -> Self {
        self.sanitizer = Some(sanitizer);
        self
    }

    /// Sets the queue capacity (default [`Self::DEFAULT_QUEUE_CAPACITY`]).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = Some(capacity);
        self
    }

    /// No writer thread: the host takes the events with `Analytics::drain` after each request
    /// (always so on `wasm32`, which has no threads); sinks are not used.
    #[cfg(test)]
    pub(crate) fn drained(mut self) -> Self {
        self.drained = true;
        self
    }

    /// Sets how often the writer stores queued events (default
    /// [`Self::DEFAULT_WRITE_INTERVAL`]); it also wakes when 4,096 events are waiting and on
    /// every flush. Longer intervals mean larger batches and later writes.
    pub fn write_interval(mut self, interval: Duration) -> Self {
        self.write_interval = Some(interval);
        self
    }

    /// Opens the database and starts the writer thread.
    ///
    /// With `MCP_ANALYTICS_ENDPOINT` the HTTP exporter keeps batches it could not deliver yet
    /// in an outbox: a table of the SQLite database, or, with a PostgreSQL database, in
    /// memory (lost when the process stops; the events are stored in PostgreSQL anyway).
    pub fn build(self) -> Result<Analytics, Error> {
        if self.enabled == Some(false) {
            return Ok(Analytics::disabled());
        }
        let mut sinks = self.sinks;
        let mut destinations: Vec<String> = Vec::new();
        match &self.database {
            #[cfg(feature = "sqlite")]
            Some(Database::Sqlite(path)) => {
                let mut store = crate::store::SqliteStore::open(path)?;
                store.set_session_idle(self.session_idle.unwrap_or(Config::DEFAULT_SESSION_IDLE));
                // This process is the writer: finish hourly rollups a killed one left unwritten.
                store.repair_rollups().map_err(|source| Error::Store {
                    path: path.clone(),
                    source,
                })?;
                destinations.push(format!("SQLite {}", path.display()));
                sinks.insert(0, Box::new(store));
            }
            #[cfg(feature = "postgres")]
            Some(Database::Postgres(url)) => {
                let mut store = crate::store::PgStore::open(url)?;
                store.set_session_idle(self.session_idle.unwrap_or(Config::DEFAULT_SESSION_IDLE));
                destinations.push(format!("PostgreSQL {url}"));
                sinks.insert(0, Box::new(store));
            }
            #[cfg(not(feature = "postgres"))]
            Some(database @ Database::Postgres(_)) => {
                return Err(Error::Database {
                    database: database.clone(),
                    reason: crate::database::NO_POSTGRES_FEATURE.into(),
                });
            }
            _ => {}
        }
        if let Some((endpoint, api_key)) = self.endpoint {
            // The exporter's outbox is a SQLite table next to the analytics; with a PostgreSQL
            // database (or none) it is kept in memory, so batches still undelivered when the
            // process stops are lost (the events themselves are in PostgreSQL).
            let outbox = self.database.as_ref().and_then(Database::sqlite_path);
            sinks.push(exporter(endpoint, api_key, outbox)?);
        }
        #[cfg(feature = "otlp")]
        if let Some(otlp) = self.otlp {
            sinks.push(Box::new(crate::export::OtlpExporter::new(otlp)?));
        }
        destinations.extend(
            sinks
                .iter()
                .skip(destinations.len())
                .map(|sink| sink.name().to_owned()),
        );
        let description = if destinations.is_empty() {
            "analytics enabled, no sink".to_owned()
        } else {
            destinations.join(", ")
        };
        #[cfg(feature = "alerts")]
        let alerts = match self.alerts {
            None => None,
            Some(alerts) => match &self.database {
                Some(database) => Some(crate::alerts::Evaluator::start(alerts, database)?),
                None => {
                    return Err(Error::InvalidConfig {
                        var: "MCP_ANALYTICS_DB",
                        value: "none".into(),
                        expected: "a SQLite or PostgreSQL database: alerts read their rules' rollups from it"
                            .into(),
                    });
                }
            },
        };
        let mut sanitizer = self.sanitizer.unwrap_or_default();
        if let Some(details) = self.user_details {
            sanitizer = sanitizer.user_details(details);
        }
        Analytics::start(
            sinks,
            sanitizer,
            self.queue_capacity.unwrap_or(Self::DEFAULT_QUEUE_CAPACITY),
            self.write_interval.unwrap_or(Self::DEFAULT_WRITE_INTERVAL),
            self.drained || cfg!(target_arch = "wasm32"),
            description,
            self.database,
            #[cfg(feature = "alerts")]
            alerts,
        )
    }
}

#[cfg(feature = "export-http")]
fn exporter(
    endpoint: String,
    api_key: Option<String>,
    outbox: Option<&Path>,
) -> Result<Box<dyn Sink>, Error> {
    let config = crate::export::HttpExporterConfig {
        api_key,
        ..crate::export::HttpExporterConfig::new(endpoint)
    };
    Ok(Box::new(crate::export::HttpExporter::new(config, outbox)?))
}

#[cfg(not(feature = "export-http"))]
fn exporter(
    endpoint: String,
    _api_key: Option<String>,
    _outbox: Option<&Path>,
) -> Result<Box<dyn Sink>, Error> {
    Err(Error::InvalidConfig {
        var: "MCP_ANALYTICS_ENDPOINT",
        value: endpoint,
        expected: "no endpoint: this build lacks mcp-analytics's `export-http` feature".into(),
    })
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn unwritable_database_is_a_clear_startup_error() {
        let error = Analytics::builder()
            .database("/nonexistent-dir/sub/x.db")
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/nonexistent-dir/sub/x.db") && error.contains("MCP_ANALYTICS_DB"),
            "{error}"
        );
    }
}
