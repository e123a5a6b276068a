//! The exporter ↔ collector wire format: `POST {endpoint}/ingest` with `{"events": [...]}`.

use serde::Serialize;

use crate::ToolCallEvent;

/// The path exporters post to.
pub const INGEST_PATH: &str = "/ingest";

/// A batch of events as sent over the wire (what the collector reads).
#[cfg(feature = "dashboard")]
#[derive(Serialize, serde::Deserialize)]
pub struct Batch<E = ToolCallEvent> {
    /// The events, sanitized on the server that recorded them.
    pub events: Vec<E>,
}

/// A batch borrowing its events, for sending without copying.
#[cfg(feature = "export-http")]
#[derive(Serialize)]
pub(crate) struct BatchRef<'a> {
    pub events: &'a [ToolCallEvent],
}

/// The ingest URL of a collector at `endpoint`.
#[cfg(feature = "export-http")]
pub(crate) fn ingest_url(endpoint: &str) -> String {
    format!("{}{INGEST_PATH}", endpoint.trim_end_matches('/'))
}
