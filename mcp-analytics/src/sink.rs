//! Where sanitized events go: the [`Sink`] trait, the pipeline [`Stats`] it is handed, and
//! [`MemorySink`] for tests.

use std::sync::{Arc, Mutex};

use crate::event::{RequestEvent, ToolCallEvent};

/// The error a sink reports; the recorder counts and logs it, and the tool call never sees it.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// A destination for batches of events (a store or an exporter).
///
/// Sinks run on the recorder's background thread, never on a tool call's path. A sink that fails
/// or panics is counted (`Stats::sink_errors`) and the other sinks still get the batch.
pub trait Sink: Send + 'static {
    /// A short name for logs.
    fn name(&self) -> &str;
    /// Stores or sends one batch of tool calls.
    fn write(&mut self, events: &[ToolCallEvent]) -> Result<(), SinkError>;
    /// Stores or sends one batch of the other requests (`initialize`, `tools/list`,
    /// `prompts/get`, …), after the tool calls recorded with them. Sinks that only know tool
    /// calls ignore them (the default).
    fn write_requests(&mut self, requests: &[RequestEvent]) -> Result<(), SinkError> {
        let _ = requests;
        Ok(())
    }
    /// Stores a server's tool catalogue, measured when it started (see [`crate::catalog`]).
    /// Sinks without a place for it ignore it (the default).
    fn write_catalog(&mut self, catalog: &crate::catalog::ToolCatalog) -> Result<(), SinkError> {
        let _ = catalog;
        Ok(())
    }
    /// Makes everything written so far durable (called on flush and shutdown); `stats` are the
    /// pipeline's counters at that moment, for sinks that keep them (dropped events, …).
    fn flush(&mut self, stats: &Stats) -> Result<(), SinkError> {
        let _ = stats;
        Ok(())
    }
    /// Called on the writer's timer (every write interval, whether or not events arrived): a
    /// chance to write what has waited long enough, so nothing lags behind a quiet pipeline.
    /// Must be cheap when nothing is due.
    fn tick(&mut self, stats: &Stats) -> Result<(), SinkError> {
        let _ = stats;
        Ok(())
    }
}

/// Keeps events in memory; clones share the same buffers. Meant for tests.
#[derive(Clone, Default)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<ToolCallEvent>>>,
    requests: Arc<Mutex<Vec<RequestEvent>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every tool call received so far.
    pub fn events(&self) -> Vec<ToolCallEvent> {
        lock(&self.events).clone()
    }

    /// A copy of every other request received so far.
    pub fn requests(&self) -> Vec<RequestEvent> {
        lock(&self.requests).clone()
    }
}

fn lock<T>(events: &Mutex<Vec<T>>) -> std::sync::MutexGuard<'_, Vec<T>> {
    events
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    fn write(&mut self, events: &[ToolCallEvent]) -> Result<(), SinkError> {
        lock(&self.events).extend_from_slice(events);
        Ok(())
    }

    fn write_requests(&mut self, requests: &[RequestEvent]) -> Result<(), SinkError> {
        lock(&self.requests).extend_from_slice(requests);
        Ok(())
    }
}

/// Counters of the recording pipeline since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events (tool calls and other requests) accepted into the queue.
    pub recorded: u64,
    /// Events dropped because the queue was full or the writer had stopped.
    pub dropped: u64,
    /// Events handed to the sinks.
    pub written: u64,
    /// Failed (or panicked) sink writes and flushes.
    pub sink_errors: u64,
}
