//! Exporters: sinks that ship sanitized events elsewhere, from the recorder's background thread.
//!
//! - [`HttpExporter`] (feature `export-http`): our own JSON batches to a collector
//!   (`mcp-analytics collect`), with a durable SQLite outbox; it lives with the collector in the
//!   HTTP fan-in (`fanin/`) and is re-exported here.
//! - [`OtlpExporter`] (feature `otlp`): spans and the `mcp.server.operation.duration` histogram
//!   to any OpenTelemetry backend, following the MCP semantic conventions.

#[cfg(feature = "otlp")]
mod otlp;

#[cfg(feature = "otlp")]
pub use otlp::{OtlpConfig, OtlpEndpoint, OtlpExporter, OtlpHandle, OtlpStats};

#[cfg(feature = "export-http")]
pub use crate::fanin::exporter::{
    HttpExporter, HttpExporterConfig, MAX_BATCH_BYTES, MAX_BATCH_EVENTS,
};
