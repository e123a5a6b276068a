//! Behaviour through a real rmcp client over an in-process duplex stream: both the legacy
//! `initialize` handshake and the MCP 2026-07-28 lifecycle.

use std::time::Duration;

use mcp_analytics::{Analytics, MemorySink, Status, Transport};
use mcp_analytics_tests::{
    Demo,
    client::{call, client_info, connect_demo, start_slow_call},
    records::{analytics, only, stored_rows},
    secrets::{assert_no_secrets, secret_arguments},
};
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt, model::ProtocolVersion};
use serde_json::json;

#[tokio::test]
async fn every_status_produces_the_right_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let sink = MemorySink::new();
    let analytics = analytics(&sink, &db);
    let client = connect_demo(analytics.clone()).await;

    let sum = call(&client, "add", json!({"a": 2, "b": 3})).await.unwrap();
    assert_eq!(sum.structured_content, Some(json!({"sum": 5})));
    let divided = call(&client, "divide", json!({"a": 1, "b": 0}))
        .await
        .unwrap();
    assert_eq!(divided.is_error, Some(true));
    let invalid = call(&client, "add", json!({"a": "two"})).await.unwrap();
    assert_eq!(invalid.is_error, Some(true));
    let unknown = call(&client, "no_such_tool", json!({})).await.unwrap_err();
    assert!(unknown.to_string().contains("tool not found"), "{unknown}");
    let protocol = call(&client, "fail_protocol", json!({})).await.unwrap_err();
    assert!(protocol.to_string().contains("database down"), "{protocol}");
    let panicked = call(&client, "explode", json!({})).await.unwrap();
    assert_eq!(panicked.is_error, Some(true));
    // The server keeps serving after a panic.
    let after = call(&client, "add", json!({"a": 1, "b": 1})).await.unwrap();
    assert_eq!(after.structured_content, Some(json!({"sum": 2})));

    analytics.flush().await;
    let events = sink.events();
    let status_of = |tool: &str| only(&events, tool).status;
    assert_eq!(status_of("divide"), Status::ToolError);
    assert_eq!(status_of("no_such_tool"), Status::UnknownTool);
    assert_eq!(status_of("fail_protocol"), Status::ProtocolError);
    assert_eq!(status_of("explode"), Status::Panic);
    let adds: Vec<_> = events.iter().filter(|event| event.tool == "add").collect();
    assert_eq!(
        adds.iter().map(|event| event.status).collect::<Vec<_>>(),
        [Status::Ok, Status::InvalidParams, Status::Ok]
    );

    let ok = adds[0];
    assert_eq!(
        (ok.server_name.as_str(), ok.server_version.as_str()),
        ("demo", "0.0.1")
    );
    assert_eq!(ok.client_name.as_deref(), Some("test-client"));
    assert_eq!(ok.client_version.as_deref(), Some("1.2.3"));
    assert_eq!(ok.transport, Transport::Stdio);
    assert_eq!(ok.params.as_deref(), Some(r#"{"a":2,"b":3}"#));
    assert!(ok.result.as_deref().unwrap().contains(r#""sum":5"#));
    assert!(ok.protocol_version.is_some() && ok.request_id.is_some() && ok.error_type.is_none());
    assert!(ok.session_id.as_deref().unwrap().starts_with("c-"));
    assert!(
        events.iter().all(|event| event.session_id == ok.session_id),
        "one connection, one session"
    );

    let invalid = adds[1];
    assert_eq!(invalid.error_type.as_deref(), Some("invalid_params"));
    assert!(
        invalid
            .error_message
            .as_deref()
            .unwrap()
            .contains("invalid type")
    );
    assert_eq!(
        only(&events, "fail_protocol").error_type.as_deref(),
        Some("-32603")
    );
    assert_eq!(
        only(&events, "divide").error_message.as_deref(),
        Some("cannot divide by zero")
    );
    let panic = only(&events, "explode");
    assert_eq!(panic.error_type.as_deref(), Some("panic"));
    // The redacted message, then the tool's frames of the backtrace.
    let message = panic.error_message.as_deref().unwrap();
    assert!(
        message.starts_with(
            "boom: key [REDACTED] leaked\n\nbacktrace:\nmcp_analytics_tests::Demo::explode"
        ),
        "{message}"
    );

    // The same rows are in SQLite, and the rollup agrees.
    let rows = stored_rows(&db);
    assert_eq!(rows.len(), events.len());
    let store = mcp_analytics::store::SqliteStore::open(&db).unwrap();
    let summary = store.tool_summary(0).unwrap();
    let add = summary.iter().find(|tool| tool.tool == "add").unwrap();
    assert_eq!((add.calls, add.errors), (3, 1));
    assert!(add.p50_ms >= 0.0 && add.p99_ms >= add.p50_ms);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_2026_lifecycle_is_recorded_with_its_own_client_info() {
    let sink = MemorySink::new();
    let analytics = Analytics::builder().sink(sink.clone()).build().unwrap();
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let server_analytics = analytics.clone();
    tokio::spawn(async move {
        let server = Demo {
            analytics: server_analytics,
        }
        .serve(server_io)
        .await
        .expect("server starts");
        let _ = server.waiting().await;
    });
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = client_info()
        .serve_with_lifecycle(client_io, lifecycle)
        .await
        .expect("discover works");
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 8);
    let add = tools.iter().find(|tool| tool.name == "add").unwrap();
    assert!(
        add.output_schema.is_some()
            && add.annotations.as_ref().unwrap().read_only_hint == Some(true)
    );
    call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    call(&client, "add", json!({"a": 3, "b": 4})).await.unwrap();
    analytics.flush().await;
    let events = sink.events();
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event.protocol_version.as_deref(), Some("2026-07-28"));
        assert_eq!(event.client_name.as_deref(), Some("test-client"));
        assert!(
            event
                .session_id
                .as_deref()
                .is_some_and(|id| id.starts_with("c-"))
        );
    }
    assert_eq!(events[0].session_id, events[1].session_id);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn redaction_holds_for_nested_and_value_pattern_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let sink = MemorySink::new();
    let analytics = analytics(&sink, &db);
    let client = connect_demo(analytics.clone()).await;
    let result = call(&client, "connect_service", secret_arguments())
        .await
        .unwrap();
    assert!(
        format!("{result:?}").contains("eyJhbGciOiJIUzI1NiJ9"),
        "the client itself gets the real result"
    );
    analytics.flush().await;
    let event = only(&sink.events(), "connect_service").clone();
    let params: serde_json::Value = serde_json::from_str(event.params.as_deref().unwrap()).unwrap();
    // `credentials` is itself a sensitive key name: the whole object goes.
    assert_eq!(params["credentials"], "[REDACTED]");
    assert_eq!(params["service"], "warehouse");
    for (_, _, _, _, params, result) in stored_rows(&db) {
        assert_no_secrets(&format!("{params:?} {result:?}"));
    }
    assert_no_secrets(&format!("{event:?}"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn track_results_false_stores_no_result() {
    let sink = MemorySink::new();
    let analytics = Analytics::builder().sink(sink.clone()).build().unwrap();
    let client = connect_demo(analytics.clone()).await;
    let result = call(
        &client,
        "process_document",
        json!({"document": "top-secret-document-body"}),
    )
    .await
    .unwrap();
    assert_eq!(result.is_error, Some(false));
    analytics.flush().await;
    let event = only(&sink.events(), "process_document").clone();
    assert_eq!(event.status, Status::Ok);
    assert_eq!(event.result, None);
    assert_eq!(
        event.params.as_deref(),
        Some(r#"{"document":"[REDACTED]"}"#),
        "per-tool redact key"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn disabled_analytics_records_nothing_and_tools_still_work() {
    let client = connect_demo(Analytics::disabled()).await;
    let sum = call(&client, "add", json!({"a": 20, "b": 22}))
        .await
        .unwrap();
    assert_eq!(sum.structured_content, Some(json!({"sum": 42})));
    let panicked = call(&client, "explode", json!({})).await.unwrap();
    assert_eq!(panicked.is_error, Some(true), "panics are still caught");
    let disabled = Analytics::builder()
        .enabled(false)
        .sink(MemorySink::new())
        .build()
        .unwrap();
    assert!(!disabled.is_enabled());
    assert_eq!(
        Analytics::disabled().stats(),
        mcp_analytics::Stats::default()
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_call_is_recorded_as_cancelled() {
    let sink = MemorySink::new();
    let analytics = Analytics::builder().sink(sink.clone()).build().unwrap();
    let client = connect_demo(analytics.clone()).await;
    let handle = start_slow_call(&client).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle
        .cancel(Some("user pressed stop".into()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        analytics.flush().await;
        if let Some(event) = sink.events().into_iter().find(|event| event.tool == "slow") {
            assert_eq!(event.status, Status::Cancelled);
            assert!(
                event.duration_us < 10_000_000,
                "cancelled promptly: {}",
                event.duration_us
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no cancelled event recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.cancel().await.unwrap();
}

/// A request context with request id `id` and a live peer (a server over a duplex pipe), for
/// calling `ServerHandler` methods directly. Keep the returned services (the client, and the
/// server whose peer the context holds) until the call is done.
async fn direct_context(
    id: i64,
) -> (
    rmcp::service::RequestContext<rmcp::RoleServer>,
    rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>,
    rmcp::service::RunningService<rmcp::RoleServer, Demo>,
) {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        Demo {
            analytics: Analytics::disabled(),
        }
        .serve(server_io)
        .await
        .expect("server starts")
    });
    let client = client_info().serve(client_io).await.unwrap();
    let running = server.await.unwrap();
    let context = rmcp::service::RequestContext::new(
        rmcp::model::NumberOrString::Number(id),
        running.peer().clone(),
    );
    (context, client, running)
}

/// A call whose future is dropped mid-flight (a transport giving up on it) is still recorded.
#[tokio::test]
async fn a_dropped_call_is_recorded_as_cancelled() {
    use rmcp::ServerHandler;

    let sink = MemorySink::new();
    let analytics = Analytics::builder().sink(sink.clone()).build().unwrap();
    let (context, client, _server) = direct_context(7).await;
    let demo = Demo {
        analytics: analytics.clone(),
    };
    let request = rmcp::model::CallToolRequestParams::new("slow")
        .with_arguments(json!({"ms": 30_000}).as_object().unwrap().clone());
    let call = demo.call_tool(request, context);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), call)
            .await
            .is_err(),
        "still running"
    );
    analytics.flush().await;
    let event = only(&sink.events(), "slow").clone();
    assert_eq!(event.status, Status::Cancelled);
    assert_eq!(event.request_id.as_deref(), Some("7"));
    client.cancel().await.unwrap();
}

/// A result whose serialization panics (a bug in a `Serialize` impl, not in the tool).
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Unserializable {
    #[serde(serialize_with = "panic_serializing")]
    value: u8,
}

fn panic_serializing<S: serde::Serializer>(_: &u8, _: S) -> Result<S::Ok, S::Error> {
    panic!("Serialize panicked")
}

struct PanicsConverting {
    analytics: Analytics,
}

#[mcp_analytics::mcp_server(analytics = self.analytics)]
impl PanicsConverting {
    #[mcp_analytics::tool]
    async fn unserializable(&self) -> mcp_analytics::Json<Unserializable> {
        mcp_analytics::Json(Unserializable { value: 1 })
    }
}

#[tokio::test]
async fn a_panic_converting_the_result_is_not_a_tool_panic() {
    use futures::FutureExt;
    use rmcp::ServerHandler;

    let sink = MemorySink::new();
    let analytics = Analytics::builder().sink(sink.clone()).build().unwrap();
    let (context, client, _server) = direct_context(1).await;
    let server = PanicsConverting {
        analytics: analytics.clone(),
    };
    let request = rmcp::model::CallToolRequestParams::new("unserializable");
    // The conversion runs outside the tool's panic scope, as it always did: the panic leaves
    // `call_tool` (to the user's hook) instead of becoming a recorded tool panic.
    let outcome = std::panic::AssertUnwindSafe(server.call_tool(request, context))
        .catch_unwind()
        .await;
    assert!(
        outcome.is_err(),
        "the panic is not turned into a tool result: {outcome:?}"
    );
    analytics.flush().await;
    assert!(
        sink.events()
            .iter()
            .all(|event| event.status != Status::Panic),
        "{:#?}",
        sink.events()
    );
    client.cancel().await.unwrap();
}
