//! MCP clients for the tests: the client's introduction, calls, pings, and an in-process duplex
//! connection to the demo server.

use mcp_analytics::Analytics;
use rmcp::{
    RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
        RequestMetaObject,
    },
    service::{RunningService, ServiceError},
};
use serde_json::Value;

use crate::Demo;

/// A client that introduces itself as `test-client/1.2.3`.
pub fn client_info() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("test-client", "1.2.3"),
    )
}

/// Calls `tool` with `arguments` (a JSON object; anything else sends no arguments).
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

/// Calls `tool` with `arguments`, sending `traceparent` (and `tracestate`) in `params._meta`.
pub async fn call_traced(
    client: &RunningService<RoleClient, ClientConfig>,
    tool: &str,
    arguments: Value,
    traceparent: &str,
    tracestate: Option<&str>,
) -> Result<CallToolResult, ServiceError> {
    let mut meta = RequestMetaObject::new();
    meta.set_traceparent(traceparent);
    if let Some(tracestate) = tracestate {
        meta.set_tracestate(tracestate);
    }
    let mut params = CallToolRequestParams::new(tool.to_owned())
        .with_arguments(arguments.as_object().cloned().unwrap_or_default());
    params.meta = Some(meta);
    client.call_tool(params).await
}

/// Sends `ping` (rmcp's client has no method of its own for it).
pub async fn ping(client: &RunningService<RoleClient, ClientConfig>) -> Result<(), ServiceError> {
    let ping = rmcp::model::PingRequest {
        method: Default::default(),
        extensions: Default::default(),
    };
    client
        .send_request(rmcp::model::ClientRequest::PingRequest(ping))
        .await
        .map(|_| ())
}

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
