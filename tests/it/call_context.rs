//! What a tool sends its client through `CallContext`, seen by a real rmcp client over an
//! in-process duplex: log messages filtered by the connection's `logging/setLevel` (legacy) or
//! the request's `_meta` level (MCP 2026-07-28), progress with the request's token, and
//! sampling and elicitation, which a legacy client answers within the call and an MCP
//! 2026-07-28 client answers in `InputRequiredResult` rounds.

#![allow(deprecated)] // logging and sampling are deprecated by MCP 2026-07-28 (SEP-2577)

use std::sync::{Arc, Mutex};

use mcp_analytics::{
    Analytics, CallContext, ClientRequestError, LogLevel, MemorySink, Status, mcp_server,
    rmcp::{
        ErrorData, ServerHandler,
        model::{
            CallToolRequestParams, CallToolResponse, CallToolResult, ElicitRequestParams,
            ElicitationSchema, ListToolsResult, PaginatedRequestParams, SamplingMessage,
            ServerConfig, SetLevelRequestParams, Tool,
        },
    },
    server::RequestContext,
    tool,
};
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt,
    model::{
        ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
        ElicitResult, ElicitationAction, ElicitationCapability, Implementation, InputRequest,
        LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion,
        RequestMetaObject, Role,
    },
    service::{NotificationContext, RunningService},
};
use serde_json::{Value, json};

/// Tools that talk to their client.
#[derive(Clone)]
struct Talker {
    analytics: Analytics,
}

#[mcp_server(name = "talker", version = "1.0.0", analytics = self.analytics, server_handler = false)]
impl Talker {
    /// Logs at debug, info and warning; answers how many messages were sent.
    #[tool]
    async fn chatty(&self, cx: CallContext) -> Result<String, ClientRequestError> {
        let mut sent = 0;
        for level in [LogLevel::Debug, LogLevel::Info, LogLevel::Warning] {
            sent += usize::from(cx.log(level, json!({"level": level.as_str()})).await?);
        }
        Ok(format!("sent {sent}"))
    }

    /// Reports half-way and done.
    #[tool]
    async fn steps(&self, cx: CallContext) -> Result<String, ClientRequestError> {
        let first = cx.progress(1.0, Some(2.0), Some("half-way")).await?;
        let second = cx.progress(2.0, Some(2.0), None).await?;
        Ok(format!("{first} {second}"))
    }

    /// Asks the user twice, then the model.
    #[tool]
    async fn interview(&self, cx: CallContext) -> Result<String, ClientRequestError> {
        let name = cx.elicit(question("name")).await?;
        let city = cx.elicit(question("city")).await?;
        let request = CreateMessageRequestParams::new(
            vec![SamplingMessage::user_text("summarise the interview")],
            50,
        );
        let summary = cx.sample(request).await?;
        let text = summary.message.content.first().and_then(|c| c.as_text());
        Ok(format!(
            "{} {} {}",
            answer(&name),
            answer(&city),
            text.map_or("-", |text| text.text.as_str())
        ))
    }
}

impl ServerHandler for Talker {
    fn get_info(&self) -> ServerConfig {
        let mut config = mcp_analytics::handler::server_config::<Self>();
        config.capabilities.logging = Some(Default::default());
        config
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        mcp_analytics::handler::get_tool::<Self>(name)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext,
    ) -> Result<ListToolsResult, ErrorData> {
        mcp_analytics::handler::list_tools(self, request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext,
    ) -> Result<CallToolResponse, ErrorData> {
        mcp_analytics::handler::call_tool(self, request, context).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext,
    ) -> Result<(), ErrorData> {
        mcp_analytics::handler::set_log_level(&context, request.level.into());
        Ok(())
    }
}

/// A form asking for one string, `field`.
fn question(field: &str) -> ElicitRequestParams {
    let schema = json!({"type": "object", "properties": {field: {"type": "string"}}});
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: format!("your {field}?"),
        requested_schema: serde_json::from_value::<ElicitationSchema>(schema).unwrap(),
    }
}

/// The single value of an accepted form.
fn answer(result: &ElicitResult) -> String {
    let content = result.content.as_ref().and_then(Value::as_object);
    content
        .and_then(|fields| fields.values().next())
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_owned()
}

/// A client that answers every form with `<field>-answer` and every sampling request with
/// "a summary", and keeps the notifications it receives.
#[derive(Clone, Default)]
struct Answering {
    capable: bool,
    logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Answering {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::FormElicitationParams {
            requested_schema, ..
        } = request
        else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        let field = requested_schema.properties.keys().next().unwrap().clone();
        let mut result = ElicitResult::new(ElicitationAction::Accept);
        result.content = Some(json!({ field.clone(): format!("{field}-answer") }));
        Ok(result)
    }

    async fn create_message(
        &self,
        _request: CreateMessageRequestParams,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let message = SamplingMessage::new(Role::Assistant, "a summary".to_owned());
        Ok(CreateMessageResult::new(message, "test-model".into()))
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params);
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        if self.capable {
            capabilities.sampling = Some(Default::default());
            capabilities.elicitation = Some(ElicitationCapability::new());
        }
        ClientConfig::new(capabilities, Implementation::new("answering", "1.0.0"))
    }
}

type Client = RunningService<RoleClient, Answering>;

/// A `Talker` recording into `sink`, and `client` connected to it over a duplex: the legacy
/// handshake, or the MCP 2026-07-28 lifecycle when `modern`.
async fn connect(client: Answering, sink: &MemorySink, modern: bool) -> (Client, Analytics) {
    let analytics = Analytics::builder().sink(sink.clone()).build().unwrap();
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let server = Talker {
        analytics: analytics.clone(),
    };
    tokio::spawn(async move {
        let running = server.serve(server_io).await.expect("server starts");
        let _ = running.waiting().await;
    });
    let client = if modern {
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        };
        client.serve_with_lifecycle(client_io, lifecycle).await
    } else {
        client.serve(client_io).await
    };
    (client.expect("client connects"), analytics)
}

fn text(result: &CallToolResult) -> &str {
    result.content[0].as_text().unwrap().text.as_str()
}

/// Calls `tool` (no arguments) with `meta` as its `_meta`.
async fn call(client: &Client, tool: &str, meta: Option<RequestMetaObject>) -> CallToolResult {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    params.meta = meta;
    client.call_tool(params).await.unwrap()
}

/// The levels of the log messages `client` received (notifications may trail the result).
async fn levels_received(client: &Answering, expected: usize) -> Vec<LoggingLevel> {
    for _ in 0..200 {
        if client.logs.lock().unwrap().len() >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let logs = std::mem::take(&mut *client.logs.lock().unwrap());
    logs.into_iter().map(|log| log.level).collect()
}

#[tokio::test]
async fn log_messages_follow_the_level_the_legacy_connection_set() {
    let answering = Answering::default();
    let (client, _) = connect(answering.clone(), &MemorySink::new(), false).await;

    assert_eq!(text(&call(&client, "chatty", None).await), "sent 3");
    let all = [
        LoggingLevel::Debug,
        LoggingLevel::Info,
        LoggingLevel::Warning,
    ];
    assert_eq!(levels_received(&answering, 3).await, all);

    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .unwrap();
    assert_eq!(text(&call(&client, "chatty", None).await), "sent 2");
    let from_info = [LoggingLevel::Info, LoggingLevel::Warning];
    assert_eq!(levels_received(&answering, 2).await, from_info);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn on_mcp_2026_07_28_only_requests_naming_a_level_get_log_messages() {
    let answering = Answering::default();
    let (client, _) = connect(answering.clone(), &MemorySink::new(), true).await;

    assert_eq!(text(&call(&client, "chatty", None).await), "sent 0");
    let mut meta = RequestMetaObject::new();
    meta.set_log_level(LoggingLevel::Warning);
    assert_eq!(text(&call(&client, "chatty", Some(meta)).await), "sent 1");
    assert_eq!(
        levels_received(&answering, 1).await,
        [LoggingLevel::Warning]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn progress_goes_to_the_client_with_the_request_s_token() {
    for modern in [false, true] {
        let answering = Answering::default();
        let (client, _) = connect(answering.clone(), &MemorySink::new(), modern).await;
        // rmcp's client puts a progress token into every request.
        assert_eq!(text(&call(&client, "steps", None).await), "true true");
        let progress = answering.progress.lock().unwrap().clone();
        let reports: Vec<_> = progress
            .iter()
            .map(|p| (p.progress, p.total, p.message.as_deref()))
            .collect();
        assert_eq!(
            reports,
            [(1.0, Some(2.0), Some("half-way")), (2.0, Some(2.0), None)],
            "modern: {modern}"
        );
        assert_eq!(progress[0].progress_token, progress[1].progress_token);
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_legacy_client_answers_elicitation_and_sampling_within_the_call() {
    let sink = MemorySink::new();
    let answering = Answering {
        capable: true,
        ..Answering::default()
    };
    let (client, analytics) = connect(answering, &sink, false).await;
    let result = call(&client, "interview", None).await;
    assert_eq!(text(&result), "name-answer city-answer a summary");
    analytics.flush().await;
    let statuses: Vec<Status> = sink.events().iter().map(|event| event.status).collect();
    assert_eq!(statuses, [Status::Ok]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_client_without_the_capability_gets_a_tool_error_saying_so() {
    for modern in [false, true] {
        let (client, _) = connect(Answering::default(), &MemorySink::new(), modern).await;
        let result = call(&client, "interview", None).await;
        assert_eq!(result.is_error, Some(true));
        assert_eq!(text(&result), "the client does not support elicitation");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn on_mcp_2026_07_28_each_question_ends_a_round_and_retries_bring_every_earlier_answer() {
    let sink = MemorySink::new();
    let answering = Answering {
        capable: true,
        ..Answering::default()
    };
    let (client, analytics) = connect(answering, &sink, true).await;

    // The first round asks the first question, and nothing else yet.
    let once = client
        .call_tool_once(CallToolRequestParams::new("interview"))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(asked) = once else {
        panic!("expected input_required, got {once:?}")
    };
    let requests = asked.input_requests.unwrap();
    assert_eq!(requests.keys().collect::<Vec<_>>(), ["elicitation-1"]);
    assert!(matches!(
        requests["elicitation-1"],
        InputRequest::Elicitation(_)
    ));

    // rmcp's client answers round after round: two questions, then the model.
    let result = call(&client, "interview", None).await;
    assert_eq!(text(&result), "name-answer city-answer a summary");

    analytics.flush().await;
    let statuses: Vec<Status> = sink.events().iter().map(|event| event.status).collect();
    let asked = Status::InputRequired;
    assert_eq!(statuses, [asked, asked, asked, asked, Status::Ok]);
    client.cancel().await.unwrap();
}
