//! The writer thread: wakes every few milliseconds (or when the queue fills up, or on a flush),
//! drains the queue, sanitizes each call into a [`ToolCallEvent`] and each other request into a
//! [`RequestEvent`], hands batches to every sink (tool calls first) and then lets each sink
//! write what is due (`Sink::tick`), so quiet periods leave nothing behind.

use std::{panic::AssertUnwindSafe, sync::Arc, sync::atomic::Ordering, time::Duration};

use crossbeam_queue::ArrayQueue;

use super::{Control, Counters, Raw, RawRequest, Shared};
use crate::{
    Sanitizer, Sink, SinkError,
    event::{RequestEvent, ToolCallEvent},
};

/// The most events written to the sinks in one batch (one SQLite transaction).
pub(super) const MAX_BATCH: usize = 4096;

pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) sinks: Vec<Box<dyn Sink>>,
    pub(super) converter: Converter,
    pub(super) counters: Arc<Counters>,
    /// How long the writer sleeps when nothing wakes it.
    pub(super) interval: Duration,
}

/// Turns queued calls and requests into sanitized events with their ids.
pub(super) struct Converter {
    sanitizer: Sanitizer,
    ids: IdGenerator,
    /// Requests whose record is not final yet (see `RawRequest::settled`), kept in the boxes
    /// they were queued in.
    #[allow(clippy::vec_box)]
    waiting: Vec<Box<RawRequest>>,
}

impl Converter {
    pub(super) fn new(sanitizer: Sanitizer) -> Self {
        Self {
            sanitizer,
            ids: IdGenerator::new(),
            waiting: Vec::new(),
        }
    }

    /// Converts the requests held back and everything queued into `batch`, handing it to
    /// `full` whenever it holds [`MAX_BATCH`] events. `now` settles every request.
    pub(super) fn convert(
        &mut self,
        queue: &ArrayQueue<Raw>,
        now: bool,
        batch: &mut Batch,
        mut full: impl FnMut(&mut Batch),
    ) {
        let held = std::mem::take(&mut self.waiting);
        let next = held
            .into_iter()
            .map(Raw::Request)
            .chain(std::iter::from_fn(|| queue.pop()));
        for raw in next {
            let raw = match raw {
                Raw::Request(mut request) => {
                    if !request.settled(now) {
                        self.waiting.push(request);
                        continue;
                    }
                    Raw::Request(request)
                }
                call => call,
            };
            let id = self.ids.next(raw.ts_ms());
            match raw {
                Raw::Call(call) => batch.calls.push(call.into_event(id, &self.sanitizer)),
                Raw::Request(request) => {
                    batch.requests.push(request.into_event(id, &self.sanitizer))
                }
            }
            if batch.len() == MAX_BATCH {
                full(batch);
            }
        }
    }
}

impl Writer {
    pub(super) fn run(mut self) {
        let mut batch = Batch {
            calls: Vec::with_capacity(MAX_BATCH),
            requests: Vec::new(),
        };
        loop {
            let controls = std::mem::take(&mut *self.shared.lock_controls());
            let closing = self.shared.is_closed();
            for control in &controls {
                if let Control::Catalog(catalog) = control {
                    self.each_sink("write", |sink| sink.write_catalog(catalog));
                }
            }
            let waited = controls.iter().any(Control::waits);
            // A flush or the end delivers everything recorded before it.
            let now = closing || waited;
            let Writer {
                shared,
                sinks,
                converter,
                counters,
                ..
            } = &mut self;
            converter.convert(&shared.events, now, &mut batch, |batch| {
                deliver(sinks, counters, batch)
            });
            deliver(sinks, counters, &mut batch);
            let stop = closing
                || controls
                    .iter()
                    .any(|control| matches!(control, Control::Shutdown(_)));
            if stop || waited {
                self.flush();
            } else {
                self.tick();
            }
            if stop {
                self.shared.close();
            }
            for control in controls {
                if let Control::Flush(done) | Control::Shutdown(done) = control {
                    let _ = done.send(());
                }
            }
            if stop {
                return;
            }
            std::thread::park_timeout(self.interval);
        }
    }

    /// Runs `action` on every sink, a failure or panic counted and the next sink still served.
    fn each_sink(
        &mut self,
        action: &str,
        run: impl FnMut(&mut Box<dyn Sink>) -> Result<(), SinkError>,
    ) {
        each_sink(&mut self.sinks, &self.counters, action, run);
    }

    fn flush(&mut self) {
        let stats = self.counters.snapshot();
        self.each_sink("flush", |sink| sink.flush(&stats));
    }

    /// Lets every sink write what is due (the store's hourly rollups and counters).
    fn tick(&mut self) {
        let stats = self.counters.snapshot();
        self.each_sink("tick", |sink| sink.tick(&stats));
    }
}

/// Hands the batch to every sink (its tool calls, then its other requests) and empties it.
fn deliver(sinks: &mut [Box<dyn Sink>], counters: &Counters, batch: &mut Batch) {
    if !batch.calls.is_empty() {
        each_sink(sinks, counters, "write", |sink| sink.write(&batch.calls));
    }
    if !batch.requests.is_empty() {
        each_sink(sinks, counters, "write", |sink| {
            sink.write_requests(&batch.requests)
        });
    }
    counters
        .written
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    batch.calls.clear();
    batch.requests.clear();
}

/// Runs `action` on every sink, a failure or panic counted and the next sink still served.
fn each_sink(
    sinks: &mut [Box<dyn Sink>],
    counters: &Counters,
    action: &str,
    mut run: impl FnMut(&mut Box<dyn Sink>) -> Result<(), SinkError>,
) {
    for sink in sinks {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| run(sink)));
        report(counters, sink.name(), action, result);
    }
}

/// Events converted and not yet delivered.
#[derive(Default)]
pub(crate) struct Batch {
    /// Tool calls.
    pub(crate) calls: Vec<ToolCallEvent>,
    /// The other requests.
    pub(crate) requests: Vec<RequestEvent>,
}

impl Batch {
    fn len(&self) -> usize {
        self.calls.len() + self.requests.len()
    }
}

impl Raw {
    fn ts_ms(&self) -> i64 {
        match self {
            Raw::Call(call) => call.ts_ms,
            Raw::Request(request) => request.ts_ms,
        }
    }
}

/// UUIDv7 event ids from a generator seeded once from the OS (no system call per event). Ids of
/// one millisecond carry an increasing 12-bit counter (RFC 9562, method 1), so they sort in the
/// order the writer received them.
pub(super) struct IdGenerator {
    state: u64,
    last_ms: i64,
    counter: u16,
}

impl IdGenerator {
    pub(super) fn new() -> Self {
        Self {
            state: uuid::Uuid::new_v4().as_u64_pair().0,
            last_ms: i64::MIN,
            counter: 0,
        }
    }

    /// SplitMix64.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn next(&mut self, ts_ms: i64) -> String {
        if ts_ms == self.last_ms && self.counter < 0x0fff {
            self.counter += 1;
        } else {
            self.last_ms = ts_ms;
            self.counter = (self.next_u64() & 0x07ff) as u16;
        }
        let mut random = [0u8; 10];
        random[..2].copy_from_slice(&self.counter.to_be_bytes());
        random[2..].copy_from_slice(&self.next_u64().to_le_bytes());
        let millis = u64::try_from(ts_ms).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &random)
            .into_uuid()
            .to_string()
    }
}

fn report(
    counters: &Counters,
    sink: &str,
    action: &str,
    result: std::thread::Result<Result<(), SinkError>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v7_and_sort_in_arrival_order_within_a_millisecond() {
        let mut ids = IdGenerator::new();
        let generated: Vec<String> = (0..100).map(|_| ids.next(1_764_000_000_123)).collect();
        let mut sorted = generated.clone();
        sorted.sort();
        assert_eq!(sorted, generated);
        let later = ids.next(1_764_000_000_124);
        assert!(later > generated[99]);
        let parsed = uuid::Uuid::parse_str(&later).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        let (seconds, nanos) = parsed.get_timestamp().unwrap().to_unix();
        assert_eq!(
            seconds * 1000 + u64::from(nanos) / 1_000_000,
            1_764_000_000_124
        );
    }
}
