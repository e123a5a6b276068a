//! Helpers shared by the behaviour tests.
#![allow(dead_code, missing_docs)]

use std::path::Path;

use mcp_analytics::{Analytics, MemorySink, ToolCallEvent};
use mcp_analytics_tests::Demo;
use rmcp::{
    RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    },
    service::{RunningService, ServiceError},
};
use serde_json::Value;

/// A client connected over an in-process duplex to a `Demo` server recording into `analytics`
/// (legacy `initialize` handshake).
pub async fn connect_demo(analytics: Analytics) -> RunningService<RoleClient, ClientConfig> {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let server = Demo { analytics }
            .serve(server_io)
            .await
            .expect("server starts");
        let _ = server.waiting().await;
    });
    client_info()
        .serve(client_io)
        .await
        .expect("client connects")
}

/// Starts a call of the demo's `slow` tool (30 s) that the test then cancels.
pub async fn start_slow_call(
    client: &RunningService<RoleClient, ClientConfig>,
) -> rmcp::service::RequestHandle<RoleClient> {
    let request = rmcp::model::ClientRequest::CallToolRequest(rmcp::model::Request::new(
        CallToolRequestParams::new("slow").with_arguments(
            serde_json::json!({"ms": 30_000})
                .as_object()
                .unwrap()
                .clone(),
        ),
    ));
    client
        .peer()
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .expect("the request is sent")
}

/// Analytics writing into `sink` and the SQLite file `db`.
pub fn analytics(sink: &MemorySink, db: &Path) -> Analytics {
    Analytics::builder()
        .database(db)
        .sink(sink.clone())
        .build()
        .expect("analytics builds")
}

/// A client that introduces itself as `test-client/1.2.3`.
pub fn client_info() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("test-client", "1.2.3"),
    )
}

pub async fn call(
    client: &RunningService<RoleClient, ClientConfig>,
    tool: &str,
    arguments: Value,
) -> Result<CallToolResult, ServiceError> {
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
}

/// The one event recorded for `tool` (panics if there is not exactly one).
pub fn only<'a>(events: &'a [ToolCallEvent], tool: &str) -> &'a ToolCallEvent {
    let found: Vec<&ToolCallEvent> = events.iter().filter(|event| event.tool == tool).collect();
    assert_eq!(found.len(), 1, "expected one `{tool}` event in {events:#?}");
    found[0]
}

/// One stored `tool_calls` row: (tool, status, session_id, user_id, params, result).
pub type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Rows of `tool_calls` in call order.
pub fn stored_rows(db: &Path) -> Vec<Row> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut statement = connection
        .prepare("SELECT tool, status, session_id, user_id, params, result FROM tool_calls ORDER BY ts_ms, id")
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every secret the tests send or return; none may appear in storage.
pub const SECRETS: &[&str] = &[
    "hunter2",
    "sk_live_abcdefghijklmnop",
    "4242 4242 4242 4242",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9",
    "top-secret-document-body",
    "s3cr3t-t0ken",
];

/// Arguments with nested and value-pattern secrets.
pub fn secret_arguments() -> Value {
    serde_json::json!({
        "service": "warehouse",
        "credentials": {
            "username": "bob",
            "Password": "hunter2",
            "nested": [{"x-auth-token": "s3cr3t-t0ken"}, {"note": "card 4242 4242 4242 4242"}],
            "aws": "AKIAIOSFODNN7EXAMPLE",
            "stripe": "sk_live_abcdefghijklmnop"
        }
    })
}

pub fn assert_no_secrets(text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "secret {secret:?} leaked into {text}"
        );
    }
}
