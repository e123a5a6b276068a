//! [`Analytics`]: the handle tool calls and other requests record into, built by
//! [`AnalyticsBuilder`]. Recording pushes onto a bounded lock-free queue and never blocks or
//! makes a system call (full → the event is dropped and counted); a writer thread drains it
//! every few milliseconds (see [`writer`]), turning each [`RawCall`] and [`RawRequest`] into a
//! sanitized event for the sinks.

mod builder;
mod raw;
mod raw_request;
mod writer;

use std::{
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::{JoinHandle, Thread},
};

pub use builder::AnalyticsBuilder;
use crossbeam_queue::ArrayQueue;
pub(crate) use raw::RawCall;
pub(crate) use raw_request::RawRequest;
pub(crate) use writer::Batch;

use crate::{Sanitizer, Sink, Stats};

/// Where tool calls and other requests are recorded. Cheap to clone; clones share one queue and
/// writer thread.
///
/// Build one with [`Analytics::builder`] or [`Analytics::from_env`]; servers without
/// `#[mcp_server(analytics = ...)]` use [`Analytics::global`].
#[derive(Clone)]
pub struct Analytics {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when analytics is disabled.
    shared: Option<Arc<Shared>>,
    counters: Arc<Counters>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Set when there is no writer thread: whoever serves the requests takes the events with
    /// [`Analytics::drain`] (a Cloudflare Worker, after each response).
    drained: Option<Mutex<writer::Converter>>,
    description: String,
    database: Option<crate::Database>,
    /// The `(server name, version)` whose catalogue was handed to the writer.
    catalogs: Mutex<Vec<(&'static str, &'static str)>>,
    /// The alert evaluator's thread, stopped with the last handle.
    #[cfg(feature = "alerts")]
    _alerts: Option<crate::alerts::Evaluator>,
}

/// A finished tool call or other request, as queued.
enum Raw {
    Call(Box<RawCall>),
    Request(Box<RawRequest>),
}

/// What the call path and the writer thread share.
struct Shared {
    events: ArrayQueue<Raw>,
    controls: Mutex<Vec<Control>>,
    closed: AtomicBool,
    writer: OnceLock<Thread>,
}

enum Control {
    Flush(tokio::sync::oneshot::Sender<()>),
    Shutdown(tokio::sync::oneshot::Sender<()>),
    /// A server's tool catalogue to store (nobody waits for it).
    Catalog(Box<crate::catalog::ToolCatalog>),
}

impl Control {
    /// Whether someone waits for everything recorded before it to be written.
    fn waits(&self) -> bool {
        !matches!(self, Control::Catalog(_))
    }
}

impl Shared {
    fn lock_controls(&self) -> MutexGuard<'_, Vec<Control>> {
        self.controls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn wake_writer(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }
}

#[derive(Default)]
struct Counters {
    recorded: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    sink_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Stats {
        Stats {
            recorded: self.recorded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            sink_errors: self.sink_errors.load(Ordering::Relaxed),
        }
    }
}

impl Analytics {
    /// A builder with every option at its default (no sinks: add one, or use `from_env`).
    pub fn builder() -> AnalyticsBuilder {
        AnalyticsBuilder::default()
    }

    /// Analytics configured from the environment (and `.env` / `.dev.vars`); see [`crate::Config`].
    pub fn from_env() -> Result<Self, crate::Error> {
        Self::builder().config(crate::Config::from_env()?).build()
    }

    /// A handle that records nothing: calls go straight to the tool.
    pub fn disabled() -> Self {
        Self::from_parts(
            None,
            Arc::default(),
            None,
            "analytics disabled".into(),
            None,
            #[cfg(feature = "alerts")]
            None,
        )
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

    /// The process-wide handle, set up from the environment now if it is not yet: unlike
    /// [`Analytics::global`], bad settings are an error (the serve helpers call this at startup).
    pub fn init_global() -> Result<&'static Analytics, crate::Error> {
        if let Some(installed) = GLOBAL.get() {
            return Ok(installed);
        }
        let analytics = Analytics::from_env()?;
        Ok(analytics
            .install()
            .unwrap_or_else(|_| GLOBAL.get().expect("installed by another thread")))
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
        self.inner.shared.is_some()
    }

    /// Where the data goes, for startup messages (e.g. `SQLite ./mcp-analytics.db`).
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    /// The database calls are stored in, if any (the dashboard reads it).
    pub fn database(&self) -> Option<&crate::Database> {
        self.inner.database.as_ref()
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Takes every event recorded so far, sanitized, and the catalogues handed over, when the
    /// handle has no writer thread (see [`AnalyticsBuilder::drained`]); empty otherwise.
    #[cfg_attr(
        not(any(all(feature = "workers", target_arch = "wasm32"), test)),
        allow(dead_code)
    )]
    pub(crate) fn drain(&self) -> Drained {
        let (Some(shared), Some(converter)) = (&self.inner.shared, &self.inner.drained) else {
            return Drained::default();
        };
        let mut drained = Drained::default();
        for control in std::mem::take(&mut *shared.lock_controls()) {
            match control {
                Control::Catalog(catalog) => drained.catalogs.push(*catalog),
                Control::Flush(done) | Control::Shutdown(done) => {
                    let _ = done.send(());
                }
            }
        }
        converter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .convert(&shared.events, true, &mut drained.batch, |_| {});
        let taken = drained.batch.calls.len() + drained.batch.requests.len();
        self.inner
            .counters
            .written
            .fetch_add(taken as u64, Ordering::Relaxed);
        drained
    }

    /// Waits until every event recorded before this call has been written and flushed (at
    /// once for a handle without a writer thread).
    pub async fn flush(&self) {
        self.control(Control::Flush).await;
    }

    /// Flushes, then stops the writer thread. Events recorded afterwards are dropped and counted.
    pub async fn shutdown(&self) {
        self.control(Control::Shutdown).await;
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

    /// Hands server `name` `version`'s tool catalogue (measured by `measure`, only the first
    /// time) to the writer, once per handle.
    pub(crate) fn record_catalog(
        &self,
        name: &'static str,
        version: &'static str,
        measure: impl FnOnce() -> crate::catalog::ToolCatalog,
    ) {
        let Some(shared) = &self.inner.shared else {
            return;
        };
        let first = {
            let mut recorded = self
                .inner
                .catalogs
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let first = !recorded.contains(&(name, version));
            if first {
                recorded.push((name, version));
            }
            first
        };
        if first && !shared.is_closed() {
            shared
                .lock_controls()
                .push(Control::Catalog(Box::new(measure())));
            shared.wake_writer();
        }
    }

    /// Queues a finished call; never blocks.
    pub(crate) fn record(&self, call: Box<RawCall>) {
        self.push(Raw::Call(call));
    }

    /// Queues a finished request other than `tools/call`; never blocks.
    pub(crate) fn record_request(&self, request: Box<RawRequest>) {
        self.push(Raw::Request(request));
    }

    fn push(&self, raw: Raw) {
        let Some(shared) = &self.inner.shared else {
            return;
        };
        let counters = &self.inner.counters;
        if shared.is_closed() || shared.events.push(raw).is_err() {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        counters.recorded.fetch_add(1, Ordering::Relaxed);
        if shared.events.len() == writer::MAX_BATCH {
            shared.wake_writer();
        }
    }

    /// Starts the writer thread over `sinks` (none for a `drained` handle: see
    /// [`Analytics::drain`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        sinks: Vec<Box<dyn Sink>>,
        sanitizer: Sanitizer,
        capacity: usize,
        interval: std::time::Duration,
        drained: bool,
        description: String,
        database: Option<crate::Database>,
        #[cfg(feature = "alerts")] alerts: Option<crate::alerts::Evaluator>,
    ) -> Result<Self, crate::Error> {
        let shared = Arc::new(Shared {
            events: ArrayQueue::new(capacity.max(1)),
            controls: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            writer: OnceLock::new(),
        });
        let counters = Arc::new(Counters::default());
        let converter = writer::Converter::new(sanitizer);
        if drained {
            let mut analytics = Self::from_parts(
                Some(shared),
                counters,
                None,
                description,
                database,
                #[cfg(feature = "alerts")]
                alerts,
            );
            Arc::get_mut(&mut analytics.inner)
                .expect("not shared yet")
                .drained = Some(Mutex::new(converter));
            return Ok(analytics);
        }
        let writer = writer::Writer {
            shared: shared.clone(),
            sinks,
            converter,
            counters: counters.clone(),
            interval,
        };
        let handle = std::thread::Builder::new()
            .name("mcp-analytics-writer".into())
            .spawn(move || writer.run())
            .map_err(crate::Error::Writer)?;
        let _ = shared.writer.set(handle.thread().clone());
        Ok(Self::from_parts(
            Some(shared),
            counters,
            Some(handle),
            description,
            database,
            #[cfg(feature = "alerts")]
            alerts,
        ))
    }

    fn from_parts(
        shared: Option<Arc<Shared>>,
        counters: Arc<Counters>,
        writer: Option<JoinHandle<()>>,
        description: String,
        database: Option<crate::Database>,
        #[cfg(feature = "alerts")] alerts: Option<crate::alerts::Evaluator>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared,
                counters,
                writer: Mutex::new(writer),
                drained: None,
                description,
                database,
                catalogs: Mutex::default(),
                #[cfg(feature = "alerts")]
                _alerts: alerts,
            }),
        }
    }

    /// Hands `control` to the writer and waits until it has been carried out.
    async fn control(&self, control: fn(tokio::sync::oneshot::Sender<()>) -> Control) {
        let Some(shared) = &self.inner.shared else {
            return;
        };
        if shared.is_closed() || self.inner.drained.is_some() {
            return;
        }
        let (done, wait) = tokio::sync::oneshot::channel();
        shared.lock_controls().push(control(done));
        shared.wake_writer();
        let _ = wait.await;
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
    /// The last handle is gone: the writer drains the queue, flushes and exits.
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.close();
            shared.wake_writer();
        }
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

/// What [`Analytics::drain`] took.
#[derive(Default)]
#[cfg_attr(
    not(any(all(feature = "workers", target_arch = "wasm32"), test)),
    allow(dead_code)
)]
pub(crate) struct Drained {
    /// The sanitized events.
    pub(crate) batch: Batch,
    /// The servers' tool catalogues handed over since the last drain.
    pub(crate) catalogs: Vec<crate::catalog::ToolCatalog>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Status, mcp_server, tool};
    use rmcp::{
        ServiceExt,
        model::{CallToolRequestParams, ClientConfig},
    };

    struct Echo {
        analytics: Analytics,
    }

    #[mcp_server(analytics = self.analytics)]
    impl Echo {
        /// Echoes its argument.
        #[tool]
        async fn echo(&self, args: EchoArgs) -> String {
            args.text
        }
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct EchoArgs {
        text: String,
    }

    #[tokio::test]
    async fn a_drained_handle_hands_over_sanitized_events_once_and_never_waits_on_a_flush() {
        let analytics = Analytics::builder().drained().build().unwrap();
        let (server_io, client_io) = tokio::io::duplex(4096);
        let server = Echo {
            analytics: analytics.clone(),
        };
        tokio::spawn(async move {
            let running = server
                .serve(server_io)
                .await
                .expect("the handshake succeeds");
            running.waiting().await
        });
        let client = ClientConfig::default().serve(client_io).await.unwrap();
        client.list_all_tools().await.unwrap();
        let arguments = serde_json::json!({"text": "hi", "api_key": "sk_live_secret"});
        client
            .call_tool(
                CallToolRequestParams::new("echo")
                    .with_arguments(arguments.as_object().unwrap().clone()),
            )
            .await
            .unwrap();
        analytics.flush().await;
        let drained = analytics.drain();
        let calls = &drained.batch.calls;
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].tool, "echo");
        assert_eq!(calls[0].status, Status::Ok);
        let params = calls[0].params.as_deref().unwrap();
        assert!(!params.contains("sk_live_secret"), "{params}");
        assert!(
            !drained.batch.requests.is_empty(),
            "initialize and tools/list are recorded"
        );
        assert_eq!(drained.catalogs.len(), 1);
        let again = analytics.drain();
        assert!(again.batch.calls.is_empty() && again.catalogs.is_empty());
        assert_eq!(analytics.stats().written, analytics.stats().recorded);
    }
}
