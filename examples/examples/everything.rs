//! The reference server of the official MCP conformance suite (`@modelcontextprotocol/conformance`),
//! written with `#[mcp_server]` and `#[tool]`, every call recorded: each tool answers exactly
//! what the suite's scenarios check (text, image, audio and embedded-resource content, tool
//! errors, log and progress notifications, sampling and elicitation requests, a JSON Schema
//! 2020-12 input schema), `logging/setLevel` sets the level its log messages honour, and its
//! prompts (`test_simple_prompt`, `test_prompt_with_arguments`,
//! `test_prompt_with_embedded_resource`, `test_prompt_with_image`), resources
//! (`test://static-text`, `test://static-binary`, the template `test://template/{id}/data`,
//! `test://watched-resource`, which takes subscriptions and changes every 3 seconds) and
//! completion of `test_prompt_with_arguments`' `arg1` are `#[prompt]`, `#[resource]` and
//! `#[complete]` methods.
//!
//! ```text
//! cargo run --example everything                  # MCP at http://127.0.0.1:8000/mcp
//! npx @modelcontextprotocol/conformance server --url http://127.0.0.1:8000/mcp --scenario tools-list
//! cargo run --example everything -- --stdio
//! ```

// The suite tests sampling, which MCP 2026-07-28 deprecates (SEP-2577); rmcp marks its types so.
#![allow(deprecated)]

use std::time::Duration;

use mcp_analytics::{
    CallContext, ClientRequestError, LogLevel, complete, mcp_server, prompt, resource,
    rmcp::model::{
        CallToolResult, ContentBlock, CreateMessageRequestParams, ElicitRequestParams,
        ElicitResult, ElicitationSchema, PromptMessage, ResourceContents, Role, SamplingMessage,
    },
    serde_json::{self, json},
    tool,
};
use mcp_analytics_examples::Transport;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A 1×1 red PNG.
const TEST_IMAGE_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV file.
const TEST_AUDIO_BASE64: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

#[derive(Deserialize, JsonSchema)]
struct SamplingArgs {
    /// The prompt to send to the LLM
    prompt: String,
}

#[derive(Deserialize, JsonSchema)]
struct ElicitationArgs {
    /// The message to show the user
    message: String,
}

/// Arguments with JSON Schema 2020-12 features: `$schema`, `$defs` and `additionalProperties`.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct JsonSchema2020Args {
    name: Option<String>,
    address: Option<Address>,
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[schemars(rename = "address")]
struct Address {
    street: Option<String>,
    city: Option<String>,
}

/// The conformance suite's "everything" server.
#[derive(Clone, Copy, Debug, Default)]
struct Everything;

#[mcp_server(name = "mcp-analytics-everything", version = "1.0.0")]
impl Everything {
    /// Tests simple text content response
    #[tool]
    async fn test_simple_text(&self) -> String {
        "This is a simple text response for testing.".into()
    }

    /// Tests image content response
    #[tool]
    async fn test_image_content(&self) -> ContentBlock {
        ContentBlock::image(TEST_IMAGE_BASE64, "image/png")
    }

    /// Tests audio content response
    #[tool]
    async fn test_audio_content(&self) -> ContentBlock {
        ContentBlock::audio(TEST_AUDIO_BASE64, "audio/wav")
    }

    /// Tests embedded resource content response
    #[tool]
    async fn test_embedded_resource(&self) -> ContentBlock {
        ContentBlock::resource(
            ResourceContents::text(
                "This is an embedded resource content.",
                "test://embedded-resource",
            )
            .with_mime_type("text/plain"),
        )
    }

    /// Tests response with multiple content types (text, image, resource)
    #[tool]
    async fn test_multiple_content_types(&self) -> CallToolResult {
        CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
            ContentBlock::resource(
                ResourceContents::text(
                    json!({"test": "data", "value": 123}).to_string(),
                    "test://mixed-content-resource",
                )
                .with_mime_type("application/json"),
            ),
        ])
    }

    /// Tests tool that emits log messages during execution
    #[tool]
    async fn test_tool_with_logging(&self, cx: CallContext) -> Result<String, ClientRequestError> {
        cx.log(LogLevel::Info, "Tool execution started").await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        cx.log(LogLevel::Info, "Tool processing data").await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        cx.log(LogLevel::Info, "Tool execution completed").await?;
        Ok("Tool with logging executed successfully".into())
    }

    /// Tests tool that reports progress notifications
    #[tool]
    async fn test_tool_with_progress(&self, cx: CallContext) -> Result<String, ClientRequestError> {
        for step in [0.0, 50.0, 100.0] {
            if step > 0.0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let message = format!("Completed step {step} of 100");
            cx.progress(step, Some(100.0), Some(&message)).await?;
        }
        Ok(cx
            .progress_token()
            .map_or_else(|| "no progress token".into(), |token| token.0.to_string()))
    }

    /// Tests error response handling
    #[tool]
    async fn test_error_handling(&self) -> Result<String, String> {
        Err("This tool intentionally returns an error for testing".into())
    }

    /// Tests SSE stream disconnection and client reconnection (SEP-1699); answers on the
    /// request's own stream (the suite then reports that the stream was not closed mid-call)
    #[tool]
    async fn test_reconnection(&self) -> String {
        tokio::time::sleep(Duration::from_millis(100)).await;
        "Reconnection test completed successfully. If you received this, the client properly \
         reconnected after stream closure."
            .into()
    }

    /// Tests server-initiated sampling (LLM completion request)
    #[tool]
    async fn test_sampling(
        &self,
        args: SamplingArgs,
        cx: CallContext,
    ) -> Result<String, ClientRequestError> {
        let request =
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text(args.prompt)], 100);
        let result = cx.sample(request).await?;
        let text = result
            .message
            .content
            .first()
            .and_then(|content| content.as_text())
            .map_or("No response", |text| text.text.as_str());
        Ok(format!("LLM response: {text}"))
    }

    /// Tests server-initiated elicitation (user input request)
    #[tool]
    async fn test_elicitation(
        &self,
        args: ElicitationArgs,
        cx: CallContext,
    ) -> Result<String, ClientRequestError> {
        let schema = json!({
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            "required": ["username", "email"],
        });
        let result = cx.elicit(form(args.message, schema)).await?;
        Ok(format!("User response: {}", describe(&result)))
    }

    /// Tests elicitation with default values per SEP-1034
    #[tool]
    async fn test_elicitation_sep1034_defaults(
        &self,
        cx: CallContext,
    ) -> Result<String, ClientRequestError> {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": true},
            },
            "required": [],
        });
        let message = "Please review and update the form fields with defaults";
        let result = cx.elicit(form(message, schema)).await?;
        Ok(format!("Elicitation completed: {}", describe(&result)))
    }

    /// Tests elicitation with enum schema improvements per SEP-1330
    #[tool]
    async fn test_elicitation_sep1330_enums(
        &self,
        cx: CallContext,
    ) -> Result<String, ClientRequestError> {
        let titled = |titles: [&str; 3]| {
            titles
                .iter()
                .enumerate()
                .map(|(index, title)| json!({"const": format!("value{}", index + 1), "title": title}))
                .collect::<Vec<_>>()
        };
        let schema = json!({
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"],
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": titled(["First Option", "Second Option", "Third Option"]),
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {"anyOf": titled(["First Choice", "Second Choice", "Third Choice"])},
                },
            },
            "required": [],
        });
        let message = "Please select options from the enum fields";
        let result = cx.elicit(form(message, schema)).await?;
        Ok(format!("Elicitation completed: {}", describe(&result)))
    }

    /// Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)
    #[tool]
    async fn json_schema_2020_12_tool(&self, args: JsonSchema2020Args) -> String {
        let args = serde_json::to_string(&args).unwrap_or_default();
        format!("JSON Schema 2020-12 tool called with: {args}")
    }

    /// A simple prompt without arguments
    #[prompt(title = "Simple Test Prompt")]
    async fn test_simple_prompt(&self) -> String {
        "This is a simple prompt for testing.".into()
    }

    /// A prompt with required arguments
    #[prompt(title = "Prompt With Arguments")]
    async fn test_prompt_with_arguments(&self, args: PromptArgs) -> String {
        format!(
            "Prompt with arguments: arg1='{}', arg2='{}'",
            args.arg1, args.arg2
        )
    }

    /// A prompt that includes an embedded resource
    #[prompt(title = "Prompt With Embedded Resource")]
    async fn test_prompt_with_embedded_resource(&self, args: EmbedArgs) -> Vec<PromptMessage> {
        let resource = ResourceContents::text("Embedded resource content for testing.", args.uri)
            .with_mime_type("text/plain");
        vec![
            PromptMessage::new(Role::User, ContentBlock::resource(resource)),
            PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
        ]
    }

    /// A prompt that includes image content
    #[prompt(title = "Prompt With Image")]
    async fn test_prompt_with_image(&self) -> Vec<PromptMessage> {
        vec![
            PromptMessage::new(
                Role::User,
                ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
            ),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ]
    }

    /// Values for `arg1` of `test_prompt_with_arguments` that start with what was typed
    #[complete(prompt = "test_prompt_with_arguments", argument = "arg1")]
    async fn arg1_values(&self, value: &str) -> Vec<&'static str> {
        ["testValue1", "testValue2", "paris", "park"]
            .into_iter()
            .filter(|candidate| candidate.starts_with(value))
            .collect()
    }

    /// A static text resource for testing
    #[resource(
        uri = "test://static-text",
        name = "static-text",
        title = "Static Text Resource",
        mime_type = "text/plain"
    )]
    async fn static_text(&self) -> String {
        "This is the content of the static text resource.".into()
    }

    /// A static binary resource (image) for testing
    #[resource(
        uri = "test://static-binary",
        name = "static-binary",
        title = "Static Binary Resource",
        mime_type = "image/png"
    )]
    async fn static_binary(&self) -> ResourceContents {
        ResourceContents::blob(TEST_IMAGE_BASE64, "test://static-binary")
            .with_mime_type("image/png")
    }

    /// A resource template with an id parameter
    #[resource(
        uri_template = "test://template/{id}/data",
        name = "template",
        title = "Resource Template",
        mime_type = "application/json"
    )]
    async fn template(&self, id: String) -> String {
        json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string()
    }

    /// A resource that auto-updates every 3 seconds
    #[resource(
        uri = "test://watched-resource",
        name = "watched-resource",
        title = "Watched Resource",
        mime_type = "text/plain",
        subscribe
    )]
    async fn watched_resource(&self) -> String {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        format!("Watched resource content, version {}", seconds / 3)
    }
}

/// `test_prompt_with_arguments`' arguments.
#[derive(Deserialize, JsonSchema)]
struct PromptArgs {
    /// First test argument
    arg1: String,
    /// Second test argument
    arg2: String,
}

/// `test_prompt_with_embedded_resource`'s argument.
#[derive(Deserialize, JsonSchema)]
struct EmbedArgs {
    /// URI of the resource to embed
    #[serde(rename = "resourceUri")]
    uri: String,
}

/// A form elicitation asking `message` with `schema` (a JSON object schema the suite checks
/// property by property).
fn form(message: impl Into<String>, schema: serde_json::Value) -> ElicitRequestParams {
    let requested_schema: ElicitationSchema = serde_json::from_value(schema)
        .expect("rmcp's ElicitationSchema expresses every schema the suite sends");
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: message.into(),
        requested_schema,
    }
}

/// `action=accept, content={...}`, as the reference server words an elicitation's answer.
fn describe(result: &ElicitResult) -> String {
    let action = serde_json::to_value(&result.action).unwrap_or_default();
    let content = result.content.clone().unwrap_or_else(|| json!({}));
    format!(
        "action={}, content={content}",
        action.as_str().unwrap_or("unknown")
    )
}

/// Tells the subscribers of `test://watched-resource` that it changed, every 3 seconds.
async fn watch() {
    let mut every = tokio::time::interval(Duration::from_secs(3));
    loop {
        every.tick().await;
        mcp_analytics::resource_updated::<Everything>("test://watched-resource").await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let transport = mcp_analytics_examples::transport_from_args(
        "everything",
        "The MCP conformance suite's reference server, with analytics: every call is recorded.",
    );
    mcp_analytics_examples::init_logging();
    tokio::spawn(watch());
    match transport {
        Transport::Stdio => {
            let database = mcp_analytics::Analytics::init_global()?.database();
            eprintln!("{}", mcp_analytics_examples::stdio_dashboard_hint(database));
            mcp_analytics::serve::stdio(Everything).await?;
        }
        Transport::Http(addr) => mcp_analytics::serve::http(|| Everything, addr).await?,
    }
    Ok(())
}
