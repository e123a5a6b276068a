//! [`OtlpExporter`]: every request to any OpenTelemetry backend over OTLP/HTTP (protobuf),
//! following the OpenTelemetry MCP semantic conventions.
//!
//! - one SERVER span per request, named `tools/call {tool}`, `prompts/get {prompt}` or by its
//!   method (`initialize`, `resources/read`, …), a child of the client's span when the
//!   request's `params._meta` carried a W3C `traceparent` (`spans.rs`);
//! - the `mcp.server.operation.duration` histogram, cumulative, exported every
//!   `OTEL_METRIC_EXPORT_INTERVAL` and on every flush (`metrics.rs`).
//!
//! The exporter is a [`Sink`]: it runs on the recorder's writer thread, turns events into spans
//! there and hands them to a bounded queue; its own thread sends them (`sender.rs`). Nothing here
//! is on a tool call's path, and nothing waits for the network except flush and shutdown.

mod config;
mod metrics;
mod resource;
mod semconv;
mod sender;
mod spans;
mod trace_context;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

pub use config::{OtlpConfig, OtlpEndpoint};
use prost::Message;

use crate::{Error, RequestEvent, Sink, SinkError, Stats, ToolCallEvent};

/// Exports spans and the duration histogram over OTLP/HTTP. Add it with
/// `Analytics::builder().otlp(config)`, or set `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub struct OtlpExporter {
    name: String,
    spans: Option<spans::SpanEncoder>,
    resources: resource::Resources,
    durations: Option<Arc<Mutex<metrics::DurationHistogram>>>,
    sender: sender::Sender,
    counters: Arc<Counters>,
}

/// Counters of an [`OtlpExporter`] since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtlpStats {
    /// Spans the endpoint accepted.
    pub spans_exported: u64,
    /// Spans dropped: queue full, refused by the endpoint, retries exhausted, or left at shutdown.
    pub spans_dropped: u64,
    /// Spans not recorded because the client's `traceparent` was not sampled.
    pub spans_not_sampled: u64,
    /// Histogram exports the endpoint accepted.
    pub metric_exports: u64,
    /// Failed requests that were retried (including ones given up later).
    pub failed_requests: u64,
}

/// A cheap handle on an exporter's counters, usable after it moved into the recorder.
#[derive(Clone)]
pub struct OtlpHandle {
    counters: Arc<Counters>,
}

impl OtlpHandle {
    /// The exporter's counters now.
    pub fn stats(&self) -> OtlpStats {
        self.counters.snapshot()
    }
}

#[derive(Default)]
struct Counters {
    spans_exported: AtomicU64,
    spans_dropped: AtomicU64,
    spans_not_sampled: AtomicU64,
    metric_exports: AtomicU64,
    failed_requests: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> OtlpStats {
        OtlpStats {
            spans_exported: self.spans_exported.load(Ordering::Relaxed),
            spans_dropped: self.spans_dropped.load(Ordering::Relaxed),
            spans_not_sampled: self.spans_not_sampled.load(Ordering::Relaxed),
            metric_exports: self.metric_exports.load(Ordering::Relaxed),
            failed_requests: self.failed_requests.load(Ordering::Relaxed),
        }
    }
}

/// Counts dropped spans; logs at 1, 2, 4, 8, … drops.
fn count_drop(counters: &Counters, spans: u64, why: &str) {
    let before = counters.spans_dropped.fetch_add(spans, Ordering::Relaxed);
    let after = before + spans;
    if (before + 1..=after).any(u64::is_power_of_two) {
        tracing::warn!("mcp-analytics: dropped {spans} OTLP spans ({after} so far): {why}");
    }
}

impl OtlpExporter {
    /// Starts the exporter's sender thread. Fails on header names or values HTTP cannot carry.
    pub fn new(config: OtlpConfig) -> Result<Self, Error> {
        for endpoint in config.traces.iter().chain(&config.metrics) {
            for (name, value) in &endpoint.headers {
                let valid = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                    && reqwest::header::HeaderValue::from_str(value).is_ok();
                if !valid {
                    return Err(Error::InvalidConfig {
                        var: "OTEL_EXPORTER_OTLP_HEADERS",
                        value: format!("{name}=<hidden>"),
                        expected: "valid HTTP header names and values".into(),
                    });
                }
            }
        }
        let name = match config.traces.as_ref().or(config.metrics.as_ref()) {
            Some(endpoint) => format!("OTLP {}", endpoint.url),
            None => "OTLP (no signal enabled)".to_owned(),
        };
        let new_resources = || {
            resource::Resources::new(
                config.service_name.clone(),
                config.resource_attributes.clone(),
            )
        };
        let counters = Arc::new(Counters::default());
        let durations = config
            .metrics
            .is_some()
            .then(|| Arc::new(Mutex::new(metrics::DurationHistogram::new(now_ns()))));
        let source = durations.clone().map(|durations| {
            let resources = new_resources();
            Box::new(move || {
                let histogram = durations
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                histogram
                    .request(&resources, now_ns())
                    .map(|request| request.encode_to_vec())
            }) as sender::MetricsSource
        });
        let spans = config
            .traces
            .is_some()
            .then(|| spans::SpanEncoder::new(config.capture_content));
        let resources = new_resources();
        let sender =
            sender::Sender::start(config, counters.clone(), source).map_err(Error::Writer)?;
        Ok(Self {
            name,
            spans,
            resources,
            durations,
            sender,
            counters,
        })
    }

    /// The exporter's counters now.
    pub fn stats(&self) -> OtlpStats {
        self.counters.snapshot()
    }

    /// A handle on the counters that stays valid after the exporter moved into the recorder.
    pub fn handle(&self) -> OtlpHandle {
        OtlpHandle {
            counters: self.counters.clone(),
        }
    }
}

impl Sink for OtlpExporter {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&mut self, events: &[ToolCallEvent]) -> Result<(), SinkError> {
        if let Some(durations) = &self.durations {
            let mut histogram = durations
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for event in events {
                histogram.record(event);
            }
        }
        let Some(encoder) = &mut self.spans else {
            return Ok(());
        };
        let mut batch = Vec::with_capacity(events.len());
        for event in events {
            match encoder.span(event) {
                Some(span) => {
                    let resource = self
                        .resources
                        .get(&event.server_name, &event.server_version);
                    batch.push((resource, span));
                }
                None => {
                    self.counters
                        .spans_not_sampled
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.sender.enqueue(batch.into_iter());
        Ok(())
    }

    fn write_requests(&mut self, requests: &[RequestEvent]) -> Result<(), SinkError> {
        if let Some(durations) = &self.durations {
            let mut histogram = durations
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for request in requests {
                histogram.record_request(request);
            }
        }
        let Some(encoder) = &mut self.spans else {
            return Ok(());
        };
        let mut batch = Vec::with_capacity(requests.len());
        for request in requests {
            match encoder.request_span(request) {
                Some(span) => {
                    let resource = self
                        .resources
                        .get(&request.server_name, &request.server_version);
                    batch.push((resource, span));
                }
                None => {
                    self.counters
                        .spans_not_sampled
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.sender.enqueue(batch.into_iter());
        Ok(())
    }

    /// Sends what is queued and the histogram, waiting up to `flush_timeout` (an unreachable
    /// endpoint is not an error here: the sender keeps retrying).
    fn flush(&mut self, _stats: &Stats) -> Result<(), SinkError> {
        if !self.sender.flush() {
            tracing::debug!(
                "mcp-analytics: OTLP flush timed out; still retrying in the background"
            );
        }
        Ok(())
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
        })
}
