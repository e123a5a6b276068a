//! The writer thread: wakes every few milliseconds (or when the queue fills up, or on a flush),
//! drains the queue, sanitizes each call into a [`ToolCallEvent`], hands batches to every sink
//! and then lets each sink write what is due (`Sink::tick`), so quiet periods leave nothing behind.

use std::{panic::AssertUnwindSafe, sync::Arc, sync::atomic::Ordering, time::Duration};

use super::{Control, Counters, Shared, raw::RawCall};
use crate::{Sanitizer, Sink, event::ToolCallEvent};

/// The most events written to the sinks in one batch (one SQLite transaction).
pub(super) const MAX_BATCH: usize = 4096;

pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) sinks: Vec<Box<dyn Sink>>,
    pub(super) sanitizer: Sanitizer,
    pub(super) counters: Arc<Counters>,
    pub(super) ids: IdGenerator,
    /// How long the writer sleeps when nothing wakes it.
    pub(super) interval: Duration,
}

impl Writer {
    pub(super) fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let controls = std::mem::take(&mut *self.shared.lock_controls());
            let closing = self.shared.is_closed();
            while let Some(call) = self.shared.events.pop() {
                batch.push(self.convert(call));
                if batch.len() == MAX_BATCH {
                    self.deliver(&batch);
                    batch.clear();
                }
            }
            self.deliver(&batch);
            batch.clear();
            let stop = closing
                || controls
                    .iter()
                    .any(|control| matches!(control, Control::Shutdown(_)));
            if stop || !controls.is_empty() {
                self.flush();
            } else {
                self.tick();
            }
            if stop {
                self.shared.close();
            }
            for control in controls {
                let (Control::Flush(done) | Control::Shutdown(done)) = control;
                let _ = done.send(());
            }
            if stop {
                return;
            }
            std::thread::park_timeout(self.interval);
        }
    }

    fn convert(&mut self, call: Box<RawCall>) -> ToolCallEvent {
        let id = self.ids.next(call.ts_ms);
        call.into_event(id, &self.sanitizer)
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
        let stats = self.counters.snapshot();
        for sink in &mut self.sinks {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| sink.flush(&stats)));
            report(&self.counters, sink.name(), "flush", result);
        }
    }

    /// Lets every sink write what is due (the store's hourly rollups and counters).
    fn tick(&mut self) {
        let stats = self.counters.snapshot();
        for sink in &mut self.sinks {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| sink.tick(&stats)));
            report(&self.counters, sink.name(), "tick", result);
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
