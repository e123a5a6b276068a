//! [`OtlpConfig`]: where and how the OTLP exporter sends, from the standard `OTEL_*` variables.

use std::{fmt, time::Duration};

use crate::Error;

/// Settings of an [`OtlpExporter`](super::OtlpExporter).
///
/// [`OtlpConfig::from_lookup`] reads the standard OpenTelemetry variables (the exporter is on when
/// an `OTEL_EXPORTER_OTLP_*ENDPOINT` is set and `OTEL_SDK_DISABLED` is not `true`):
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; `/v1/traces` and `/v1/metrics` are appended | `http://localhost:4318` |
/// | `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT` | full URL for one signal | |
/// | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS}]_HEADERS` | `key=value,…` (URL-encoded values) | |
/// | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS}]_TIMEOUT` | per request, in ms | `10000` |
/// | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS}]_COMPRESSION` | `gzip` or `none` | `none` |
/// | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS}]_PROTOCOL` | only `http/protobuf` is supported | `http/protobuf` |
/// | `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` | `none` turns one signal off | `otlp` |
/// | `OTEL_SERVICE_NAME` | `service.name` | the server's name |
/// | `OTEL_RESOURCE_ATTRIBUTES` | more resource attributes, `key=value,…` | |
/// | `OTEL_METRIC_EXPORT_INTERVAL` | ms between metric exports | `60000` |
/// | `OTEL_BSP_SCHEDULE_DELAY` | ms between span exports | `1000` |
/// | `OTEL_BSP_MAX_QUEUE_SIZE` | spans waiting; more are dropped and counted | `8192` |
/// | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | spans per request | `512` |
/// | `OTEL_SDK_DISABLED` | `true` turns the exporter off | `false` |
/// | `MCP_ANALYTICS_OTEL_CAPTURE_CONTENT` | `true` adds the redacted arguments and results | `false` |
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Where spans go; `None` exports no spans.
    pub traces: Option<OtlpEndpoint>,
    /// Where the duration histogram goes; `None` exports no metrics.
    pub metrics: Option<OtlpEndpoint>,
    /// `service.name` for every server (`None`: each server's own name).
    pub service_name: Option<String>,
    /// Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`).
    pub resource_attributes: Vec<(String, String)>,
    /// Adds `gen_ai.tool.call.arguments` / `.result` (the redacted JSON) to spans.
    pub capture_content: bool,
    /// How often the cumulative histogram is exported (also on every flush).
    pub metric_interval: Duration,
    /// How long spans may wait before a request is sent (a full batch goes at once).
    pub schedule_delay: Duration,
    /// The most spans waiting to be sent; more are dropped and counted.
    pub max_queue_size: usize,
    /// The most spans in one request.
    pub max_export_batch_size: usize,
    /// First retry delay (429, 5xx, connection errors); doubles per attempt, with full jitter.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// How long one request is retried before its spans are dropped and counted.
    pub max_retry_time: Duration,
    /// How long a flush (and shutdown) waits for the queue to drain.
    pub flush_timeout: Duration,
}

/// One signal's destination.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpEndpoint {
    /// The full URL (`http://collector:4318/v1/traces`).
    pub url: String,
    /// Extra request headers (e.g. an API key). Never logged.
    pub headers: Vec<(String, String)>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Gzip request bodies.
    pub gzip: bool,
}

impl OtlpEndpoint {
    /// `url` with no headers, a 10 s timeout and no compression.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            gzip: false,
        }
    }
}

impl fmt::Debug for OtlpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("OtlpEndpoint")
            .field("url", &self.url)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("gzip", &self.gzip)
            .finish()
    }
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("traces", &self.traces)
            .field("metrics", &self.metrics)
            .field("service_name", &self.service_name)
            .field("capture_content", &self.capture_content)
            .finish_non_exhaustive()
    }
}

const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

impl OtlpConfig {
    /// Both signals to the collector at `endpoint` (`http://localhost:4318`: spans to
    /// `{endpoint}/v1/traces`, metrics to `{endpoint}/v1/metrics`), everything else default.
    pub fn new(endpoint: &str) -> Self {
        Self {
            traces: Some(OtlpEndpoint::new(signal_url(endpoint, "traces"))),
            metrics: Some(OtlpEndpoint::new(signal_url(endpoint, "metrics"))),
            service_name: None,
            resource_attributes: Vec::new(),
            capture_content: false,
            metric_interval: Duration::from_secs(60),
            schedule_delay: Duration::from_secs(1),
            max_queue_size: 8192,
            max_export_batch_size: 512,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_time: Duration::from_secs(300),
            flush_timeout: Duration::from_secs(5),
        }
    }

    /// The exporter's settings from the process environment; `None` when it is off.
    pub fn from_env() -> Result<Option<Self>, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The exporter's settings read through `lookup` (a variable name → its value); `None` when
    /// no OTLP endpoint is set or `OTEL_SDK_DISABLED=true`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        if get("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let base = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        let traces_url = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let metrics_url = get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
        if base.is_none() && traces_url.is_none() && metrics_url.is_none() {
            return Ok(None);
        }
        let base = base.unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let mut config = Self::new(&base);
        config.traces = signal(&get, &base, traces_url, Signal::TRACES)?;
        config.metrics = signal(&get, &base, metrics_url, Signal::METRICS)?;
        config.service_name = get("OTEL_SERVICE_NAME").map(|name| name.trim().to_owned());
        if let Some(value) = get("OTEL_RESOURCE_ATTRIBUTES") {
            config.resource_attributes =
                pairs(&value).ok_or_else(|| invalid("OTEL_RESOURCE_ATTRIBUTES", value, PAIRS))?;
        }
        if let Some(value) = get("MCP_ANALYTICS_OTEL_CAPTURE_CONTENT") {
            config.capture_content = crate::env::parse_bool(&value).ok_or_else(|| {
                invalid(
                    "MCP_ANALYTICS_OTEL_CAPTURE_CONTENT",
                    value,
                    "`true` or `false`",
                )
            })?;
        }
        let millis = |name: &'static str, default: Duration| -> Result<Duration, Error> {
            get(name).map_or(Ok(default), |value| {
                value
                    .trim()
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| invalid(name, value, "a number of milliseconds"))
            })
        };
        config.metric_interval = millis("OTEL_METRIC_EXPORT_INTERVAL", config.metric_interval)?
            .max(Duration::from_millis(100));
        config.schedule_delay = millis("OTEL_BSP_SCHEDULE_DELAY", config.schedule_delay)?;
        let count = |name: &'static str, default: usize| -> Result<usize, Error> {
            get(name).map_or(Ok(default), |value| match value.trim().parse::<usize>() {
                Ok(count) if count > 0 => Ok(count),
                _ => Err(invalid(name, value, "a positive number")),
            })
        };
        config.max_queue_size = count("OTEL_BSP_MAX_QUEUE_SIZE", config.max_queue_size)?;
        config.max_export_batch_size = count(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            config.max_export_batch_size,
        )?;
        Ok(Some(config))
    }
}

/// The variable names of one signal.
struct Signal {
    name: &'static str,
    exporter: &'static str,
    endpoint: &'static str,
    headers: &'static str,
    timeout: &'static str,
    compression: &'static str,
    protocol: &'static str,
}

impl Signal {
    const TRACES: Signal = Signal {
        name: "traces",
        exporter: "OTEL_TRACES_EXPORTER",
        endpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        headers: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        timeout: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        compression: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        protocol: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    };
    const METRICS: Signal = Signal {
        name: "metrics",
        exporter: "OTEL_METRICS_EXPORTER",
        endpoint: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        headers: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        timeout: "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
        compression: "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
        protocol: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    };
}

const PAIRS: &str = "comma-separated `key=value` pairs";

/// One signal's endpoint: its own variables first, then the general `OTEL_EXPORTER_OTLP_*` ones.
fn signal(
    get: &impl Fn(&str) -> Option<String>,
    base: &str,
    url: Option<String>,
    signal: Signal,
) -> Result<Option<OtlpEndpoint>, Error> {
    let exporters = get(signal.exporter).unwrap_or_else(|| "otlp".to_owned());
    if !exporters
        .split(',')
        .any(|exporter| exporter.trim().eq_ignore_ascii_case("otlp"))
    {
        return Ok(None);
    }
    let (var, url) = match url {
        Some(url) => (signal.endpoint, url.trim().to_owned()),
        None => ("OTEL_EXPORTER_OTLP_ENDPOINT", signal_url(base, signal.name)),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(var, url, "an http:// or https:// URL"));
    }
    let either = |specific: &'static str, general: &'static str| {
        get(specific)
            .map(|value| (specific, value))
            .or_else(|| get(general).map(|value| (general, value)))
    };
    if let Some((var, protocol)) = either(signal.protocol, "OTEL_EXPORTER_OTLP_PROTOCOL")
        && protocol.trim() != "http/protobuf"
    {
        return Err(invalid(
            var,
            protocol,
            "`http/protobuf` (this build exports OTLP over HTTP with protobuf only)",
        ));
    }
    let mut endpoint = OtlpEndpoint::new(url);
    // Signal-specific headers replace general ones of the same name.
    for var in ["OTEL_EXPORTER_OTLP_HEADERS", signal.headers] {
        if let Some(value) = get(var) {
            // The value may hold credentials: never echo it.
            let parsed = pairs(&value).ok_or_else(|| invalid(var, "<hidden>".into(), PAIRS))?;
            for (name, value) in parsed {
                endpoint
                    .headers
                    .retain(|(existing, _)| !existing.eq_ignore_ascii_case(&name));
                endpoint.headers.push((name, value));
            }
        }
    }
    if let Some((var, value)) = either(signal.timeout, "OTEL_EXPORTER_OTLP_TIMEOUT") {
        endpoint.timeout = match value.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => return Err(invalid(var, value, "a positive number of milliseconds")),
        };
    }
    if let Some((var, value)) = either(signal.compression, "OTEL_EXPORTER_OTLP_COMPRESSION") {
        endpoint.gzip = match value.trim().to_ascii_lowercase().as_str() {
            "gzip" => true,
            "none" => false,
            _ => return Err(invalid(var, value, "`gzip` or `none`")),
        };
    }
    Ok(Some(endpoint))
}

/// `{base}/v1/{signal}`, with exactly one slash between.
fn signal_url(base: &str, signal: &str) -> String {
    format!("{}/v1/{signal}", base.trim().trim_end_matches('/'))
}

/// `key=value,key2=value2` (W3C Baggage-like, values percent-decoded); `None` if malformed.
fn pairs(text: &str) -> Option<Vec<(String, String)>> {
    text.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (key, value) = item.split_once('=')?;
            let key = percent_decode(key.trim())?;
            if key.is_empty() {
                return None;
            }
            Some((key, percent_decode(value.trim())?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn invalid(var: &'static str, value: String, expected: &'static str) -> Error {
    Error::InvalidConfig {
        var,
        value,
        expected: expected.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<OtlpConfig>, Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OtlpConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn off_without_an_endpoint_or_when_disabled() {
        assert_eq!(config(&[]).unwrap(), None);
        assert_eq!(config(&[("OTEL_SERVICE_NAME", "x")]).unwrap(), None);
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(
            config(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]).unwrap(),
            None
        );
        assert!(
            config(&[endpoint, ("OTEL_SDK_DISABLED", "false")])
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn endpoints_per_signal() {
        let parsed = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(parsed.traces.unwrap().url, "http://c:4318/v1/traces");
        assert_eq!(parsed.metrics.unwrap().url, "http://c:4318/v1/metrics");
        let parsed = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://t.example/custom",
            ),
            ("OTEL_METRICS_EXPORTER", "none"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(parsed.traces.unwrap().url, "https://t.example/custom");
        assert_eq!(parsed.metrics, None);
        // A signal-specific endpoint alone enables the exporter; the other signal falls back to
        // the default endpoint.
        let parsed = config(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m/x")])
            .unwrap()
            .unwrap();
        assert_eq!(parsed.metrics.unwrap().url, "http://m/x");
        assert_eq!(
            parsed.traces.unwrap().url,
            "http://localhost:4318/v1/traces"
        );
    }

    #[test]
    fn headers_timeouts_compression_resource_and_content() {
        let parsed = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=abc%3D%3D, x-team = core",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "API-KEY=traces"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"),
            ("OTEL_SERVICE_NAME", "weather"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=prod,team=a%20b",
            ),
            ("MCP_ANALYTICS_OTEL_CAPTURE_CONTENT", "true"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
        ])
        .unwrap()
        .unwrap();
        let traces = parsed.traces.unwrap();
        let metrics = parsed.metrics.unwrap();
        assert_eq!(
            metrics.headers,
            [
                ("api-key".into(), "abc==".into()),
                ("x-team".into(), "core".into())
            ]
        );
        assert_eq!(
            traces.headers,
            [
                ("x-team".into(), "core".into()),
                ("API-KEY".into(), "traces".into())
            ]
        );
        assert_eq!(traces.timeout, Duration::from_millis(2500));
        assert!(metrics.gzip && !traces.gzip);
        assert_eq!(parsed.service_name.as_deref(), Some("weather"));
        assert_eq!(parsed.resource_attributes[1], ("team".into(), "a b".into()));
        assert!(parsed.capture_content);
        assert_eq!(parsed.metric_interval, Duration::from_secs(15));
    }

    #[test]
    fn bad_values_are_clear_errors_that_never_echo_headers() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        for (vars, var) in [
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![endpoint, ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")],
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ),
            (
                vec![endpoint, ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")],
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ),
            (
                vec![endpoint, ("MCP_ANALYTICS_OTEL_CAPTURE_CONTENT", "maybe")],
                "MCP_ANALYTICS_OTEL_CAPTURE_CONTENT",
            ),
        ] {
            let error = config(&vars).unwrap_err().to_string();
            assert!(error.contains(var), "{error}");
        }
        let error = config(&[endpoint, ("OTEL_EXPORTER_OTLP_HEADERS", "secret-token%zz")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{error}");
        assert!(!error.contains("secret-token"), "{error}");
        let debug = format!(
            "{:?}",
            config(&[endpoint, ("OTEL_EXPORTER_OTLP_HEADERS", "k=hunter2")]).unwrap()
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
