//! [`HttpExporter`]: ships events to a collector (`mcp-analytics collect`) over HTTP.
//!
//! Every batch the writer hands over is first appended, gzip-compressed, to an outbox table in
//! SQLite (the analytics database when there is one), then a sender thread posts the oldest due
//! batch and deletes it only once the collector answered 2xx. Connection errors, timeouts, 408,
//! 429 and 5xx are retried with exponential backoff and full jitter (honouring `Retry-After`);
//! 401/403 are retried at the longest interval (fix the key and nothing is lost); other 4xx mean
//! the batch itself is bad, and it is dropped and counted. Delivery is at least once; the
//! collector deduplicates by event id.

use std::{
    io::Write,
    path::Path,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    Sink, SinkError, Stats, ToolCallEvent,
    wire::{BatchRef, ingest_url},
};

/// Ships events to a collector. Add it with `Analytics::builder().sink(..)`, or set
/// `MCP_ANALYTICS_ENDPOINT` (and `MCP_ANALYTICS_API_KEY`).
pub struct HttpExporter {
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
}

/// Settings of an [`HttpExporter`].
#[derive(Clone, Debug)]
pub struct HttpExporterConfig {
    /// The collector's base URL (`http://host:8787`); batches go to `{endpoint}/ingest`.
    pub endpoint: String,
    /// The collector's key, sent as a bearer token.
    pub api_key: Option<String>,
    /// First retry delay; doubles per attempt.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How long a flush (and shutdown) waits for the outbox to drain; the rest is sent later.
    pub flush_timeout: Duration,
}

impl HttpExporterConfig {
    /// Defaults for `endpoint`: 0.5 s to 60 s backoff, 10 s timeout, 5 s flush.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            api_key: None,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(5),
        }
    }
}

struct Shared {
    outbox: Mutex<Connection>,
    wake: Condvar,
    wake_lock: Mutex<()>,
    stopping: AtomicBool,
    delivered: AtomicU64,
    dropped: AtomicU64,
    config: HttpExporterConfig,
    url: String,
}

const OUTBOX: &str = "CREATE TABLE IF NOT EXISTS export_outbox (
    id          INTEGER PRIMARY KEY,
    created_ms  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at_ms  INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    payload     BLOB    NOT NULL
)";

impl HttpExporter {
    /// An exporter whose outbox lives in `outbox` (a SQLite file; `None` keeps it in memory,
    /// so undelivered batches do not survive a restart).
    pub fn new(config: HttpExporterConfig, outbox: Option<&Path>) -> Result<Self, crate::Error> {
        let path = outbox.map_or_else(|| Path::new(":memory:").to_owned(), Path::to_owned);
        let error = |source| crate::Error::Store {
            path: path.clone(),
            source,
        };
        let connection = Connection::open(&path).map_err(error)?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(error)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(error)?;
        connection.execute_batch(OUTBOX).map_err(error)?;
        let url = ingest_url(&config.endpoint);
        let shared = Arc::new(Shared {
            outbox: Mutex::new(connection),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
            stopping: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            config,
            url,
        });
        let sender_shared = shared.clone();
        let sender = std::thread::Builder::new()
            .name("mcp-analytics-export".into())
            // The blocking client runs its own runtime: build and drop it on this thread, never
            // inside the caller's async context.
            .spawn(move || {
                match reqwest::blocking::Client::builder()
                    .timeout(sender_shared.config.timeout)
                    .build()
                {
                    Ok(client) => send_loop(&sender_shared, &client),
                    Err(error) => tracing::error!(
                        "mcp-analytics: cannot build the export HTTP client: {error}"
                    ),
                }
            })
            .map_err(crate::Error::Writer)?;
        Ok(Self {
            shared,
            sender: Some(sender),
        })
    }

    /// Batches not yet delivered.
    pub fn pending(&self) -> usize {
        self.shared.pending()
    }

    /// Events delivered so far, and events dropped because the collector refused their batch.
    pub fn delivered_and_dropped(&self) -> (u64, u64) {
        (
            self.shared.delivered.load(Ordering::Relaxed),
            self.shared.dropped.load(Ordering::Relaxed),
        )
    }
}

impl Sink for HttpExporter {
    fn name(&self) -> &str {
        "http-exporter"
    }

    fn write(&mut self, events: &[ToolCallEvent]) -> Result<(), SinkError> {
        let json = serde_json::to_vec(&BatchRef { events })?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&json)?;
        let payload = gzip.finish()?;
        let now = now_ms();
        self.shared.lock().execute(
            "INSERT INTO export_outbox (created_ms, next_at_ms, events, payload) VALUES (?1, ?1, ?2, ?3)",
            params![now, events.len() as i64, payload],
        )?;
        self.shared.notify();
        Ok(())
    }

    fn flush(&mut self, _stats: &Stats) -> Result<(), SinkError> {
        self.shared.notify();
        let deadline = Instant::now() + self.shared.config.flush_timeout;
        while self.shared.due_now() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for HttpExporter {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.notify();
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self) {
        let _guard = self
            .wake_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.wake.notify_all();
    }

    fn pending(&self) -> usize {
        self.lock()
            .query_row("SELECT count(*) FROM export_outbox", [], |row| {
                row.get::<_, i64>(0)
            })
            .map_or(0, |count| count as usize)
    }

    /// Whether a batch is waiting that is due now (not backing off).
    fn due_now(&self) -> bool {
        self.lock()
            .query_row(
                "SELECT 1 FROM export_outbox WHERE next_at_ms <= ?1 LIMIT 1",
                [now_ms()],
                |_| Ok(()),
            )
            .optional()
            .is_ok_and(|row| row.is_some())
    }
}

/// What became of one delivery attempt.
enum Attempt {
    Delivered,
    Retry(Option<Duration>),
    RetryLater,
    Refused(String),
}

fn send_loop(shared: &Shared, client: &reqwest::blocking::Client) {
    loop {
        let next = shared
            .lock()
            .query_row(
                "SELECT id, attempts, events, payload, next_at_ms FROM export_outbox ORDER BY next_at_ms, id LIMIT 1",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, u32>(1)?, row.get::<_, i64>(2)?, row.get::<_, Vec<u8>>(3)?, row.get::<_, i64>(4)?)),
            )
            .optional()
            .unwrap_or(None);
        let stopping = shared.stopping.load(Ordering::Acquire);
        let Some((id, attempts, events, payload, next_at_ms)) = next else {
            if stopping {
                return;
            }
            wait(shared, Duration::from_secs(1));
            continue;
        };
        let wait_ms = next_at_ms - now_ms();
        if wait_ms > 0 {
            if stopping {
                return; // Backing off: the batch stays in the outbox for the next start.
            }
            wait(shared, Duration::from_millis(wait_ms.min(1000) as u64));
            continue;
        }
        let outcome = attempt(shared, client, payload);
        let outbox = shared.lock();
        let _ = match outcome {
            Attempt::Delivered => {
                shared.delivered.fetch_add(events as u64, Ordering::Relaxed);
                outbox.execute("DELETE FROM export_outbox WHERE id = ?1", [id])
            }
            Attempt::Refused(reason) => {
                tracing::error!(
                    "mcp-analytics: the collector refused a batch of {events} events, dropping it: {reason}"
                );
                shared.dropped.fetch_add(events as u64, Ordering::Relaxed);
                outbox.execute("DELETE FROM export_outbox WHERE id = ?1", [id])
            }
            Attempt::Retry(after) => {
                let delay = after.unwrap_or_else(|| backoff(&shared.config, attempts));
                reschedule(&outbox, id, attempts, delay)
            }
            Attempt::RetryLater => reschedule(&outbox, id, attempts, shared.config.max_backoff),
        };
        drop(outbox);
        if stopping && !shared.due_now() {
            return;
        }
    }
}

fn attempt(shared: &Shared, client: &reqwest::blocking::Client, payload: Vec<u8>) -> Attempt {
    let mut request = client
        .post(&shared.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::CONTENT_ENCODING, "gzip")
        .body(payload);
    if let Some(key) = &shared.config.api_key {
        request = request.bearer_auth(key);
    }
    let response = match request.send() {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!("mcp-analytics: export failed, will retry: {error}");
            return Attempt::Retry(None);
        }
    };
    let status = response.status().as_u16();
    let retry_after = super::retry_after(&response);
    match status {
        200..=299 => Attempt::Delivered,
        408 | 429 | 500..=599 => Attempt::Retry(retry_after),
        401 | 403 => {
            tracing::error!(
                "mcp-analytics: the collector rejected the key (HTTP {status}); batches wait in the outbox"
            );
            Attempt::RetryLater
        }
        _ => Attempt::Refused(format!(
            "HTTP {status}: {}",
            response.text().unwrap_or_default()
        )),
    }
}

fn reschedule(
    outbox: &Connection,
    id: i64,
    attempts: u32,
    delay: Duration,
) -> rusqlite::Result<usize> {
    outbox.execute(
        "UPDATE export_outbox SET attempts = ?2, next_at_ms = ?3 WHERE id = ?1",
        params![id, attempts + 1, now_ms() + delay.as_millis() as i64],
    )
}

/// Exponential backoff with full jitter: uniform in [0, min(max, min · 2^attempts)].
fn backoff(config: &HttpExporterConfig, attempts: u32) -> Duration {
    let ceiling = config
        .min_backoff
        .saturating_mul(1 << attempts.min(16))
        .min(config.max_backoff);
    let jitter = (now_nanos() % 1_000) as u32;
    ceiling
        .mul_f64(f64::from(jitter) / 1_000.0)
        .max(Duration::from_millis(10))
}

fn wait(shared: &Shared, timeout: Duration) {
    let guard = shared
        .wake_lock
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = shared.wake.wait_timeout(guard, timeout);
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::from(elapsed.subsec_nanos()))
}
