//! The exporter ↔ collector wire format: `POST {endpoint}/ingest` with `{"events": [...]}`, the
//! collector's limits, and its answer ([`Ingested`]).

use serde::{Deserialize, Serialize};

#[cfg(feature = "dashboard")]
use crate::ToolCallEvent;

/// The path exporters post to.
pub const INGEST_PATH: &str = "/ingest";

/// The largest request body the collector accepts (compressed).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The largest body the collector accepts after decompression.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// The most events one request may carry.
pub const MAX_EVENTS: usize = 50_000;

/// A batch of events as sent over the wire (what the collector reads).
#[cfg(feature = "dashboard")]
#[derive(Serialize, Deserialize)]
pub struct Batch<E = ToolCallEvent> {
    /// The events, sanitized on the server that recorded them.
    pub events: Vec<E>,
}

/// What the collector answers to a batch it read: each event is stored, a duplicate, or refused.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ingested {
    /// Events stored.
    pub accepted: usize,
    /// Events already stored before (a retried delivery).
    pub duplicates: usize,
    /// Events refused, each with why (older collectors leave it out).
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

/// One event the collector refused; the batch's other events are kept.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rejected {
    /// The event's position in the batch, from 0.
    pub index: usize,
    /// The event's `id`, when it has a readable one.
    pub id: Option<String>,
    /// What is wrong with it.
    pub reason: String,
}

/// The ingest URL of a collector at `endpoint`.
#[cfg(feature = "export-http")]
pub(crate) fn ingest_url(endpoint: &str) -> String {
    format!("{}{INGEST_PATH}", endpoint.trim_end_matches('/'))
}
