//! OpenTelemetry export: real MCP clients call the demo server; an OTLP/HTTP receiver on
//! 127.0.0.1 (`otlp_receiver`) decodes what arrives with the official protobuf definitions
//! (`opentelemetry-proto`) and the tests check it against the MCP semantic conventions.

use std::{sync::atomic::Ordering, time::Duration};

use mcp_analytics::{
    Analytics, Config, MemorySink, ToolCallEvent,
    export::{OtlpConfig, OtlpExporter, OtlpHandle},
};
use mcp_analytics_tests::{
    client::{call, call_traced, client_info, connect_demo},
    otlp_receiver::{Inbox, receive, receiver},
    secrets::{assert_no_secrets, secret_arguments},
    server::{TestServer, bearer_identity},
};
use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, KeyValue, any_value::Value},
    resource::v1::Resource,
    trace::v1::{Span, span::SpanKind, status::StatusCode as SpanStatus},
};
use rmcp::{
    ServiceExt,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::json;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";
const BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

// ---------------------------------------------------------------------------------------------
// Helpers.

fn fast(config: OtlpConfig) -> OtlpConfig {
    OtlpConfig {
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        schedule_delay: Duration::from_millis(50),
        flush_timeout: Duration::from_secs(5),
        ..config
    }
}

/// Analytics exporting over OTLP (and recording into `sink`, to compare with what arrived).
fn otlp_analytics(config: OtlpConfig, sink: &MemorySink) -> (Analytics, OtlpHandle) {
    let exporter = OtlpExporter::new(config).expect("the exporter starts");
    let handle = exporter.handle();
    let analytics = Analytics::builder()
        .sink(sink.clone())
        .sink(exporter)
        .build()
        .unwrap();
    (analytics, handle)
}

fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    let attribute = attributes.iter().find(|attribute| attribute.key == key)?;
    match attribute.value.as_ref()?.value.as_ref()? {
        Value::StringValue(text) => Some(text),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn keys(attributes: &[KeyValue]) -> Vec<&str> {
    attributes
        .iter()
        .map(|attribute| attribute.key.as_str())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The span of the stored event `event` (joined on `mcp_analytics.event.id`).
fn span_of<'a>(spans: &'a [(Resource, Span)], event: &ToolCallEvent) -> &'a (Resource, Span) {
    spans
        .iter()
        .find(|(_, span)| text(&span.attributes, "mcp_analytics.event.id") == Some(&event.id))
        .unwrap_or_else(|| panic!("no span for {event:#?}"))
}

fn kv_list(value: &AnyValue) -> &[KeyValue] {
    match value.value.as_ref() {
        Some(Value::KvlistValue(list)) => &list.values,
        other => panic!("expected an object, got {other:?}"),
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> &'a AnyValue {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .unwrap_or_else(|| panic!("no {key} in {attributes:?}"))
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_calls_become_conventional_spans_and_a_duration_histogram() {
    let (addr, inbox, _stop_receiver) = receiver().await;
    let mut config = fast(OtlpConfig::new(&format!("http://{addr}")));
    for endpoint in [&mut config.traces, &mut config.metrics] {
        let endpoint = endpoint.as_mut().unwrap();
        endpoint.headers = vec![("x-api-key".into(), "otlp-key".into())];
    }
    let sink = MemorySink::new();
    let (analytics, handle) = otlp_analytics(config, &sink);
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .identity(bearer_identity)
        .start()
        .await;
    let alice = server.client(Some("alice")).await;

    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");
    call_traced(
        &alice,
        "add",
        json!({"a": 1, "b": 2}),
        &traceparent,
        Some("vendor=abc"),
    )
    .await
    .unwrap();
    call_traced(
        &alice,
        "add",
        json!({"a": 3, "b": 4}),
        "00-garbage-01",
        None,
    )
    .await
    .unwrap();
    let unsampled = format!("00-{TRACE_ID}-{PARENT_SPAN}-00");
    call_traced(&alice, "add", json!({"a": 5, "b": 6}), &unsampled, None)
        .await
        .unwrap();
    call(&alice, "divide", json!({"a": 1, "b": 0}))
        .await
        .unwrap();
    call(&alice, "fail_protocol", json!({})).await.unwrap_err();
    call(&alice, "no_such_tool", json!({})).await.unwrap_err();
    alice.list_all_tools().await.unwrap();
    analytics.flush().await;

    let events = sink.events();
    assert_eq!(events.len(), 6);
    let spans = inbox.wait_for_spans(7).await;
    let (spans, request_spans): (Vec<_>, Vec<_>) = spans
        .into_iter()
        .partition(|(_, span)| span.name.starts_with("tools/call "));
    assert_eq!(spans.len(), 5, "the unsampled call has no span");
    let stats = handle.stats();
    assert_eq!(
        (
            stats.spans_exported,
            stats.spans_dropped,
            stats.spans_not_sampled
        ),
        (7, 0, 1)
    );

    // The other requests: a span each, named by the method.
    let names: Vec<&str> = request_spans
        .iter()
        .map(|(_, span)| span.name.as_str())
        .collect();
    assert_eq!(names, ["initialize", "tools/list"]);
    for ((_, span), request) in request_spans.iter().zip(sink.requests()) {
        let attributes = &span.attributes;
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(
            text(attributes, "mcp.method.name"),
            Some(request.method.as_str())
        );
        assert_eq!(
            text(attributes, "mcp_analytics.event.id"),
            Some(request.id.as_str())
        );
        assert_eq!(text(attributes, "mcp.protocol.version"), Some("2025-11-25"));
        assert_eq!(text(attributes, "mcp_analytics.request.status"), Some("ok"));
        assert_eq!(
            text(attributes, "mcp.session.id"),
            events[0].session_id.as_deref(),
            "in the session of the calls"
        );
        assert_eq!(text(attributes, "user.id"), Some("alice"));
        assert!(span.status.is_none() && text(attributes, "error.type").is_none());
    }

    // Every span: a SERVER span with the conventional name and attributes.
    for (resource, span) in &spans {
        let event = events
            .iter()
            .find(|event| {
                Some(event.id.as_str()) == text(&span.attributes, "mcp_analytics.event.id")
            })
            .unwrap();
        assert_eq!(span.name, format!("tools/call {}", event.tool));
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(span.start_time_unix_nano, event.ts_ns.unwrap());
        assert_eq!(
            span.end_time_unix_nano - span.start_time_unix_nano,
            event.duration_us * 1000
        );
        assert_eq!(span.start_time_unix_nano / 1_000_000, event.ts_ms as u64);
        let attributes = &span.attributes;
        assert_eq!(text(attributes, "mcp.method.name"), Some("tools/call"));
        assert_eq!(
            text(attributes, "gen_ai.tool.name"),
            Some(event.tool.as_str())
        );
        assert_eq!(
            text(attributes, "gen_ai.operation.name"),
            Some("execute_tool")
        );
        assert_eq!(
            text(attributes, "jsonrpc.request.id"),
            event.request_id.as_deref()
        );
        let session = text(attributes, "mcp.session.id").expect("a session id");
        assert_eq!(Some(session), event.session_id.as_deref());
        assert!(text(attributes, "mcp.protocol.version").is_some_and(|v| v.starts_with("20")));
        assert_eq!(text(attributes, "network.transport"), Some("tcp"));
        assert_eq!(text(attributes, "network.protocol.name"), Some("http"));
        assert_eq!(text(attributes, "user.id"), Some("alice"));
        assert_eq!(
            text(attributes, "mcp_analytics.client.name"),
            Some("test-client")
        );
        assert_eq!(
            text(attributes, "mcp_analytics.client.version"),
            Some("1.2.3")
        );
        assert_eq!(
            text(attributes, "mcp_analytics.call.status"),
            Some(event.status.as_str())
        );
        assert!(
            !keys(attributes)
                .iter()
                .any(|key| key.starts_with("gen_ai.tool.call."))
        );
        // Status ERROR exactly when error.type is set.
        let error_type = text(attributes, "error.type");
        let status = span.status.clone().unwrap_or_default();
        assert_eq!(
            status.code == SpanStatus::Error as i32,
            error_type.is_some(),
            "{span:#?}"
        );
        assert_eq!(text(&resource.attributes, "service.name"), Some("demo"));
        assert_eq!(text(&resource.attributes, "service.version"), Some("0.0.1"));
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
    }
    let only_span = |tool: &str| {
        let matching: Vec<&(Resource, Span)> = spans
            .iter()
            .filter(|(_, span)| span.name == format!("tools/call {tool}"))
            .collect();
        assert_eq!(matching.len(), 1, "{tool}");
        matching[0].1.clone()
    };

    // The client's trace continues into the server; an invalid traceparent starts a new trace.
    let adds: Vec<&ToolCallEvent> = events.iter().filter(|e| e.tool == "add").collect();
    let (_, traced) = span_of(&spans, adds[0]);
    assert_eq!(hex(&traced.trace_id), TRACE_ID);
    assert_eq!(hex(&traced.parent_span_id), PARENT_SPAN);
    assert_ne!(hex(&traced.span_id), PARENT_SPAN);
    assert_eq!(traced.trace_state, "vendor=abc");
    assert_eq!(traced.flags & 0x3ff, 0x301, "sampled, parent is remote");
    let (_, root) = span_of(&spans, adds[1]);
    assert!(root.parent_span_id.is_empty());
    assert_ne!(hex(&root.trace_id), TRACE_ID);
    assert_ne!(root.trace_id, vec![0; 16]);
    assert!(spans.iter().all(|(_, span)| span.status.is_none()
        || text(&span.attributes, "mcp_analytics.call.status") != Some("ok")));

    // Errors.
    let divide = only_span("divide");
    assert_eq!(text(&divide.attributes, "error.type"), Some("tool_error"));
    assert_eq!(text(&divide.attributes, "rpc.response.status_code"), None);
    assert_eq!(divide.status.unwrap().code, SpanStatus::Error as i32);
    let protocol = only_span("fail_protocol");
    assert_eq!(text(&protocol.attributes, "error.type"), Some("-32603"));
    assert_eq!(
        text(&protocol.attributes, "rpc.response.status_code"),
        Some("-32603")
    );
    assert_eq!(protocol.status.unwrap().message, "database down");
    let unknown = only_span("no_such_tool");
    assert_eq!(text(&unknown.attributes, "error.type"), Some("-32602"));
    assert_eq!(
        text(&unknown.attributes, "mcp_analytics.call.status"),
        Some("unknown_tool")
    );
    let add = only_span_of_status(&spans, "add", "ok");
    assert_eq!(add.len(), 2);
    assert!(add.iter().all(|span| span.status.is_none()));

    // The histogram, exported on flush: every call (sampled or not), no ids.
    let (resource, points) = inbox
        .latest_points()
        .expect("metrics were exported on flush");
    assert_eq!(text(&resource.attributes, "service.name"), Some("demo"));
    assert_eq!(
        points.iter().map(|point| point.count).sum::<u64>(),
        8,
        "six calls, initialize and tools/list"
    );
    for point in &points {
        assert_eq!(point.explicit_bounds, BOUNDS);
        assert_eq!(point.bucket_counts.len(), 15);
        assert_eq!(point.bucket_counts.iter().sum::<u64>(), point.count);
        assert!(
            point.start_time_unix_nano > 0 && point.time_unix_nano >= point.start_time_unix_nano
        );
        let keys = keys(&point.attributes);
        for forbidden in [
            "mcp.session.id",
            "jsonrpc.request.id",
            "user.id",
            "mcp_analytics.event.id",
        ] {
            assert!(!keys.contains(&forbidden), "{forbidden} on a metric");
        }
        let method = text(&point.attributes, "mcp.method.name");
        assert_eq!(
            method == Some("tools/call"),
            text(&point.attributes, "gen_ai.tool.name").is_some(),
            "{point:?}"
        );
        assert_eq!(text(&point.attributes, "network.transport"), Some("tcp"));
    }
    let listed = points
        .iter()
        .find(|point| text(&point.attributes, "mcp.method.name") == Some("tools/list"))
        .expect("a tools/list point");
    assert_eq!(listed.count, 1);
    let add_point = points
        .iter()
        .find(|point| {
            text(&point.attributes, "gen_ai.tool.name") == Some("add")
                && text(&point.attributes, "error.type").is_none()
        })
        .unwrap();
    assert_eq!(add_point.count, 3);
    assert_eq!(
        add_point.bucket_counts[0], 3,
        "fast calls land in the first bucket"
    );
    let protocol_point = points
        .iter()
        .find(|point| text(&point.attributes, "gen_ai.tool.name") == Some("fail_protocol"))
        .unwrap();
    assert_eq!(
        text(&protocol_point.attributes, "error.type"),
        Some("-32603")
    );
    assert_eq!(
        text(&protocol_point.attributes, "rpc.response.status_code"),
        Some("-32603")
    );

    // Configured headers on every request.
    analytics.shutdown().await;
    let received = inbox.received.lock().unwrap();
    assert!(
        received
            .headers
            .iter()
            .all(|headers| headers["x-api-key"] == "otlp-key")
    );
}

fn only_span_of_status(spans: &[(Resource, Span)], tool: &str, status: &str) -> Vec<Span> {
    spans
        .iter()
        .filter(|(_, span)| {
            span.name == format!("tools/call {tool}")
                && text(&span.attributes, "mcp_analytics.call.status") == Some(status)
        })
        .map(|(_, span)| span.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_is_opt_in_and_always_redacted() {
    let (addr, inbox, _stop) = receiver().await;
    let config = OtlpConfig {
        capture_content: true,
        ..fast(OtlpConfig::new(&format!("http://{addr}")))
    };
    let sink = MemorySink::new();
    let (analytics, _) = otlp_analytics(config, &sink);
    let client = connect_demo(analytics.clone()).await;
    call(&client, "connect_service", secret_arguments())
        .await
        .unwrap();
    call(
        &client,
        "process_document",
        json!({"document": "top-secret-document-body"}),
    )
    .await
    .unwrap();
    analytics.flush().await;
    let spans = inbox.wait_for_spans(2).await;

    let connect = &spans
        .iter()
        .find(|(_, span)| span.name == "tools/call connect_service")
        .unwrap()
        .1;
    let arguments = kv_list(attribute(&connect.attributes, "gen_ai.tool.call.arguments"));
    assert_eq!(text(arguments, "service"), Some("warehouse"));
    // `credentials` is itself a sensitive key name: the whole object goes.
    assert_eq!(text(arguments, "credentials"), Some("[REDACTED]"));
    let result = kv_list(attribute(&connect.attributes, "gen_ai.tool.call.result"));
    assert!(format!("{result:?}").contains("connected to warehouse"));
    let document = &spans
        .iter()
        .find(|(_, span)| span.name == "tools/call process_document")
        .unwrap()
        .1;
    let arguments = kv_list(attribute(
        &document.attributes,
        "gen_ai.tool.call.arguments",
    ));
    assert_eq!(text(arguments, "document"), Some("[REDACTED]"));
    assert!(
        !keys(&document.attributes).contains(&"gen_ai.tool.call.result"),
        "track_results = false: no result anywhere"
    );
    // Over a byte stream (the stdio transport): a pipe.
    assert_eq!(text(&connect.attributes, "network.transport"), Some("pipe"));
    assert_eq!(text(&connect.attributes, "network.protocol.name"), None);

    // No secret in anything the receiver got.
    analytics.shutdown().await;
    let received = inbox.received.lock().unwrap();
    assert!(!received.bodies.is_empty());
    for body in &received.bodies {
        assert_no_secrets(body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_while_the_receiver_is_down_or_refusing() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = OtlpConfig {
        flush_timeout: Duration::from_millis(300),
        ..fast(OtlpConfig::new(&format!("http://{addr}")))
    };
    config.traces.as_mut().unwrap().gzip = true;
    let sink = MemorySink::new();
    let (analytics, handle) = otlp_analytics(config, &sink);
    let client = connect_demo(analytics.clone()).await;
    for index in 0..20 {
        call(&client, "add", json!({"a": index, "b": 1}))
            .await
            .unwrap();
    }
    analytics.flush().await; // The receiver is down: the flush gives up after 300 ms.
    assert_eq!(handle.stats().spans_exported, 0);
    assert!(handle.stats().failed_requests > 0, "{:?}", handle.stats());

    // Up again, but it first answers 503 and 429.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let inbox = Inbox::default();
    inbox.refuse.store(2, Ordering::SeqCst);
    let _stop = receive(listener, inbox.clone());
    for index in 20..30 {
        call(&client, "add", json!({"a": index, "b": 1}))
            .await
            .unwrap();
    }
    analytics.flush().await;
    // Thirty calls and the connection's `initialize`.
    let spans = inbox.wait_for_spans(31).await;
    let mut ids: Vec<Vec<u8>> = spans.iter().map(|(_, span)| span.span_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 31, "every request exactly once");
    assert_eq!(inbox.refused.load(Ordering::SeqCst), 2);
    let stats = handle.stats();
    assert_eq!(
        (stats.spans_exported, stats.spans_dropped),
        (31, 0),
        "{stats:?}"
    );
    analytics.shutdown().await;
    let (_, points) = inbox.latest_points().expect("metrics after recovery");
    assert_eq!(points.iter().map(|point| point.count).sum::<u64>(), 31);
    assert_eq!((sink.events().len(), sink.requests().len()), (30, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_environment_turns_export_on() {
    let (addr, inbox, _stop) = receiver().await;
    let endpoint = format!("http://{addr}");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("otlp.db").display().to_string();
    let env = |extra: &[(&str, &str)]| {
        let mut vars: Vec<(String, String)> = vec![
            ("MCP_ANALYTICS_DB".into(), db.clone()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone()),
            ("OTEL_SERVICE_NAME".into(), "weather-mcp".into()),
            (
                "OTEL_RESOURCE_ATTRIBUTES".into(),
                "deployment.environment.name=test".into(),
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL".into(), "100".into()),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "50".into()),
            (
                "OTEL_EXPORTER_OTLP_HEADERS".into(),
                "authorization=Bearer%20k".into(),
            ),
        ];
        vars.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
        .unwrap()
    };

    let disabled = Analytics::builder()
        .config(env(&[("OTEL_SDK_DISABLED", "true")]))
        .build()
        .unwrap();
    assert!(
        !disabled.description().contains("OTLP"),
        "{}",
        disabled.description()
    );

    let analytics = Analytics::builder().config(env(&[])).build().unwrap();
    assert!(
        analytics
            .description()
            .contains(&format!("OTLP {endpoint}/v1/traces")),
        "{}",
        analytics.description()
    );
    let client = connect_demo(analytics.clone()).await;
    call(&client, "add", json!({"a": 1, "b": 1})).await.unwrap();
    let spans = inbox.wait_for_spans(1).await;
    let (resource, span) = &spans[0];
    assert_eq!(
        text(&resource.attributes, "service.name"),
        Some("weather-mcp")
    );
    assert_eq!(
        text(&resource.attributes, "deployment.environment.name"),
        Some("test")
    );
    assert_eq!(text(&span.attributes, "network.transport"), Some("pipe"));

    // The histogram is exported periodically, without any flush.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while inbox.latest_points().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no periodic metrics export"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    analytics.shutdown().await;
    let received = inbox.received.lock().unwrap();
    assert!(
        received
            .headers
            .iter()
            .all(|headers| headers["authorization"] == "Bearer k")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_traceparent_header_is_the_parent_when_meta_has_none() {
    let (addr, inbox, _stop) = receiver().await;
    let sink = MemorySink::new();
    let (analytics, _) = otlp_analytics(fast(OtlpConfig::new(&format!("http://{addr}"))), &sink);
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .identity(bearer_identity)
        .start()
        .await;
    let header_trace = "0af7651916cd43dd8448eb211c80319c";
    let header_span = "b7ad6b7169203331";
    let mut config = StreamableHttpClientTransportConfig::with_uri(server.mcp_url());
    config.custom_headers.insert(
        http::HeaderName::from_static("traceparent"),
        http::HeaderValue::from_str(&format!("00-{header_trace}-{header_span}-01")).unwrap(),
    );
    let client = client_info()
        .serve(StreamableHttpClientTransport::<reqwest::Client>::from_config(config))
        .await
        .unwrap();
    call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    let from_meta = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");
    call_traced(&client, "whoami", json!({}), &from_meta, None)
        .await
        .unwrap();
    analytics.shutdown().await;
    let spans = inbox.wait_for_spans(2).await;
    let parent = |tool: &str| {
        let (_, span) = spans
            .iter()
            .find(|(_, span)| span.name == format!("tools/call {tool}"))
            .unwrap();
        (hex(&span.trace_id), hex(&span.parent_span_id))
    };
    assert_eq!(
        parent("add"),
        (header_trace.to_owned(), header_span.to_owned())
    );
    assert_eq!(
        parent("whoami"),
        (TRACE_ID.to_owned(), PARENT_SPAN.to_owned()),
        "params._meta wins over the header"
    );
}
