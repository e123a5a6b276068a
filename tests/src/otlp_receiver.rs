//! An OTLP/HTTP receiver on 127.0.0.1 for the tests: decodes `/v1/traces` and `/v1/metrics`
//! with the official protobuf definitions (`opentelemetry-proto`), gunzips when asked, and can
//! refuse a number of requests (503, then 429) to exercise retries.

use std::{
    io::Read,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use opentelemetry_proto::tonic::{
    collector::{metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest},
    metrics::v1::{AggregationTemporality, HistogramDataPoint, metric::Data},
    resource::v1::Resource,
    trace::v1::Span,
};
use prost::Message;
use tokio::sync::oneshot;

/// What the receiver got, in arrival order.
#[derive(Default)]
pub struct Received {
    /// The trace exports.
    pub traces: Vec<ExportTraceServiceRequest>,
    /// The metric exports.
    pub metrics: Vec<ExportMetricsServiceRequest>,
    /// Every decoded request body as text, to search for secrets.
    pub bodies: Vec<String>,
    /// The headers of every accepted request.
    pub headers: Vec<HeaderMap>,
}

/// The receiver's state, shared with the test.
#[derive(Clone, Default)]
pub struct Inbox {
    /// What arrived.
    pub received: Arc<Mutex<Received>>,
    /// Answer this many requests with 503 (then 429) before accepting.
    pub refuse: Arc<AtomicUsize>,
    /// How many requests were refused so far.
    pub refused: Arc<AtomicUsize>,
}

impl Inbox {
    /// Every span received, with its resource.
    pub fn spans(&self) -> Vec<(Resource, Span)> {
        let received = self.received.lock().unwrap();
        let mut spans = Vec::new();
        for request in &received.traces {
            for resource_spans in &request.resource_spans {
                for scope in &resource_spans.scope_spans {
                    assert_eq!(scope.scope.as_ref().unwrap().name, "mcp-analytics");
                    for span in &scope.spans {
                        spans.push((resource_spans.resource.clone().unwrap(), span.clone()));
                    }
                }
            }
        }
        spans
    }

    /// The data points of the latest `mcp.server.operation.duration` export.
    pub fn latest_points(&self) -> Option<(Resource, Vec<HistogramDataPoint>)> {
        let received = self.received.lock().unwrap();
        let request = received.metrics.last()?;
        let resource_metrics = &request.resource_metrics[0];
        let metric = &resource_metrics.scope_metrics[0].metrics[0];
        assert_eq!(metric.name, "mcp.server.operation.duration");
        assert_eq!(metric.unit, "s");
        let Some(Data::Histogram(histogram)) = &metric.data else {
            panic!("the duration is a histogram: {metric:?}");
        };
        assert_eq!(
            histogram.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        Some((
            resource_metrics.resource.clone().unwrap(),
            histogram.data_points.clone(),
        ))
    }

    /// Waits (20 s at most) until `count` spans have arrived; returns them.
    pub async fn wait_for_spans(&self, count: usize) -> Vec<(Resource, Span)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let spans = self.spans();
            if spans.len() >= count {
                return spans;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {count} spans arrived",
                spans.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn decoded(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    if headers
        .get("content-encoding")
        .is_some_and(|value| value == "gzip")
    {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut plain)
            .unwrap();
        plain
    } else {
        body.to_vec()
    }
}

fn refuse(inbox: &Inbox) -> Option<StatusCode> {
    let refused = inbox.refused.load(Ordering::SeqCst);
    if refused < inbox.refuse.load(Ordering::SeqCst) {
        inbox.refused.fetch_add(1, Ordering::SeqCst);
        return Some(if refused.is_multiple_of(2) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::TOO_MANY_REQUESTS
        });
    }
    None
}

async fn on_traces(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Some(status) = refuse(&inbox) {
        return status;
    }
    assert_eq!(headers["content-type"], "application/x-protobuf");
    let body = decoded(&headers, &body);
    let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("valid OTLP traces");
    let mut received = inbox.received.lock().unwrap();
    received.bodies.push(format!("{request:?}"));
    received.traces.push(request);
    received.headers.push(headers);
    StatusCode::OK
}

async fn on_metrics(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Some(status) = refuse(&inbox) {
        return status;
    }
    let body = decoded(&headers, &body);
    let request = ExportMetricsServiceRequest::decode(body.as_slice()).expect("valid OTLP metrics");
    let mut received = inbox.received.lock().unwrap();
    received.bodies.push(format!("{request:?}"));
    received.metrics.push(request);
    received.headers.push(headers);
    StatusCode::OK
}

/// Serves `inbox` on `listener` until the returned sender fires.
pub fn receive(listener: tokio::net::TcpListener, inbox: Inbox) -> oneshot::Sender<()> {
    let router = Router::new()
        .route("/v1/traces", post(on_traces))
        .route("/v1/metrics", post(on_metrics))
        .with_state(inbox);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    stop
}

/// A receiver on an ephemeral loopback port: its address, its inbox, and the sender that stops it.
pub async fn receiver() -> (SocketAddr, Inbox, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let inbox = Inbox::default();
    let stop = receive(listener, inbox.clone());
    (addr, inbox, stop)
}
