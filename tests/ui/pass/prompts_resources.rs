//! Every supported prompt, resource and completion shape compiles, and the server advertises
//! exactly the capabilities it uses.
use mcp_analytics::{
    CallContext, Json, complete, mcp_server, paid, prompt, resource,
    rmcp::{
        ErrorData, ServerHandler,
        model::{
            CompleteResult, CompletionInfo, GetPromptResult, PromptMessage, ReadResourceResult,
            ResourceContents, Role,
        },
    },
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct ReviewArgs {
    /// The code.
    code: String,
    language: Option<String>,
}

#[derive(serde::Serialize)]
struct Item {
    id: u64,
}

struct Server;

#[mcp_server(name = "everything")]
impl Server {
    /// One user message.
    #[prompt]
    async fn text(&self) -> String {
        "hello".into()
    }

    #[prompt(name = "review", title = "Review", description = "Reviews code")]
    async fn review(&self, args: ReviewArgs, cx: CallContext) -> Vec<PromptMessage> {
        let language = args.language.unwrap_or_default();
        vec![PromptMessage::new_text(Role::User, format!("{language} {} {:?}", args.code, cx.user_id()))]
    }

    #[mcp_analytics::prompt]
    async fn message(&self, cx: CallContext) -> PromptMessage {
        PromptMessage::new_text(Role::Assistant, cx.session_id().unwrap_or_default())
    }

    #[prompt]
    async fn whole(&self) -> Result<GetPromptResult, ErrorData> {
        Ok(GetPromptResult::new(Vec::new()).with_description("own description"))
    }

    #[prompt]
    async fn borrowed(&self) -> &'static str {
        "static"
    }

    #[prompt]
    #[paid(checkout = { mode = "subscription", success_url = "https://example.com/ok",
                        line_items = [{ price = "price_sub" }] })]
    async fn premium(&self, args: ReviewArgs) -> String {
        args.code
    }

    #[resource(uri = "test://text", mime_type = "text/markdown", subscribe)]
    async fn markdown(&self) -> String {
        "# title".into()
    }

    #[resource(uri = "test://static")]
    async fn fixed(&self) -> &'static str {
        "fixed"
    }

    #[resource(uri = "test://binary", name = "binary", title = "Binary", description = "Bytes")]
    async fn binary(&self, cx: CallContext) -> Vec<u8> {
        cx.user_id().unwrap_or_default().as_bytes().to_vec()
    }

    #[resource(uri = "test://contents")]
    async fn contents(&self) -> Vec<ResourceContents> {
        vec![ResourceContents::text("a", "test://contents")]
    }

    #[resource(uri = "test://one")]
    async fn one(&self) -> ResourceContents {
        ResourceContents::text("a", "test://one")
    }

    #[resource(uri = "test://result")]
    async fn result(&self) -> Result<ReadResourceResult, ErrorData> {
        Err(ErrorData::internal_error("down", None))
    }

    #[resource(uri_template = "test://items/{id}")]
    async fn item(&self, id: u64) -> Json<Item> {
        Json(Item { id })
    }

    #[resource(uri_template = "file:///{owner}/{+path}", mime_type = "text/plain", subscribe)]
    #[paid(checkout = { mode = "payment", success_url = "https://example.com/ok",
                        line_items = [{ price = "price_file", quantity = 10 }] })]
    async fn file(&self, path: String, owner: String, cx: CallContext) -> Result<String, ErrorData> {
        Ok(format!("{owner}/{path} {:?}", cx.user_id()))
    }

    #[complete(prompt = "review", argument = "language")]
    async fn languages(&self, value: &str) -> Vec<&'static str> {
        ["rust", "python"].into_iter().filter(|l| l.starts_with(value)).collect()
    }

    #[complete(prompt = "review", argument = "code")]
    async fn codes(&self, value: String, cx: CallContext) -> Result<CompletionInfo, ErrorData> {
        CompletionInfo::new(vec![value, cx.session_id().unwrap_or_default().to_owned()])
            .map_err(|e| ErrorData::internal_error(e, None))
    }

    #[complete(resource = "test://items/{id}", argument = "id")]
    async fn ids(&self) -> Vec<String> {
        vec!["1".into(), "2".into()]
    }

    #[complete(resource = "file:///{owner}/{+path}", argument = "owner")]
    async fn owners(&self, _value: &str) -> CompleteResult {
        CompleteResult::default()
    }

    /// Tools still work next to them.
    #[mcp_analytics::tool]
    async fn touch(&self) -> String {
        let told = mcp_analytics::resource_updated::<Self>("test://text").await;
        told.to_string()
    }
}

struct OnlyPrompts;

#[mcp_server]
impl OnlyPrompts {
    #[prompt]
    async fn hello(&self) -> String {
        "hello".into()
    }
}

fn main() {
    let capabilities = Server.get_info().capabilities;
    assert!(capabilities.tools.is_some() && capabilities.prompts.is_some());
    assert_eq!(capabilities.resources.unwrap().subscribe, Some(true));
    assert!(capabilities.completions.is_some());

    let capabilities = OnlyPrompts.get_info().capabilities;
    assert!(capabilities.prompts.is_some());
    assert!(capabilities.tools.is_none() && capabilities.resources.is_none());
    assert!(capabilities.completions.is_none());
}
