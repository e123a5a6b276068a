//! The sender thread: takes spans from a bounded queue (the writer thread only pushes, dropping
//! and counting what does not fit), posts them in batches and the histogram periodically, and
//! retries 408, 429, 5xx and connection errors with exponential backoff and full jitter,
//! honouring `Retry-After`. A request is given up (its spans dropped and counted) after
//! `max_retry_time`; other 4xx are dropped at once. Partial successes are logged, not retried.

use std::{
    collections::VecDeque,
    io::Write,
    sync::{Arc, Condvar, Mutex, MutexGuard, atomic::Ordering},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::{metrics::v1::ExportMetricsServiceResponse, trace::v1::ExportTraceServiceResponse},
    resource::v1::Resource,
    trace::v1::Span,
};
use prost::Message;

use super::{Counters, OtlpConfig, OtlpEndpoint, count_drop, spans};

/// Produces the current metrics request body, if there is anything to report.
pub(super) type MetricsSource = Box<dyn FnMut() -> Option<Vec<u8>> + Send>;

/// The handle the sink holds; dropping it stops the thread (after the writer's final flush).
pub(super) struct Sender {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    config: OtlpConfig,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct State {
    spans: VecDeque<(Arc<Resource>, Span)>,
    /// Flushes asked for, and the last one carried out.
    flush_requested: u64,
    flush_done: u64,
    stopping: bool,
}

impl Sender {
    pub(super) fn start(
        config: OtlpConfig,
        counters: Arc<Counters>,
        metrics: Option<MetricsSource>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            config,
            counters,
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("mcp-analytics-otlp".into())
            // The blocking client runs its own runtime: build and drop it on this thread only.
            .spawn(move || match reqwest::blocking::Client::builder().build() {
                Ok(client) => Worker {
                    shared: &thread_shared,
                    client,
                    metrics,
                }
                .run(),
                Err(error) => {
                    tracing::error!("mcp-analytics: cannot build the OTLP HTTP client: {error}")
                }
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues spans without blocking on the network; what does not fit is dropped and counted.
    pub(super) fn enqueue(&self, spans: impl ExactSizeIterator<Item = (Arc<Resource>, Span)>) {
        let offered = spans.len();
        let mut state = self.shared.lock();
        let room = self
            .shared
            .config
            .max_queue_size
            .saturating_sub(state.spans.len());
        state.spans.extend(spans.take(room));
        drop(state);
        self.shared.changed.notify_all();
        if offered > room {
            count_drop(
                &self.shared.counters,
                (offered - room) as u64,
                "the span queue is full",
            );
        }
    }

    /// Sends everything queued and the histogram; waits up to `flush_timeout`. `false` if the
    /// time ran out (the rest is still being sent).
    pub(super) fn flush(&self) -> bool {
        let deadline = Instant::now() + self.shared.config.flush_timeout;
        let mut state = self.shared.lock();
        state.flush_requested += 1;
        let ticket = state.flush_requested;
        self.shared.changed.notify_all();
        while state.flush_done < ticket && !state.stopping {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        true
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sleeps `delay` unless the exporter stops first (then `false`).
    fn sleep(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        let mut state = self.lock();
        loop {
            if state.stopping {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// What the thread does next.
enum Work {
    Spans(Vec<(Arc<Resource>, Span)>),
    Metrics,
    /// The queue is empty: export metrics, then mark flush `ticket` done.
    Flush(u64),
    Stop,
}

#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Metrics,
}

struct Worker<'a> {
    shared: &'a Shared,
    client: reqwest::blocking::Client,
    metrics: Option<MetricsSource>,
}

impl Worker<'_> {
    fn run(mut self) {
        let config = &self.shared.config;
        let mut next_metrics = Instant::now() + config.metric_interval;
        let mut next_spans = Instant::now() + config.schedule_delay;
        loop {
            match self.next_work(next_spans, next_metrics) {
                Work::Stop => {
                    let left = std::mem::take(&mut self.shared.lock().spans);
                    if !left.is_empty() {
                        count_drop(&self.shared.counters, left.len() as u64, "shutting down");
                    }
                    return;
                }
                Work::Spans(batch) => {
                    next_spans = Instant::now() + config.schedule_delay;
                    self.send_spans(batch);
                }
                Work::Metrics => {
                    next_metrics = Instant::now() + config.metric_interval;
                    self.send_metrics();
                }
                Work::Flush(ticket) => {
                    next_metrics = Instant::now() + config.metric_interval;
                    self.send_metrics();
                    let mut state = self.shared.lock();
                    state.flush_done = state.flush_done.max(ticket);
                    drop(state);
                    self.shared.changed.notify_all();
                }
            }
        }
    }

    fn next_work(&self, next_spans: Instant, next_metrics: Instant) -> Work {
        let batch_size = self.shared.config.max_export_batch_size.max(1);
        let mut state = self.shared.lock();
        loop {
            if state.stopping {
                return Work::Stop;
            }
            let flushing = state.flush_requested > state.flush_done;
            let now = Instant::now();
            let queued = state.spans.len();
            if queued > 0 && (queued >= batch_size || flushing || now >= next_spans) {
                let take = queued.min(batch_size);
                return Work::Spans(state.spans.drain(..take).collect());
            }
            if flushing {
                return Work::Flush(state.flush_requested);
            }
            if now >= next_metrics {
                return Work::Metrics;
            }
            let wake = if queued > 0 {
                next_spans.min(next_metrics)
            } else {
                next_metrics
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, wake - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    fn send_spans(&self, batch: Vec<(Arc<Resource>, Span)>) {
        let count = batch.len() as u64;
        let counters = &self.shared.counters;
        let Some(endpoint) = &self.shared.config.traces else {
            return;
        };
        let body = spans::request(batch).encode_to_vec();
        if self.deliver(endpoint, body, Signal::Traces) {
            counters.spans_exported.fetch_add(count, Ordering::Relaxed);
        } else {
            count_drop(counters, count, "the OTLP endpoint did not take them");
        }
    }

    fn send_metrics(&mut self) {
        let (Some(endpoint), Some(source)) = (&self.shared.config.metrics, &mut self.metrics)
        else {
            return;
        };
        let Some(body) = source() else {
            return;
        };
        if self.deliver(endpoint, body, Signal::Metrics) {
            self.shared
                .counters
                .metric_exports
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Posts `body`, retrying as described in the module docs. `true` once accepted.
    fn deliver(&self, endpoint: &OtlpEndpoint, body: Vec<u8>, signal: Signal) -> bool {
        let config = &self.shared.config;
        let body = if endpoint.gzip {
            match gzip(&body) {
                Ok(compressed) => compressed,
                Err(error) => {
                    tracing::error!("mcp-analytics: cannot gzip an OTLP request: {error}");
                    return false;
                }
            }
        } else {
            body
        };
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            let retry_after = match self.attempt(endpoint, &body, signal) {
                Attempt::Delivered => return true,
                Attempt::Refused(reason) => {
                    tracing::error!(
                        "mcp-analytics: {} refused an OTLP request, dropping it: {reason}",
                        endpoint.url
                    );
                    return false;
                }
                Attempt::Retry(after) => after,
            };
            self.shared
                .counters
                .failed_requests
                .fetch_add(1, Ordering::Relaxed);
            let elapsed = started.elapsed();
            if elapsed >= config.max_retry_time {
                tracing::warn!(
                    "mcp-analytics: {} did not take an OTLP request within {:?}, dropping it",
                    endpoint.url,
                    config.max_retry_time
                );
                return false;
            }
            let delay = retry_after
                .unwrap_or_else(|| {
                    crate::retry::backoff(config.min_backoff, config.max_backoff, attempts)
                })
                .min(config.max_retry_time - elapsed);
            attempts = attempts.saturating_add(1);
            if !self.shared.sleep(delay) {
                return false;
            }
        }
    }

    fn attempt(&self, endpoint: &OtlpEndpoint, body: &[u8], signal: Signal) -> Attempt {
        let mut request = self
            .client
            .post(&endpoint.url)
            .timeout(endpoint.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .header(
                reqwest::header::USER_AGENT,
                concat!("mcp-analytics/", env!("CARGO_PKG_VERSION")),
            )
            .body(body.to_vec());
        if endpoint.gzip {
            request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        for (name, value) in &endpoint.headers {
            request = request.header(name, value);
        }
        let response = match request.send() {
            Ok(response) => response,
            Err(error) if error.is_builder() => return Attempt::Refused(error.to_string()),
            Err(error) => {
                tracing::debug!("mcp-analytics: OTLP export failed, will retry: {error}");
                return Attempt::Retry(None);
            }
        };
        let status = response.status().as_u16();
        let retry_after = crate::retry::retry_after(&response);
        match status {
            200..=299 => {
                if let Ok(body) = response.bytes() {
                    log_partial_success(&endpoint.url, signal, &body);
                }
                Attempt::Delivered
            }
            408 | 429 | 500..=599 => Attempt::Retry(retry_after),
            _ => {
                let text = response.text().unwrap_or_default();
                let excerpt: String = text.chars().take(200).collect();
                Attempt::Refused(format!("HTTP {status}: {excerpt}"))
            }
        }
    }
}

enum Attempt {
    Delivered,
    Retry(Option<Duration>),
    Refused(String),
}

/// OTLP answers 200 with `partial_success` when it rejected part of a request: logged only.
fn log_partial_success(url: &str, signal: Signal, body: &[u8]) {
    let (rejected, message) = match signal {
        Signal::Traces => ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|response| response.partial_success)
            .map(|partial| (partial.rejected_spans, partial.error_message)),
        Signal::Metrics => ExportMetricsServiceResponse::decode(body)
            .ok()
            .and_then(|response| response.partial_success)
            .map(|partial| (partial.rejected_data_points, partial.error_message)),
    }
    .unwrap_or_default();
    if rejected > 0 || !message.is_empty() {
        tracing::warn!("mcp-analytics: {url} rejected {rejected} items: {message}");
    }
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}
