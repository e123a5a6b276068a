//! Exporters: sinks that ship sanitized events elsewhere, from the recorder's background thread.
//!
//! - [`HttpExporter`] (feature `export-http`): our own JSON batches to a collector
//!   (`mcp-analytics collect`), with a durable SQLite outbox.
//! - [`OtlpExporter`] (feature `otlp`): spans and the `mcp.server.operation.duration` histogram
//!   to any OpenTelemetry backend, following the MCP semantic conventions.

#[cfg(feature = "export-http")]
mod http;
#[cfg(feature = "otlp")]
mod otlp;

#[cfg(feature = "export-http")]
pub use http::{HttpExporter, HttpExporterConfig, MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpConfig, OtlpEndpoint, OtlpExporter, OtlpHandle, OtlpStats};

/// The `Retry-After` of a response, in seconds (the HTTP-date form is not used by collectors).
#[cfg(any(feature = "export-http", feature = "otlp"))]
fn retry_after(response: &reqwest::blocking::Response) -> Option<std::time::Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs)
}
