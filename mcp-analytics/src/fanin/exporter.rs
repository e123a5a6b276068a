//! [`HttpExporter`]: ships events — tool calls and the other requests — to a collector
//! (`mcp-analytics collect`) over HTTP.
//!
//! Every batch the writer hands over is first appended, gzip-compressed, to an outbox table in
//! SQLite (the analytics database when there is one), cut into batches the collector always
//! accepts (at most [`MAX_BATCH_BYTES`] of JSON and [`MAX_BATCH_EVENTS`] events); then a sender
//! thread posts the oldest due batch and deletes it only once the collector answered 2xx. The
//! collector checks events one by one: those it refuses (listed in its answer) are dropped,
//! counted and logged, the rest are stored. Connection errors, timeouts, 408, 429 and 5xx are
//! retried with exponential backoff and full jitter (honouring `Retry-After`); 401/403 are
//! retried at the longest interval (fix the key and nothing is lost); 400, 413 and 422 (a
//! collector with smaller limits, or an older one refusing a whole batch for one event) split
//! the batch in halves, down to single events, and only a single refused event is dropped; other
//! 4xx drop the batch, counted. Delivery is at least once; the collector deduplicates by event
//! id.

use std::{
    io::{Read, Write},
    path::Path,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::value::RawValue;

use crate::{
    ClientText, RequestEvent, Sink, SinkError, Stats, ToolCallEvent,
    fanin::wire::{Ingested, MAX_BODY_BYTES, MAX_DECODED_BYTES, MAX_EVENTS, ingest_url},
};

/// The most JSON bytes one batch carries (unless it is a single larger event): compressed or
/// not, well within the collector's body and decompressed-size limits.
pub const MAX_BATCH_BYTES: usize = MAX_BODY_BYTES / 2;
/// The most events one batch carries (a fifth of the collector's limit).
pub const MAX_BATCH_EVENTS: usize = MAX_EVENTS / 5;
const _: () = assert!(MAX_BATCH_BYTES < MAX_DECODED_BYTES && MAX_BATCH_EVENTS < MAX_EVENTS);

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

    /// Events delivered so far (stored by the collector, or already there), and events dropped
    /// because the collector refused them.
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
        self.ship(events)
    }

    /// Requests other than `tools/call` travel in the same `events` array (the collector tells
    /// them by their `method`).
    fn write_requests(&mut self, requests: &[RequestEvent]) -> Result<(), SinkError> {
        self.ship(requests)
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

impl HttpExporter {
    /// Packs `events` into batches, appends them to the outbox and wakes the sender.
    fn ship<E: serde::Serialize>(&mut self, events: &[E]) -> Result<(), SinkError> {
        let mut packer = Packer::default();
        let mut encoded = Vec::with_capacity(1024);
        for event in events {
            encoded.clear();
            serde_json::to_writer(&mut encoded, event)?;
            packer.push(&encoded);
        }
        let batches = compress(packer.finish())?;
        self.shared.enqueue(None, now_ms(), &batches)?;
        self.shared.notify();
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

    /// Appends `batches` (`(events, gzipped JSON)`), due now, in place of the batch `replacing`.
    fn enqueue(
        &self,
        replacing: Option<i64>,
        created_ms: i64,
        batches: &[(usize, Vec<u8>)],
    ) -> rusqlite::Result<()> {
        let outbox = self.lock();
        let transaction = outbox.unchecked_transaction()?;
        if let Some(id) = replacing {
            transaction.execute("DELETE FROM export_outbox WHERE id = ?1", [id])?;
        }
        let now = now_ms();
        for (events, payload) in batches {
            transaction.execute(
                "INSERT INTO export_outbox (created_ms, next_at_ms, events, payload) VALUES (?1, ?2, ?3, ?4)",
                params![created_ms, now, *events as i64, payload],
            )?;
        }
        transaction.commit()
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
    /// 2xx, with the collector's answer when it could be read.
    Delivered(Option<Ingested>),
    Retry(Option<Duration>),
    RetryLater,
    /// 400, 413 or 422: the collector would not read this batch as a whole.
    Split(String),
    Refused(String),
}

fn send_loop(shared: &Shared, client: &reqwest::blocking::Client) {
    loop {
        let next = shared
            .lock()
            .query_row(
                "SELECT id, attempts, events, payload, next_at_ms, created_ms FROM export_outbox ORDER BY next_at_ms, id LIMIT 1",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, u32>(1)?, row.get::<_, i64>(2)?, row.get::<_, Vec<u8>>(3)?, row.get::<_, i64>(4)?, row.get::<_, i64>(5)?)),
            )
            .optional()
            .unwrap_or(None);
        let stopping = shared.stopping.load(Ordering::Acquire);
        let Some((id, attempts, events, payload, next_at_ms, created_ms)) = next else {
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
        let events = u64::try_from(events).unwrap_or(0);
        let outcome = match attempt(shared, client, payload.clone()) {
            Attempt::Split(reason) if events > 1 => match split(&payload) {
                Ok(parts) => match shared.enqueue(Some(id), created_ms, &parts) {
                    Ok(()) => {
                        tracing::debug!(
                            "mcp-analytics: the collector did not take a batch of {events} events ({reason}); sending it in {} parts",
                            parts.len()
                        );
                        continue;
                    }
                    Err(_) => Attempt::Retry(None),
                },
                Err(why) => Attempt::Refused(format!("{reason}; and it cannot be split: {why}")),
            },
            Attempt::Split(reason) => Attempt::Refused(reason),
            outcome => outcome,
        };
        drop(payload);
        let outbox = shared.lock();
        let _ = match outcome {
            Attempt::Delivered(answer) => {
                let stored = answer.as_ref().map_or(events, |answer| {
                    (answer.accepted as u64 + answer.duplicates as u64).min(events)
                });
                shared.delivered.fetch_add(stored, Ordering::Relaxed);
                if stored < events {
                    shared.dropped.fetch_add(events - stored, Ordering::Relaxed);
                    log_rejected(events, answer.as_ref());
                }
                outbox.execute("DELETE FROM export_outbox WHERE id = ?1", [id])
            }
            Attempt::Split(reason) | Attempt::Refused(reason) => {
                tracing::error!(
                    "mcp-analytics: the collector refused a batch of {events} events, dropping it: {reason}"
                );
                shared.dropped.fetch_add(events, Ordering::Relaxed);
                outbox.execute("DELETE FROM export_outbox WHERE id = ?1", [id])
            }
            Attempt::Retry(after) => {
                let delay = after.unwrap_or_else(|| {
                    crate::retry::backoff(
                        shared.config.min_backoff,
                        shared.config.max_backoff,
                        attempts,
                    )
                });
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

/// Logs the events the collector refused out of a delivered batch (the first few reasons).
fn log_rejected(events: u64, answer: Option<&Ingested>) {
    let Some(answer) = answer else { return };
    let reasons: Vec<String> = answer
        .rejected
        .iter()
        .take(3)
        .map(|rejected| {
            format!(
                "event {} ({}): {}",
                rejected.index,
                ClientText::new(rejected.id.as_deref().unwrap_or("no id")),
                ClientText::new(&rejected.reason)
            )
        })
        .collect();
    let more = answer.rejected.len().saturating_sub(reasons.len());
    let more = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    tracing::warn!(
        "mcp-analytics: the collector refused {} of {events} events, dropping them: {}{more}",
        answer.rejected.len(),
        reasons.join("; ")
    );
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
    let retry_after = crate::retry::retry_after(&response);
    let text = |response: reqwest::blocking::Response| {
        let body = response.text().unwrap_or_default();
        format!("HTTP {status}: {}", ClientText::from_string(body))
    };
    match status {
        200..=299 => Attempt::Delivered(
            response
                .bytes()
                .ok()
                .and_then(|body| serde_json::from_slice(&body).ok()),
        ),
        408 | 429 | 500..=599 => Attempt::Retry(retry_after),
        401 | 403 => {
            tracing::error!(
                "mcp-analytics: the collector rejected the key (HTTP {status}); batches wait in the outbox"
            );
            Attempt::RetryLater
        }
        400 | 413 | 422 => Attempt::Split(text(response)),
        _ => Attempt::Refused(text(response)),
    }
}

/// `{"events": [...]}` as read back from the outbox, each event kept as its JSON text.
#[derive(serde::Deserialize)]
struct Outgoing<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// A stored batch cut in two halves (each packed again within the batch limits), gzipped.
fn split(payload: &[u8]) -> Result<Vec<(usize, Vec<u8>)>, SplitError> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(payload)
        .read_to_end(&mut json)
        .map_err(SplitError::Decompress)?;
    let batch: Outgoing<'_> = serde_json::from_slice(&json)?;
    let half = batch.events.len().div_ceil(2).max(1);
    let mut bodies = Vec::new();
    for events in batch.events.chunks(half) {
        let mut packer = Packer::default();
        for event in events {
            packer.push(event.get().as_bytes());
        }
        bodies.extend(packer.finish());
    }
    compress(bodies).map_err(SplitError::Compress)
}

/// Why a stored batch cannot be split in halves.
#[derive(Debug, thiserror::Error)]
enum SplitError {
    #[error("cannot decompress it: {0}")]
    Decompress(std::io::Error),
    #[error("cannot read it: {0}")]
    Read(#[from] serde_json::Error),
    #[error("cannot compress it: {0}")]
    Compress(std::io::Error),
}

const OPEN: &[u8] = b"{\"events\":[";
const CLOSE: &[u8] = b"]}";

/// Packs JSON-encoded events, in order, into `{"events": [...]}` bodies of at most
/// [`MAX_BATCH_BYTES`] (a larger event goes alone) and [`MAX_BATCH_EVENTS`].
#[derive(Default)]
struct Packer {
    bodies: Vec<(usize, Vec<u8>)>,
    body: Vec<u8>,
    events: usize,
}

impl Packer {
    fn push(&mut self, event: &[u8]) {
        let full = self.events == MAX_BATCH_EVENTS
            || self.body.len() + 1 + event.len() + CLOSE.len() > MAX_BATCH_BYTES;
        if self.events > 0 && full {
            self.close();
        }
        if self.events == 0 {
            self.body.extend_from_slice(OPEN);
        } else {
            self.body.push(b',');
        }
        self.body.extend_from_slice(event);
        self.events += 1;
    }

    fn close(&mut self) {
        if self.events > 0 {
            self.body.extend_from_slice(CLOSE);
            self.bodies
                .push((self.events, std::mem::take(&mut self.body)));
            self.events = 0;
        }
    }

    /// `(events, JSON)` per body.
    fn finish(mut self) -> Vec<(usize, Vec<u8>)> {
        self.close();
        self.bodies
    }
}

/// Gzips each body.
fn compress(bodies: Vec<(usize, Vec<u8>)>) -> std::io::Result<Vec<(usize, Vec<u8>)>> {
    bodies
        .into_iter()
        .map(|(events, json)| {
            let mut gzip = flate2::write::GzEncoder::new(
                Vec::with_capacity(json.len() / 4),
                flate2::Compression::fast(),
            );
            gzip.write_all(&json)?;
            Ok((events, gzip.finish()?))
        })
        .collect()
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

fn wait(shared: &Shared, timeout: Duration) {
    let guard = shared
        .wake_lock
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = shared.wake.wait_timeout(guard, timeout);
}

use crate::clock::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(bodies: &[(usize, Vec<u8>)]) -> Vec<String> {
        bodies
            .iter()
            .flat_map(|(events, json)| {
                let batch: Outgoing<'_> = serde_json::from_slice(json).unwrap();
                assert_eq!(batch.events.len(), *events);
                batch
                    .events
                    .iter()
                    .map(|event| event.get().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn packed_batches_stay_within_both_limits_and_keep_every_event_in_order() {
        let big = format!("\"{}\"", "x".repeat(MAX_BATCH_BYTES / 3));
        let huge = format!("\"{}\"", "y".repeat(MAX_BATCH_BYTES + 10));
        let mut events: Vec<String> = (0..MAX_BATCH_EVENTS + 5).map(|i| i.to_string()).collect();
        events.extend([
            big.clone(),
            big.clone(),
            huge.clone(),
            big.clone(),
            "1".into(),
        ]);
        let mut packer = Packer::default();
        for event in &events {
            packer.push(event.as_bytes());
        }
        let bodies = packer.finish();
        for (count, json) in &bodies {
            assert!(*count <= MAX_BATCH_EVENTS);
            assert!(
                json.len() <= MAX_BATCH_BYTES || *count == 1,
                "{count} events in {} bytes",
                json.len()
            );
        }
        assert_eq!(unpack(&bodies), events);
        let counts: Vec<usize> = bodies.iter().map(|(count, _)| *count).collect();
        assert_eq!(
            counts,
            [MAX_BATCH_EVENTS, 7, 1, 2],
            "a full count, then bytes, decide"
        );
    }

    #[test]
    fn a_split_batch_keeps_every_event_in_two_or_more_parts() {
        let events: Vec<String> = (0..5).map(|i| format!("{{\"id\":\"e-{i}\"}}")).collect();
        let mut packer = Packer::default();
        for event in &events {
            packer.push(event.as_bytes());
        }
        let stored = compress(packer.finish()).unwrap();
        let parts = split(&stored[0].1).unwrap();
        assert_eq!(
            parts.iter().map(|(count, _)| *count).collect::<Vec<_>>(),
            [3, 2]
        );
        let decoded: Vec<(usize, Vec<u8>)> = parts
            .iter()
            .map(|(count, gzip)| {
                let mut json = Vec::new();
                flate2::read::GzDecoder::new(&gzip[..])
                    .read_to_end(&mut json)
                    .unwrap();
                (*count, json)
            })
            .collect();
        assert_eq!(unpack(&decoded), events);
    }
}
