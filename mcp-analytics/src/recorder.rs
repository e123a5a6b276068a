//! [`Analytics`]: the handle tool calls record into. Recording is a non-blocking send into a
//! bounded queue (full → the event is dropped and counted); a background thread sanitizes the
//! events, batches them and hands each batch to every [`Sink`].

use std::{
    borrow::Cow,
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::Duration,
};

use rmcp::{ErrorData, model::CallToolResponse};
use serde_json::Value;

use crate::{
    Sanitizer, Sink,
    capture::Capture,
    event::{Status, ToolCallEvent},
    private::{Outcome, Server, ServerInfo, ToolSpec},
};

/// The most events written to the sinks in one batch (one SQLite transaction).
const MAX_BATCH: usize = 4096;

/// Where tool calls are recorded. Cheap to clone; clones share one queue and writer thread.
///
/// Build one with [`Analytics::builder`] or [`Analytics::from_env`]; servers without
/// `#[mcp_server(analytics = ...)]` use [`Analytics::global`].
#[derive(Clone)]
pub struct Analytics {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Option<SyncSender<Message>>,
    counters: Arc<Counters>,
    writer: Mutex<Option<JoinHandle<()>>>,
    description: String,
}

#[derive(Default)]
struct Counters {
    recorded: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    sink_errors: AtomicU64,
}

/// Counters of the recording pipeline since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events accepted into the queue.
    pub recorded: u64,
    /// Events dropped because the queue was full or the writer had stopped.
    pub dropped: u64,
    /// Events handed to the sinks.
    pub written: u64,
    /// Failed (or panicked) sink writes and flushes.
    pub sink_errors: u64,
}

enum Message {
    Call(Box<RawCall>),
    Flush(tokio::sync::oneshot::Sender<()>),
    Shutdown(tokio::sync::oneshot::Sender<()>),
}

impl Analytics {
    /// A builder with every option at its default (no sinks: add one, or use `from_env`).
    pub fn builder() -> crate::AnalyticsBuilder {
        crate::AnalyticsBuilder::default()
    }

    /// Analytics configured from the environment (and `.env` / `.dev.vars`); see [`crate::Config`].
    pub fn from_env() -> Result<Self, crate::Error> {
        Self::builder().config(crate::Config::from_env()?).build()
    }

    /// A handle that records nothing: calls go straight to the tool.
    pub fn disabled() -> Self {
        Self::from_parts(None, Arc::default(), None, "analytics disabled".into())
    }

    /// The process-wide handle: the one passed to [`Analytics::install`], else built from the
    /// environment on first use (an invalid configuration is logged and disables analytics).
    pub fn global() -> &'static Analytics {
        GLOBAL.get_or_init(|| {
            Analytics::from_env().unwrap_or_else(|error| {
                tracing::error!("mcp-analytics: {error}; analytics is disabled");
                Analytics::disabled()
            })
        })
    }

    /// Makes this handle the process-wide one. Fails (returning it) if one is already in use.
    pub fn install(self) -> Result<&'static Analytics, Analytics> {
        let mut candidate = Some(self);
        let installed = GLOBAL.get_or_init(|| candidate.take().expect("taken once"));
        match candidate {
            None => Ok(installed),
            Some(rejected) => Err(rejected),
        }
    }

    /// Whether calls are recorded at all.
    pub fn is_enabled(&self) -> bool {
        self.inner.queue.is_some()
    }

    /// Where the data goes, for startup messages (e.g. `SQLite ./mcp-analytics.db`).
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> Stats {
        let counters = &self.inner.counters;
        Stats {
            recorded: counters.recorded.load(Ordering::Relaxed),
            dropped: counters.dropped.load(Ordering::Relaxed),
            written: counters.written.load(Ordering::Relaxed),
            sink_errors: counters.sink_errors.load(Ordering::Relaxed),
        }
    }

    /// Waits until every event recorded before this call has been written and flushed.
    pub async fn flush(&self) {
        if let Some(done) = self.send_control(Message::Flush).await {
            let _ = done.await;
        }
    }

    /// Flushes, then stops the writer thread. Events recorded afterwards are dropped and counted.
    pub async fn shutdown(&self) {
        if let Some(done) = self.send_control(Message::Shutdown).await {
            let _ = done.await;
        }
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }

    /// Queues a finished call; never blocks.
    pub(crate) fn record(&self, call: RawCall) {
        let Some(queue) = &self.inner.queue else {
            return;
        };
        let counters = &self.inner.counters;
        match queue.try_send(Message::Call(Box::new(call))) {
            Ok(()) => counters.recorded.fetch_add(1, Ordering::Relaxed),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// Starts the writer thread over `sinks`.
    pub(crate) fn start(
        sinks: Vec<Box<dyn Sink>>,
        sanitizer: Sanitizer,
        capacity: usize,
        description: String,
    ) -> Result<Self, crate::Error> {
        let (queue, receiver) = mpsc::sync_channel(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            receiver,
            sinks,
            sanitizer,
            counters: counters.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("mcp-analytics-writer".into())
            .spawn(move || writer.run())
            .map_err(crate::Error::Writer)?;
        Ok(Self::from_parts(
            Some(queue),
            counters,
            Some(handle),
            description,
        ))
    }

    fn from_parts(
        queue: Option<SyncSender<Message>>,
        counters: Arc<Counters>,
        writer: Option<JoinHandle<()>>,
        description: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                queue,
                counters,
                writer: Mutex::new(writer),
                description,
            }),
        }
    }

    async fn send_control(
        &self,
        message: fn(tokio::sync::oneshot::Sender<()>) -> Message,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let queue = self.inner.queue.as_ref()?;
        let (done, wait) = tokio::sync::oneshot::channel();
        let mut message = message(done);
        loop {
            match queue.try_send(message) {
                Ok(()) => return Some(wait),
                Err(TrySendError::Full(back)) => {
                    message = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(TrySendError::Disconnected(_)) => return None,
            }
        }
    }
}

impl std::fmt::Debug for Analytics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analytics")
            .field("destination", &self.inner.description)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Inner {
    /// The last handle is gone: close the queue so the writer drains it, flushes and exits.
    fn drop(&mut self) {
        self.queue = None;
        if let Some(writer) = self
            .writer
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
        {
            let _ = writer.join();
        }
    }
}

static GLOBAL: OnceLock<Analytics> = OnceLock::new();

/// A finished call before sanitization: what the call path hands to the queue.
pub(crate) struct RawCall {
    ts_ms: i64,
    server: &'static ServerInfo,
    specs: &'static [ToolSpec],
    pub(crate) tool: Cow<'static, str>,
    pub(crate) arguments: Value,
    capture: Capture,
    duration: Duration,
    status: Status,
    error: Option<(Cow<'static, str>, String)>,
    result: Option<Result<CallToolResponse, ErrorData>>,
}

impl RawCall {
    pub(crate) fn new<S: Server>(
        ts_ms: i64,
        tool: Cow<'static, str>,
        arguments: Value,
        capture: Capture,
    ) -> Self {
        RawCall {
            ts_ms,
            server: &S::INFO,
            specs: S::TOOLS,
            tool,
            arguments,
            capture,
            duration: Duration::ZERO,
            status: Status::Ok,
            error: None,
            result: None,
        }
    }

    /// Fills in how the call ended; keeps a copy of the response only for tracked results.
    pub(crate) fn complete(&mut self, duration: Duration, outcome: &Outcome) {
        self.duration = duration;
        self.status = outcome.status;
        self.error.clone_from(&outcome.error);
        if self.spec().is_none_or(|spec| spec.track_results) && outcome.response.is_ok() {
            self.result = Some(outcome.response.clone());
        }
    }

    fn spec(&self) -> Option<&'static ToolSpec> {
        self.specs.iter().find(|spec| spec.name == self.tool)
    }

    /// The stored form: ids formatted, everything that may hold secrets sanitized.
    fn into_event(self, sanitizer: &Sanitizer) -> ToolCallEvent {
        let redact = self.spec().map_or(&[][..], |spec| spec.redact);
        let result_json = match &self.result {
            Some(Ok(response)) => response_json(response),
            _ => None,
        };
        let (error_type, mut error_message) = match self.error {
            Some((kind, message)) => (
                Some(kind.into_owned()),
                (!message.is_empty()).then_some(message),
            ),
            None => (None, None),
        };
        if self.status == Status::ToolError && error_message.is_none() {
            error_message = result_json.as_ref().and_then(first_text).map(str::to_owned);
        }
        let capture = self.capture;
        let timestamp = uuid::Timestamp::from_unix(
            uuid::NoContext,
            (self.ts_ms / 1000) as u64,
            ((self.ts_ms % 1000) * 1_000_000) as u32,
        );
        ToolCallEvent {
            id: uuid::Uuid::new_v7(timestamp).to_string(),
            ts_ms: self.ts_ms,
            server_name: self.server.name.to_owned(),
            server_version: self.server.version.to_owned(),
            tool: self.tool.into_owned(),
            user_id: capture.user_id.map(|id| id.to_string()),
            session_id: capture.session_id.map(|id| id.to_string()),
            client_name: capture.client.as_ref().map(|client| client.name.clone()),
            client_version: capture.client.map(|client| client.version),
            protocol_version: capture.protocol_version.map(|version| version.to_string()),
            transport: capture.transport,
            request_id: Some(capture.request_id.to_string()),
            duration_us: u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX),
            status: self.status,
            error_type,
            error_message: error_message.map(|message| sanitizer.text(&message)),
            params: Some(sanitizer.json_text(&self.arguments, redact)),
            result: result_json.map(|result| sanitizer.json_text(&result, redact)),
        }
    }
}

fn response_json(response: &CallToolResponse) -> Option<Value> {
    match response {
        CallToolResponse::Complete(result) => serde_json::to_value(result).ok(),
        CallToolResponse::InputRequired(input) => serde_json::to_value(input).ok(),
        CallToolResponse::Task(task) => serde_json::to_value(task).ok(),
        _ => None,
    }
}

/// The text of the first text block of a serialized `CallToolResult`.
fn first_text(result: &Value) -> Option<&str> {
    result
        .get("content")?
        .as_array()?
        .iter()
        .find_map(|block| block.get("text")?.as_str())
}

struct Writer {
    receiver: Receiver<Message>,
    sinks: Vec<Box<dyn Sink>>,
    sanitizer: Sanitizer,
    counters: Arc<Counters>,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let mut control = match self.receiver.recv() {
                Ok(Message::Call(call)) => {
                    batch.push(call.into_event(&self.sanitizer));
                    None
                }
                Ok(control) => Some(control),
                Err(_) => break,
            };
            while control.is_none() && batch.len() < MAX_BATCH {
                match self.receiver.try_recv() {
                    Ok(Message::Call(call)) => batch.push(call.into_event(&self.sanitizer)),
                    Ok(other) => control = Some(other),
                    Err(_) => break,
                }
            }
            self.deliver(&batch);
            batch.clear();
            match control {
                Some(Message::Flush(done)) => {
                    self.flush();
                    let _ = done.send(());
                }
                Some(Message::Shutdown(done)) => {
                    self.flush();
                    let _ = done.send(());
                    return;
                }
                _ => {}
            }
        }
        self.flush();
    }

    fn deliver(&mut self, batch: &[ToolCallEvent]) {
        if batch.is_empty() {
            return;
        }
        for sink in &mut self.sinks {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| sink.write(batch)));
            report(&self.counters, sink.name(), "write", result);
        }
        self.counters
            .written
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    fn flush(&mut self) {
        let stats = Stats {
            recorded: self.counters.recorded.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            written: self.counters.written.load(Ordering::Relaxed),
            sink_errors: self.counters.sink_errors.load(Ordering::Relaxed),
        };
        for sink in &mut self.sinks {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| sink.flush(&stats)));
            report(&self.counters, sink.name(), "flush", result);
        }
    }
}

fn report(
    counters: &Counters,
    sink: &str,
    action: &str,
    result: std::thread::Result<Result<(), crate::SinkError>>,
) {
    let error = match result {
        Ok(Ok(())) => return,
        Ok(Err(error)) => error.to_string(),
        Err(_) => "the sink panicked".to_owned(),
    };
    let failures = counters.sink_errors.fetch_add(1, Ordering::Relaxed) + 1;
    if failures.is_power_of_two() {
        tracing::warn!(
            "mcp-analytics: sink `{sink}` failed to {action} ({failures} failures so far): {error}"
        );
    }
}
