//! `#[mcp_server(server_handler = false)]`: the server writes its own `ServerHandler` (here
//! serving prompts and resources by hand), forwards the tool and lifecycle methods to
//! `mcp_analytics::handler`, and answers its prompts and resources inside `handler::observed`,
//! which records them like everything else.

use mcp_analytics::{
    Analytics, MemorySink, Method, RequestStatus, handler, mcp_server,
    rmcp::{
        ErrorData, RoleServer, ServerHandler,
        model::{
            CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
            GetPromptResult, InitializeRequestParams, InitializeResult, ListPromptsResult,
            ListToolsResult, PaginatedRequestParams, Prompt, PromptMessage,
            ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents,
            Role, ServerCapabilities, ServerConfig, Tool,
        },
        service::RequestContext,
    },
    tool,
};
use mcp_analytics_tests::{
    client::{call, client_info},
    records::{analytics, stored_requests},
};
use rmcp::{ServiceExt, model::ErrorCode};
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
        config.capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .build();
        config
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        handler::get_tool::<Self>(name)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        handler::initialize(self, request, context).await
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        handler::list_tools(self, request, context).await
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
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let answer = async {
            Ok(ListPromptsResult::with_all_items(vec![Prompt::new(
                "greeting",
                Some("A greeting"),
                None,
            )]))
        };
        handler::observed(self, Method::PromptsList, None, &context, answer).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let name = request.name.as_str();
        let answer = async {
            match name {
                "greeting" => Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    "Say hello",
                )])
                .into()),
                _ => Err(ErrorData::invalid_params(format!("no prompt {name}"), None)),
            }
        };
        handler::observed(self, Method::PromptsGet, Some(name), &context, answer).await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.as_str();
        let answer = async {
            if uri.starts_with("test://explode") {
                panic!("reading {uri} failed");
            }
            match uri.strip_prefix("test://doc/") {
                Some(_) => Ok(ReadResourceResult::new(vec![ResourceContents::text(
                    "the document",
                    uri,
                )])
                .into()),
                None => Err(ErrorData::resource_not_found(
                    format!("no resource {uri}"),
                    None,
                )),
            }
        };
        handler::observed(self, Method::ResourcesRead, Some(uri), &context, answer).await
    }
}

#[tokio::test]
async fn a_hand_written_server_handler_serves_prompts_and_resources_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("handler.db");
    let sink = MemorySink::new();
    let analytics = analytics(&sink, &db);
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
    client
        .get_prompt(GetPromptRequestParams::new("greeting"))
        .await
        .unwrap();
    client
        .get_prompt(GetPromptRequestParams::new("farewell"))
        .await
        .unwrap_err();
    // An id and a key in a URI: recorded redacted.
    let secret_uri = "test://doc/sk_live_CNRYuriStripe01?api_key=CNRYuriQuery01";
    client
        .read_resource(ReadResourceRequestParams::new(secret_uri))
        .await
        .unwrap();
    client
        .read_resource(ReadResourceRequestParams::new("test://nowhere"))
        .await
        .unwrap_err();
    let panicked = client
        .read_resource(ReadResourceRequestParams::new("test://explode"))
        .await
        .unwrap_err();
    assert!(
        format!("{panicked:?}").contains(&ErrorCode::INTERNAL_ERROR.0.to_string()),
        "a panic answers an internal error and the server keeps serving: {panicked:?}"
    );
    call(&client, "hello", json!({})).await.unwrap();
    analytics.flush().await;

    let calls = sink.events();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|call| call.server_name == "with-prompts"));
    let recorded: Vec<(Method, Option<String>, RequestStatus)> = sink
        .requests()
        .into_iter()
        .map(|request| (request.method, request.target, request.status))
        .collect();
    let some = |text: &str| Some(text.to_owned());
    assert_eq!(
        recorded[..4].to_vec(),
        [
            (Method::Initialize, None, RequestStatus::Ok),
            (Method::PromptsList, None, RequestStatus::Ok),
            (Method::ToolsList, None, RequestStatus::Ok),
            (Method::PromptsGet, some("greeting"), RequestStatus::Ok),
        ]
    );
    assert_eq!(
        recorded[4],
        (
            Method::PromptsGet,
            some("farewell"),
            RequestStatus::InvalidParams
        )
    );
    let (method, target, status) = &recorded[5];
    assert_eq!(
        (*method, *status),
        (Method::ResourcesRead, RequestStatus::Ok)
    );
    let target = target.as_deref().unwrap();
    assert!(
        target.starts_with("test://doc/") && target.contains(mcp_analytics::REDACTED),
        "{target}"
    );
    assert_eq!(
        recorded[6],
        (
            Method::ResourcesRead,
            some("test://nowhere"),
            RequestStatus::ResourceNotFound
        )
    );
    assert_eq!(
        recorded[7],
        (
            Method::ResourcesRead,
            some("test://explode"),
            RequestStatus::Panic
        )
    );
    assert_eq!(stored_requests(&db).len(), 8);
    client.cancel().await.unwrap();
    // Neither the id nor the key reached the database (or its write-ahead log).
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for needle in ["CNRYuriStripe01", "CNRYuriQuery01"] {
            assert!(
                !bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes()),
                "{needle} reached the database"
            );
        }
    }
}
