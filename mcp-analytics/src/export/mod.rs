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
pub use http::{HttpExporter, HttpExporterConfig};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpConfig, OtlpEndpoint, OtlpExporter, OtlpHandle, OtlpStats};
