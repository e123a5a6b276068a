//! Configuration: [`Config`] from the environment and `.env` / `.dev.vars` files (applied by
//! [`AnalyticsBuilder::config`](crate::AnalyticsBuilder::config)), and the [`Environment`].

use crate::{
    Database, Error, UserDetails,
    env::{lookup as env_lookup, parse_bool, parse_duration},
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
/// | `MCP_ANALYTICS_DB` | the SQLite file, or a `postgres://` URL (feature `postgres`) | `./mcp-analytics.db` |
/// | `ENVIRONMENT` | `development` or `production` | `development` |
/// | `MCP_ANALYTICS_ENDPOINT` | a collector to ship events to (feature `export-http`) | none |
/// | `MCP_ANALYTICS_API_KEY` | the collector's (and dashboard's) key | none |
/// | `MCP_ANALYTICS_USER_DETAILS` | store callers' email/name: `off`, `masked` or `full` | `masked` |
/// | `MCP_ANALYTICS_SESSION_IDLE` | the pause that ends a sessionless caller's session (`90s`, `30m`, `2h`) | `30m` |
/// | `MCP_ANALYTICS_ALERT_WEBHOOK` | webhook URLs alerts are posted to, comma-separated (feature `alerts`; see [`crate::alerts`]) | none |
/// | `MCP_ANALYTICS_ALERT_ERROR_RATE` | alert when a tool's error rate exceeds a share over a window: `5%/15m`, or `5%/15m/20` with at least 20 calls | none (minimum 20 calls) |
/// | `MCP_ANALYTICS_ALERT_P95` | alert when a tool's p95 latency exceeds a threshold over a window: `2s/15m`, or `2s/15m/20` | none |
/// | `MCP_ANALYTICS_ALERT_DEAD_MAN` | alert when a server (or `10m/tool`) has had no calls for that long: `30m`, comma-separated | none |
/// | `MCP_ANALYTICS_ALERT_LOOP` | alert when one session calls a tool with the same arguments more than N times a minute: `20/1m` | none |
/// | `MCP_ANALYTICS_ALERT_INTERVAL` | how often alert rules are evaluated | `30s` |
/// | `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_*` | OpenTelemetry export (feature `otlp`; see `export::OtlpConfig`) | none |
///
/// Process environment variables win over `.dev.vars`, which wins over `.env` (both read from
/// the current directory when present; the process environment is never modified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Record tool calls at all.
    pub enabled: bool,
    /// The database: a SQLite file or a PostgreSQL URL.
    pub database: Database,
    /// Development or production.
    pub environment: Environment,
    /// A collector's base URL to ship events to.
    pub endpoint: Option<String>,
    /// The key for the collector (and the dashboard).
    pub api_key: Option<String>,
    /// How callers' email and name are stored.
    pub user_details: UserDetails,
    /// Sessionless callers (MCP 2026-07-28, stateless HTTP): a call after a longer pause starts
    /// a new session (see *Sessions* in the `store` module's reference).
    pub session_idle: std::time::Duration,
    /// OpenTelemetry export, when an `OTEL_EXPORTER_OTLP_*ENDPOINT` is set.
    #[cfg(feature = "otlp")]
    pub otlp: Option<crate::export::OtlpConfig>,
    /// Alert rules and webhooks, when an `MCP_ANALYTICS_ALERT_*` variable is set.
    #[cfg(feature = "alerts")]
    pub alerts: Option<crate::alerts::Alerts>,
}

impl Config {
    /// The database file used when `MCP_ANALYTICS_DB` is not set.
    pub const DEFAULT_DATABASE: &'static str = "./mcp-analytics.db";

    /// The pause that ends a sessionless caller's session when `MCP_ANALYTICS_SESSION_IDLE` is
    /// not set: 30 minutes.
    pub const DEFAULT_SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

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
                    expected: "a file path such as `./mcp-analytics.db` or a `postgres://` URL"
                        .into(),
                });
            }
            Some(value) => Database::from(value),
            None => Database::from(Self::DEFAULT_DATABASE),
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
        let session_idle = Self::session_idle(&lookup)?;
        Ok(Config {
            enabled,
            database,
            environment,
            endpoint,
            api_key,
            user_details,
            session_idle,
            #[cfg(feature = "otlp")]
            otlp: crate::export::OtlpConfig::from_lookup(&lookup)?,
            #[cfg(feature = "alerts")]
            alerts: crate::alerts::Alerts::from_lookup(&lookup)?,
        })
    }

    /// `MCP_ANALYTICS_SESSION_IDLE` alone (the collector reads only it).
    pub(crate) fn session_idle(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<std::time::Duration, Error> {
        match lookup("MCP_ANALYTICS_SESSION_IDLE") {
            None => Ok(Self::DEFAULT_SESSION_IDLE),
            Some(value) => parse_duration(&value).map_err(|reason| Error::InvalidConfig {
                var: "MCP_ANALYTICS_SESSION_IDLE",
                value: value.clone(),
                expected: format!("a duration such as `90s`, `30m` or `2h` ({reason})").into(),
            }),
        }
    }
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
        assert_eq!(config.database, Database::from("./mcp-analytics.db"));
        assert_eq!(config.environment, Environment::Development);
        assert_eq!(config.user_details, UserDetails::Masked);
        assert_eq!(config.session_idle, Config::DEFAULT_SESSION_IDLE);
    }

    #[test]
    fn the_session_idle_gap_is_read_and_a_bad_one_names_the_variable_and_the_form() {
        let parsed = config(&[("MCP_ANALYTICS_SESSION_IDLE", "90s")]).unwrap();
        assert_eq!(parsed.session_idle, std::time::Duration::from_secs(90));
        let error = config(&[("MCP_ANALYTICS_SESSION_IDLE", "half an hour")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("MCP_ANALYTICS_SESSION_IDLE")
                && error.contains("half an hour")
                && error.contains("`30m`"),
            "{error}"
        );
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
}
