//! Prompts, resources and completions declared with `#[prompt]`, `#[resource]` and
//! `#[complete]`, through a real rmcp client: listing (arguments derived from the arguments
//! type), getting and reading (templated URIs bound to parameters), completion, subscriptions
//! with their update notifications, and paid prompts and resources behind the payment gate.

use std::time::Duration;

use mcp_analytics::{
    Analytics, CallContext, Json, MemorySink, Method, Payments, RequestStatus, complete,
    mcp_server,
    payments::PAYMENT_ERROR,
    prompt, resource,
    rmcp::{
        ErrorData,
        model::{PromptMessage, Role},
    },
    serve::HttpServer,
    tool,
};
use mcp_analytics_tests::server::{Serving, bearer_identity, transport};
use rmcp::{
    ClientHandler, RoleClient, ServiceError, ServiceExt,
    model::{
        ArgumentInfo, CallToolRequestParams, ClientConfig, CompleteRequestParams, ErrorCode,
        GetPromptRequestParams, ReadResourceRequestParams, Reference, ResourceContents,
        ResourceUpdatedNotificationParam, SubscribeRequestParams, UnsubscribeRequestParams,
    },
    service::{NotificationContext, RunningService},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The arguments of the `code_review` prompt.
#[derive(Deserialize, JsonSchema)]
struct ReviewArgs {
    /// The code to review.
    code: String,
    /// The language it is written in.
    language: Option<String>,
}

#[derive(Serialize)]
struct Item {
    id: u64,
    name: String,
}

/// A library of prompts and resources.
struct Library {
    analytics: Analytics,
}

#[mcp_server(name = "library", analytics = self.analytics)]
impl Library {
    /// A greeting.
    #[prompt]
    async fn hello(&self) -> String {
        "Say hello.".into()
    }

    /// Reviews a piece of code.
    #[prompt(title = "Code review")]
    async fn code_review(&self, args: ReviewArgs) -> Vec<PromptMessage> {
        let language = args.language.unwrap_or_else(|| "some".into());
        vec![
            PromptMessage::new_text(Role::User, format!("Review this {language} code:")),
            PromptMessage::new_text(Role::User, args.code),
        ]
    }

    #[prompt]
    async fn broken(&self) -> String {
        panic!("the prompt broke")
    }

    /// A static text.
    #[resource(
        uri = "test://static-text",
        name = "static-text",
        mime_type = "text/plain"
    )]
    async fn static_text(&self) -> String {
        "This is the content of the static text resource.".into()
    }

    #[resource(uri = "test://static-binary", mime_type = "image/png")]
    async fn static_binary(&self) -> Vec<u8> {
        vec![0x89, b'P', b'N', b'G']
    }

    #[resource(uri = "test://watched-resource", subscribe)]
    async fn watched(&self) -> String {
        "watched".into()
    }

    /// Items by id.
    #[resource(uri_template = "test://items/{id}/data", name = "item")]
    async fn item(&self, id: u64) -> Result<Json<Item>, ErrorData> {
        if id == 0 {
            return Err(ErrorData::resource_not_found("no item 0", None));
        }
        Ok(Json(Item {
            id,
            name: format!("item {id}"),
        }))
    }

    #[resource(uri_template = "test://files/{owner}/{+path}")]
    async fn file(&self, owner: String, path: String, cx: CallContext) -> String {
        format!(
            "{owner} owns {path} (session {})",
            cx.session_id().is_some()
        )
    }

    #[complete(prompt = "code_review", argument = "language")]
    async fn languages(&self, value: &str) -> Vec<&'static str> {
        ["python", "rust", "ruby"]
            .into_iter()
            .filter(|language| language.starts_with(value))
            .collect()
    }

    #[complete(resource = "test://items/{id}/data", argument = "id")]
    async fn ids(&self, value: String) -> Vec<String> {
        (1..=3).map(|n| format!("{value}{n}")).collect()
    }

    /// Changes the watched resource and tells its subscribers.
    #[tool]
    async fn touch(&self) -> String {
        let told = mcp_analytics::resource_updated::<Self>("test://watched-resource").await;
        format!("told {told}")
    }
}

/// A client that forwards `notifications/resources/updated` to a channel.
#[derive(Clone)]
struct Watcher(mpsc::UnboundedSender<String>);

impl ClientHandler for Watcher {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params.uri);
    }
}

/// A connected client to a [`Library`] over an in-process duplex, and the updates it receives.
async fn connect() -> (
    RunningService<RoleClient, Watcher>,
    mpsc::UnboundedReceiver<String>,
) {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let library = Library {
            analytics: Analytics::disabled(),
        };
        let server = library.serve(server_io).await.expect("the server starts");
        let _ = server.waiting().await;
    });
    let (updates, received) = mpsc::unbounded_channel();
    let client = Watcher(updates)
        .serve(client_io)
        .await
        .expect("the client connects");
    (client, received)
}

fn arguments(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn error_code(result: Result<impl std::fmt::Debug, ServiceError>) -> (ErrorCode, String) {
    match result {
        Err(ServiceError::McpError(error)) => (error.code, error.message.into_owned()),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

fn text(contents: &ResourceContents) -> (&str, Option<&str>, &str) {
    match contents {
        ResourceContents::TextResourceContents {
            uri,
            mime_type,
            text,
            ..
        } => (uri, mime_type.as_deref(), text),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn the_server_advertises_prompts_resources_with_subscriptions_and_completions() {
    let (client, _) = connect().await;
    let info = client.peer_info().expect("the handshake");
    let capabilities = &info.capabilities;
    assert!(capabilities.prompts.is_some());
    assert_eq!(
        capabilities.resources.as_ref().and_then(|r| r.subscribe),
        Some(true)
    );
    assert!(capabilities.completions.is_some());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn prompts_list_their_arguments_from_the_arguments_type() {
    let (client, _) = connect().await;
    let prompts = client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hello", "code_review", "broken"]);
    assert_eq!(prompts[0].description.as_deref(), Some("A greeting."));
    assert_eq!(prompts[0].arguments, None);
    let review = &prompts[1];
    assert_eq!(review.title.as_deref(), Some("Code review"));
    let listed: Vec<(&str, Option<&str>, Option<bool>)> = review
        .arguments
        .iter()
        .flatten()
        .map(|a| (a.name.as_str(), a.description.as_deref(), a.required))
        .collect();
    assert_eq!(
        listed,
        [
            ("code", Some("The code to review."), Some(true)),
            (
                "language",
                Some("The language it is written in."),
                Some(false)
            ),
        ]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn getting_a_prompt_runs_it_with_its_arguments() {
    let (client, _) = connect().await;
    let review = client
        .get_prompt(
            GetPromptRequestParams::new("code_review").with_arguments(arguments(
                json!({"code": "fn main() {}", "language": "rust"}),
            )),
        )
        .await
        .unwrap();
    let texts: Vec<&str> = review
        .messages
        .iter()
        .map(|m| m.content.as_text().unwrap().text.as_str())
        .collect();
    assert_eq!(texts, ["Review this rust code:", "fn main() {}"]);
    assert_eq!(
        review.description.as_deref(),
        Some("Reviews a piece of code."),
        "the prompt's description"
    );

    let hello = client
        .get_prompt(GetPromptRequestParams::new("hello"))
        .await
        .unwrap();
    assert_eq!(hello.messages.len(), 1);
    assert_eq!(hello.messages[0].role, Role::User);

    let (code, message) = error_code(
        client
            .get_prompt(
                GetPromptRequestParams::new("code_review")
                    .with_arguments(arguments(json!({"language": "rust"}))),
            )
            .await,
    );
    assert_eq!(code, ErrorCode::INVALID_PARAMS);
    assert!(message.contains("missing field `code`"), "{message}");
    let (code, message) = error_code(client.get_prompt(GetPromptRequestParams::new("nope")).await);
    assert_eq!(code, ErrorCode::INVALID_PARAMS);
    assert!(message.contains("prompt not found: nope"), "{message}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_panicking_prompt_is_an_internal_error_and_the_server_carries_on() {
    let (client, _) = connect().await;
    let (code, _) = error_code(
        client
            .get_prompt(GetPromptRequestParams::new("broken"))
            .await,
    );
    assert_eq!(code, ErrorCode::INTERNAL_ERROR);
    assert!(
        client
            .get_prompt(GetPromptRequestParams::new("hello"))
            .await
            .is_ok()
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn resources_and_templates_are_listed() {
    let (client, _) = connect().await;
    let resources = client.list_all_resources().await.unwrap();
    let listed: Vec<(&str, &str, Option<&str>)> = resources
        .iter()
        .map(|r| (r.uri.as_str(), r.name.as_str(), r.mime_type.as_deref()))
        .collect();
    assert_eq!(
        listed,
        [
            ("test://static-text", "static-text", Some("text/plain")),
            ("test://static-binary", "static_binary", Some("image/png")),
            ("test://watched-resource", "watched", None),
        ]
    );
    assert_eq!(resources[0].description.as_deref(), Some("A static text."));
    let templates = client.list_all_resource_templates().await.unwrap();
    let listed: Vec<(&str, &str)> = templates
        .iter()
        .map(|t| (t.uri_template.as_str(), t.name.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("test://items/{id}/data", "item"),
            ("test://files/{owner}/{+path}", "file")
        ]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn reading_a_resource_labels_its_contents() {
    let (client, _) = connect().await;
    let read = |uri: &str| client.read_resource(ReadResourceRequestParams::new(uri));
    let static_text = read("test://static-text").await.unwrap();
    assert_eq!(
        text(&static_text.contents[0]),
        (
            "test://static-text",
            Some("text/plain"),
            "This is the content of the static text resource."
        )
    );
    let binary = read("test://static-binary").await.unwrap();
    let ResourceContents::BlobResourceContents {
        blob, mime_type, ..
    } = &binary.contents[0]
    else {
        panic!("a blob: {binary:?}")
    };
    assert_eq!(
        (blob.as_str(), mime_type.as_deref()),
        ("iVBORw==", Some("image/png"))
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_templated_uri_binds_its_variables_to_the_parameters() {
    let (client, _) = connect().await;
    let read = |uri: &str| client.read_resource(ReadResourceRequestParams::new(uri));
    let item = read("test://items/42/data").await.unwrap();
    let (uri, mime_type, body) = text(&item.contents[0]);
    assert_eq!(
        (uri, mime_type),
        ("test://items/42/data", Some("application/json"))
    );
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        json!({"id": 42, "name": "item 42"})
    );
    let file = read("test://files/ann/docs/a%20b.md").await.unwrap();
    assert_eq!(
        text(&file.contents[0]).2,
        "ann owns docs/a b.md (session true)"
    );

    let (code, message) = error_code(read("test://items/forty-two/data").await);
    assert_eq!(code, ErrorCode::INVALID_PARAMS);
    assert!(message.contains("invalid `id`"), "{message}");
    let (code, message) = error_code(read("test://items/0/data").await);
    assert_eq!(
        (code, message.as_str()),
        (ErrorCode::RESOURCE_NOT_FOUND, "no item 0"),
        "the method's own error"
    );
    let (code, _) = error_code(read("test://nothing").await);
    assert_eq!(code, ErrorCode::RESOURCE_NOT_FOUND);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn completion_offers_values_for_prompt_arguments_and_template_variables() {
    let (client, _) = connect().await;
    let complete = |reference: Reference, argument: &str, value: &str| {
        client.complete(CompleteRequestParams::new(
            reference,
            ArgumentInfo::new(argument, value),
        ))
    };
    let languages = complete(Reference::for_prompt("code_review"), "language", "r")
        .await
        .unwrap();
    assert_eq!(languages.completion.values, ["rust", "ruby"]);
    assert_eq!(languages.completion.total, Some(2));
    let ids = complete(Reference::for_resource("test://items/{id}/data"), "id", "4")
        .await
        .unwrap();
    assert_eq!(ids.completion.values, ["41", "42", "43"]);
    let none = complete(Reference::for_prompt("code_review"), "code", "")
        .await
        .unwrap();
    assert!(
        none.completion.values.is_empty(),
        "no completion for `code`"
    );
    let (code, message) = error_code(complete(Reference::for_prompt("nope"), "x", "").await);
    assert_eq!(code, ErrorCode::INVALID_PARAMS);
    assert!(message.contains("prompt not found"), "{message}");
    client.cancel().await.unwrap();
}

/// Calls the `touch` tool; returns its text.
async fn touch(client: &RunningService<RoleClient, Watcher>) -> String {
    let result = client
        .call_tool(CallToolRequestParams::new("touch"))
        .await
        .unwrap();
    result.content[0].as_text().unwrap().text.clone()
}

// `resources/subscribe` is legacy-only (MCP 2025-11-25 and earlier), which this client speaks.
#[allow(deprecated)]
#[tokio::test]
async fn subscribers_are_told_about_updates_until_they_unsubscribe() {
    let (client, mut updates) = connect().await;
    let (other, mut other_updates) = connect().await;
    client
        .subscribe(SubscribeRequestParams::new("test://watched-resource"))
        .await
        .unwrap();
    assert_eq!(touch(&other).await, "told 1", "one connection subscribed");
    let uri = tokio::time::timeout(Duration::from_secs(5), updates.recv())
        .await
        .expect("the update arrives")
        .unwrap();
    assert_eq!(uri, "test://watched-resource");
    assert!(other_updates.try_recv().is_err(), "not subscribed");

    client
        .unsubscribe(UnsubscribeRequestParams::new("test://watched-resource"))
        .await
        .unwrap();
    assert_eq!(touch(&other).await, "told 0");

    let (code, message) = error_code(
        client
            .subscribe(SubscribeRequestParams::new("test://static-text"))
            .await,
    );
    assert_eq!(code, ErrorCode::INVALID_PARAMS);
    assert!(message.contains("takes no subscriptions"), "{message}");
    client.cancel().await.unwrap();
    other.cancel().await.unwrap();
}

/// Paid prompts and resources (the local test provider takes the payments).
struct Premium {
    analytics: Analytics,
    payments: Payments,
}

#[mcp_server(name = "premium", analytics = self.analytics, payments = self.payments)]
impl Premium {
    /// A carefully written prompt.
    #[prompt]
    #[mcp_analytics::paid(
        checkout = { mode = "payment", success_url = "https://example.com/ok",
                     line_items = [{ price = "price_prompt", quantity = 1 }] },
        reason = "The premium prompt"
    )]
    async fn premium_prompt(&self) -> String {
        "premium".into()
    }

    /// A report, two reads per purchase.
    #[resource(uri_template = "test://reports/{year}")]
    #[mcp_analytics::paid(
        checkout = { mode = "payment", success_url = "https://example.com/ok",
                     line_items = [{ price = "price_report", quantity = 2 }] }
    )]
    async fn report(&self, year: u16) -> String {
        format!("report {year}")
    }
}

/// The payment answer a refused prompt or resource carries, and its checkout link.
fn refused(result: Result<impl std::fmt::Debug, ServiceError>, label: &str) -> String {
    let Err(ServiceError::McpError(error)) = result else {
        panic!("expected a payment refusal, got {result:?}")
    };
    assert_eq!(error.code, PAYMENT_ERROR, "{error:?}");
    let data = error.data.expect("the payment answer");
    assert_eq!(data["status"], "payment_required", "{data}");
    assert_eq!(data["tool"], label);
    let url = data["checkout_url"].as_str().unwrap().to_owned();
    assert!(error.message.contains(&url), "{}", error.message);
    url
}

#[tokio::test]
async fn a_paid_prompt_is_refused_then_runs_after_the_checkout_and_each_answer_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::new();
    let analytics = mcp_analytics_tests::records::analytics(&sink, &dir.path().join("a.db"));
    let server_analytics = analytics.clone();
    let payments = Payments::builder()
        .database(dir.path().join("paid.db"))
        .local_price("price_prompt", 300, "usd")
        .local_price("price_report", 500, "usd")
        .build()
        .unwrap();
    let server_payments = payments.clone();
    let serving = Serving::start(|listener, shutdown| async move {
        HttpServer::new(move || Premium {
            analytics: server_analytics.clone(),
            payments: server_payments.clone(),
        })
        .identity(bearer_identity)
        .without_dashboard()
        .serve_on(listener, shutdown, &Analytics::disabled())
        .await
    })
    .await;
    let client: RunningService<RoleClient, ClientConfig> =
        mcp_analytics_tests::client::client_info()
            .serve(transport(serving.addr, Some("olga")))
            .await
            .unwrap();
    let http = reqwest::Client::new();

    let get = || client.get_prompt(GetPromptRequestParams::new("premium_prompt"));
    let url = refused(get().await, "prompt:premium_prompt");
    let page = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("The premium prompt"), "{page}");
    http.post(&url).send().await.unwrap();
    let prompt = get().await.unwrap();
    assert_eq!(
        prompt.messages[0].content.as_text().unwrap().text,
        "premium"
    );
    refused(get().await, "prompt:premium_prompt");

    let read = || client.read_resource(ReadResourceRequestParams::new("test://reports/2025"));
    let url = refused(read().await, "resource:test://reports/{year}");
    http.post(&url).send().await.unwrap();
    let report = read().await.unwrap();
    assert_eq!(text(&report.contents[0]).2, "report 2025");
    let (code, _) = error_code(
        client
            .read_resource(ReadResourceRequestParams::new("test://reports/not-a-year"))
            .await,
    );
    assert_eq!(code, ErrorCode::INVALID_PARAMS);
    let report = read().await.unwrap();
    assert_eq!(
        text(&report.contents[0]).2,
        "report 2025",
        "the failed read used no credit: the second one is left"
    );
    refused(read().await, "resource:test://reports/{year}");
    client.cancel().await.unwrap();
    serving.stop().await;

    analytics.flush().await;
    let statuses = |method| -> Vec<RequestStatus> {
        let requests = sink.requests();
        let answered = requests.iter().filter(|request| request.method == method);
        answered.map(|request| request.status).collect()
    };
    use RequestStatus::{InvalidParams, Ok as Answered, PaymentRequired};
    assert_eq!(
        statuses(Method::PromptsGet),
        [PaymentRequired, Answered, PaymentRequired]
    );
    assert_eq!(
        statuses(Method::ResourcesRead),
        [
            PaymentRequired,
            Answered,
            InvalidParams,
            Answered,
            PaymentRequired
        ]
    );
}
