//! `#[mcp_server(server_handler = false)]`: the server writes its own `ServerHandler` (here to
//! serve a prompt too) and forwards the tool methods to `mcp_analytics::handler`.

use mcp_analytics::{
    Analytics, MemorySink, handler, mcp_server,
    rmcp::{
        ErrorData, RoleServer, ServerHandler,
        model::{
            CallToolRequestParams, CallToolResponse, ListPromptsResult, ListToolsResult,
            PaginatedRequestParams, Prompt, ServerConfig, Tool,
        },
        service::RequestContext,
    },
    tool,
};
use mcp_analytics_tests::{
    client::{call, client_info},
    records::only,
};
use rmcp::ServiceExt;
use serde_json::json;

struct WithPrompts {
    analytics: Analytics,
}

#[mcp_server(name = "with-prompts", analytics = self.analytics, server_handler = false)]
impl WithPrompts {
    /// Says hello.
    #[tool]
    async fn hello(&self) -> String {
        "hello".into()
    }
}

impl ServerHandler for WithPrompts {
    fn get_info(&self) -> ServerConfig {
        let mut config = handler::server_config::<Self>();
        config.capabilities.prompts = Some(Default::default());
        config
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        handler::get_tool::<Self>(name)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        handler::list_tools::<Self>(&context)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        handler::call_tool(self, request, context).await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new(
            "greeting",
            Some("A greeting"),
            None,
        )]))
    }
}

#[tokio::test]
async fn a_hand_written_server_handler_serves_prompts_and_recorded_tools() {
    let sink = MemorySink::new();
    let analytics = Analytics::builder().sink(sink.clone()).build().unwrap();
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let server_analytics = analytics.clone();
    tokio::spawn(async move {
        let server = WithPrompts {
            analytics: server_analytics,
        }
        .serve(server_io)
        .await
        .unwrap();
        let _ = server.waiting().await;
    });
    let client = client_info().serve(client_io).await.unwrap();
    let prompts = client.list_all_prompts().await.unwrap();
    assert_eq!(prompts[0].name, "greeting");
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools[0].name, "hello");
    call(&client, "hello", json!({})).await.unwrap();
    analytics.flush().await;
    let event = only(&sink.events(), "hello").clone();
    assert_eq!(event.server_name, "with-prompts");
    client.cancel().await.unwrap();
}
