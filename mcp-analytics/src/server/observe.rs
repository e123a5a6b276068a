//! Recording of every MCP request other than `tools/call`: [`observed`] runs the answer to one
//! request and records it. (This pass-through version only runs it; the recording version
//! replaces it.)

use std::future::Future;

use super::{RequestContext, Server};

/// An MCP request method other than `tools/call` (which is recorded in `tool_calls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `initialize`.
    Initialize,
    /// `ping`.
    Ping,
    /// `tools/list`.
    ToolsList,
    /// `prompts/list`.
    PromptsList,
    /// `prompts/get`.
    PromptsGet,
    /// `resources/list`.
    ResourcesList,
    /// `resources/templates/list`.
    ResourceTemplatesList,
    /// `resources/read`.
    ResourcesRead,
    /// `resources/subscribe`.
    ResourcesSubscribe,
    /// `resources/unsubscribe`.
    ResourcesUnsubscribe,
    /// `completion/complete`.
    CompletionComplete,
    /// `logging/setLevel`.
    LoggingSetLevel,
}

impl Method {
    /// The JSON-RPC method name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::ToolsList => "tools/list",
            Method::PromptsList => "prompts/list",
            Method::PromptsGet => "prompts/get",
            Method::ResourcesList => "resources/list",
            Method::ResourceTemplatesList => "resources/templates/list",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesSubscribe => "resources/subscribe",
            Method::ResourcesUnsubscribe => "resources/unsubscribe",
            Method::CompletionComplete => "completion/complete",
            Method::LoggingSetLevel => "logging/setLevel",
        }
    }
}

/// Runs `body` (the answer to one request) and records it: method, target (prompt name, resource
/// URI — redacted by record — or None), status (from the Result / a payment refusal), duration,
/// session, user, client and protocol version (from `context`).
pub async fn observed<S: Server, T>(
    server: &S,
    method: Method,
    target: Option<&str>,
    context: &RequestContext,
    body: impl Future<Output = Result<T, rmcp::ErrorData>>,
) -> Result<T, rmcp::ErrorData> {
    let _ = (server, method, target, context);
    body.await
}
