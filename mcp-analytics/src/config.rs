//! Configuration: [`Config`] from the environment and `.env` / `.dev.vars` files, and the
//! [`AnalyticsBuilder`] for everything.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    Analytics, Error, Sanitizer, Sink, UserDetails,
    env::{lookup as env_lookup, parse_bool},
};

/// Whether this is a development or a production deployment (`ENVIRONMENT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Environment {
    /// Local development (the default).
    #[default]
    Development,
    /// A production deployment.
    Production,
}

/// Settings read from the environment.
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `MCP_ANALYTICS_ENABLED` | `false` records nothing; calls go straight to the tool | `true` |
/// | `MCP_ANALYTICS_DB` | the SQLite file | `./mcp-analytics.db` |
/// | `ENVIRONMENT` | `development` or `production` | `development` |
/// | `MCP_ANALYTICS_ENDPOINT` | a collector to ship events to (feature `export-http`) | none |
/// | `MCP_ANALYTICS_API_KEY` | the collector's (and dashboard's) key | none |
/// | `MCP_ANALYTICS_USER_DETAILS` | store callers' email/name: `off`, `masked` or `full` | `masked` |
/// | `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_*` | OpenTelemetry export (feature `otlp`; see `export::OtlpConfig`) | none |
///
/// Process environment variables win over `.dev.vars`, which wins over `.env` (both read from
/// the current directory when present; the process environment is never modified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Record tool calls at all.
    pub enabled: bool,
    /// The SQLite database file.
    pub database: PathBuf,
    /// Development or production.
    pub environment: Environment,
    /// A collector's base URL to ship events to.
    pub endpoint: Option<String>,
    /// The key for the collector (and the dashboard).
    pub api_key: Option<String>,
    /// How callers' email and name are stored.
    pub user_details: UserDetails,
    /// OpenTelemetry export, when an `OTEL_EXPORTER_OTLP_*ENDPOINT` is set.
    #[cfg(feature = "otlp")]
    pub otlp: Option<crate::export::OtlpConfig>,
}

impl Config {
    /// The database file used when `MCP_ANALYTICS_DB` is not set.
    pub const DEFAULT_DATABASE: &'static str = "./mcp-analytics.db";

    /// Reads the process environment, then `.dev.vars` and `.env` in the current directory.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(env_lookup()?)
    }

    /// Reads settings through `lookup` (a variable name → its value).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let enabled = match lookup("MCP_ANALYTICS_ENABLED") {
            None => true,
            Some(value) => parse_bool(&value).ok_or(Error::InvalidConfig {
                var: "MCP_ANALYTICS_ENABLED",
                value,
                expected: "`true` or `false` (also 1/0, yes/no, on/off)".into(),
            })?,
        };
        let database = match lookup("MCP_ANALYTICS_DB") {
            Some(path) if path.trim().is_empty() => {
                return Err(Error::InvalidConfig {
                    var: "MCP_ANALYTICS_DB",
                    value: path,
                    expected: "a file path such as `./mcp-analytics.db`".into(),
                });
            }
            Some(path) => PathBuf::from(path),
            None => PathBuf::from(Self::DEFAULT_DATABASE),
        };
        let environment = match lookup("ENVIRONMENT") {
            None => Environment::Development,
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "development" | "dev" => Environment::Development,
                "production" | "prod" => Environment::Production,
                _ => {
                    return Err(Error::InvalidConfig {
                        var: "ENVIRONMENT",
                        value,
                        expected: "`development` or `production`".into(),
                    });
                }
            },
        };
        let endpoint = lookup("MCP_ANALYTICS_ENDPOINT").filter(|value| !value.trim().is_empty());
        if let Some(endpoint) = &endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(Error::InvalidConfig {
                var: "MCP_ANALYTICS_ENDPOINT",
                value: endpoint.clone(),
                expected: "a collector URL such as `https://analytics.example.com`".into(),
            });
        }
        let api_key = lookup("MCP_ANALYTICS_API_KEY").filter(|value| !value.is_empty());
        let user_details = match lookup("MCP_ANALYTICS_USER_DETAILS") {
            None => UserDetails::default(),
            Some(value) => UserDetails::parse(&value).ok_or(Error::InvalidConfig {
                var: "MCP_ANALYTICS_USER_DETAILS",
                value,
                expected: "`off`, `masked` or `full`".into(),
            })?,
        };
        Ok(Config {
            enabled,
            database,
            environment,
            endpoint,
            api_key,
            user_details,
            #[cfg(feature = "otlp")]
            otlp: crate::export::OtlpConfig::from_lookup(&lookup)?,
        })
    }
}

/// Builds an [`Analytics`] handle: sinks, database, redaction rules, queue size.
#[derive(Default)]
pub struct AnalyticsBuilder {
    enabled: Option<bool>,
    database: Option<PathBuf>,
    sinks: Vec<Box<dyn Sink>>,
    sanitizer: Option<Sanitizer>,
    queue_capacity: Option<usize>,
    write_interval: Option<Duration>,
    user_details: Option<UserDetails>,
    /// `MCP_ANALYTICS_ENDPOINT` and key, turned into an exporter by `build`.
    endpoint: Option<(String, Option<String>)>,
    #[cfg(feature = "otlp")]
    otlp: Option<crate::export::OtlpConfig>,
}

impl AnalyticsBuilder {
    /// The events the queue holds before new ones are dropped (and counted).
    pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
    /// How often the writer stores queued events when the queue is not filling up.
    pub const DEFAULT_WRITE_INTERVAL: Duration = Duration::from_millis(5);

    /// Applies a [`Config`] (enabled flag, database file, collector endpoint and key, user
    /// details).
    pub fn config(mut self, config: Config) -> Self {
        #[cfg(feature = "otlp")]
        if config.otlp.is_some() {
            self.otlp = config.otlp;
        }
        self.endpoint = config.endpoint.map(|endpoint| (endpoint, config.api_key));
        self.enabled(config.enabled)
            .database(config.database)
            .user_details(config.user_details)
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

    /// Stores events in this SQLite file (created if missing).
    #[cfg(feature = "sqlite")]
    pub fn database(mut self, path: impl Into<PathBuf>) -> Self {
        self.database = Some(path.into());
        self
    }

    /// Without the `sqlite` feature there is no database; the path is ignored.
    #[cfg(not(feature = "sqlite"))]
    pub fn database(self, _path: impl Into<PathBuf>) -> Self {
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

    /// Sets how often the writer stores queued events (default
    /// [`Self::DEFAULT_WRITE_INTERVAL`]); it also wakes when 4,096 events are waiting and on
    /// every flush. Longer intervals mean larger batches and later writes.
    pub fn write_interval(mut self, interval: Duration) -> Self {
        self.write_interval = Some(interval);
        self
    }

    /// Opens the database and starts the writer thread.
    pub fn build(self) -> Result<Analytics, Error> {
        if self.enabled == Some(false) {
            return Ok(Analytics::disabled());
        }
        let mut sinks = self.sinks;
        let mut destinations: Vec<String> = Vec::new();
        #[cfg(feature = "sqlite")]
        if let Some(path) = &self.database {
            let mut store = crate::store::SqliteStore::open(path)?;
            // This process is the writer: finish hourly rollups a killed one left unwritten.
            store.repair_rollups().map_err(|source| Error::Store {
                path: path.clone(),
                source,
            })?;
            destinations.push(format!("SQLite {}", path.display()));
            sinks.insert(0, Box::new(store));
        }
        if let Some((endpoint, api_key)) = self.endpoint {
            sinks.push(exporter(endpoint, api_key, self.database.as_deref())?);
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
        let mut sanitizer = self.sanitizer.unwrap_or_default();
        if let Some(details) = self.user_details {
            sanitizer = sanitizer.user_details(details);
        }
        Analytics::start(
            sinks,
            sanitizer,
            self.queue_capacity.unwrap_or(Self::DEFAULT_QUEUE_CAPACITY),
            self.write_interval.unwrap_or(Self::DEFAULT_WRITE_INTERVAL),
            description,
            self.database,
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let config = config(&[]).unwrap();
        assert!(config.enabled);
        assert_eq!(config.database, PathBuf::from("./mcp-analytics.db"));
        assert_eq!(config.environment, Environment::Development);
        assert_eq!(config.user_details, UserDetails::Masked);
    }

    #[test]
    fn user_details_setting() {
        let parsed = config(&[("MCP_ANALYTICS_USER_DETAILS", "full")]).unwrap();
        assert_eq!(parsed.user_details, UserDetails::Full);
        let error = config(&[("MCP_ANALYTICS_USER_DETAILS", "some")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("MCP_ANALYTICS_USER_DETAILS") && error.contains("`masked`"),
            "{error}"
        );
    }

    #[test]
    fn reads_values_and_rejects_bad_ones() {
        let parsed = config(&[
            ("MCP_ANALYTICS_ENABLED", "off"),
            ("MCP_ANALYTICS_DB", "/tmp/x.db"),
            ("ENVIRONMENT", "Production"),
        ])
        .unwrap();
        assert!(!parsed.enabled);
        assert_eq!(parsed.environment, Environment::Production);
        let error = config(&[("MCP_ANALYTICS_ENABLED", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("MCP_ANALYTICS_ENABLED") && error.contains("`true` or `false`"),
            "{error}"
        );
        assert!(config(&[("ENVIRONMENT", "staging")]).is_err());
        assert!(config(&[("MCP_ANALYTICS_DB", " ")]).is_err());
    }

    #[cfg(feature = "sqlite")]
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
