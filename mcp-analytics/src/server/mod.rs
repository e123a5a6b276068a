//! The [`Server`] trait `#[mcp_server]` implements for the user's type, and the call path it
//! drives: the generated `ServerHandler` methods forward to [`call_tool`], [`list_tools`],
//! [`get_tool`] and [`server_config`]; `call_tool` hands each call to [`Server::dispatch`] as a
//! [`ToolCall`], which runs the tool method and answers with an [`Outcome`]. Prompts, resources
//! and completions go the same way: [`get_prompt`] → [`Server::dispatch_prompt`] with a
//! [`PromptCall`], [`read_resource`] → [`Server::dispatch_resource`] with a [`ResourceCall`],
//! [`complete`] → [`Server::dispatch_completion`] with a [`CompletionCall`]; the list methods,
//! [`subscribe`] and [`unsubscribe`] need only the specs. Every request but `tools/call` is
//! answered inside [`observed`], which records it: [`initialize`], [`discover`], [`ping`] and
//! [`set_level`] too.
//!
//! `serve::stdio` and `serve::http` serve any `Server` that is also an rmcp `ServerHandler`
//! (what `#[mcp_server]` generates). Implementing `Server` by hand is possible but not needed:
//! the macro checks what the hand-written version would get wrong.

mod call;
mod catalog;
mod completion;
mod handler;
mod lifecycle;
mod lists;
mod observe;
mod paid;
mod prompt;
mod resource;
mod subscriptions;
mod tool_panics;

use std::{future::Future, panic::AssertUnwindSafe};

pub use call::{Returned, ToolCall, returns};
pub use catalog::check_completions;
pub use completion::{
    CompletionCall, CompletionReturned, IntoCompletion, complete, completion_returns,
};
use futures::FutureExt;
pub(crate) use handler::record_catalog;
pub use handler::{call_tool, get_tool, list_tools, server_config, set_log_level};
pub use lifecycle::{discover, initialize, ping, set_level};
pub use observe::{Method, observed};
pub use prompt::{
    IntoGetPromptResult, PromptCall, PromptReturned, get_prompt, list_prompts, prompt_returns,
};
pub use resource::{
    IntoReadResourceResult, Reading, ResourceCall, ResourceReturned, list_resource_templates,
    list_resources, read_resource, resource_returns, subscribe, unsubscribe,
};
use rmcp::{
    ErrorData,
    model::{CompleteResult, GetPromptResult, ReadResourceResult},
};
pub use subscriptions::resource_updated;

pub use crate::outcome::Outcome;
use crate::{
    Analytics, Payments,
    spec::{
        CompletionSpec, PromptSpec, ResourceSpec, ResourceTemplateSpec, ServerInfo, ToolList,
        ToolSpec,
    },
};

/// The request context rmcp hands to a server.
pub type RequestContext = crate::context::ServerRequestContext;

/// An MCP server whose tools are recorded (and, when `#[paid]`, gated): what `#[mcp_server]`
/// implements for the type of the impl block it is put on.
///
/// The trait carries what the macro knows at compile time ([`Server::INFO`], [`Server::TOOLS`])
/// and the one generated method, [`Server::dispatch`] (a `match` on the tool name calling your
/// methods). Where calls are recorded and who takes payments default to the process-wide
/// handles; `#[mcp_server(analytics = self.analytics, payments = self.payments)]` overrides
/// [`Server::analytics`] and [`Server::payments`].
///
/// Bound on it to serve any `#[mcp_server]` type, as `serve::stdio` does:
///
/// ```
/// use mcp_analytics::{rmcp::ServerHandler, server::Server};
///
/// fn tool_names<S: Server + ServerHandler>() -> Vec<&'static str> {
///     S::TOOLS.iter().map(|tool| tool.name).collect()
/// }
/// ```
pub trait Server: Send + Sync + Sized + 'static {
    /// Server name, version and instructions.
    const INFO: ServerInfo;
    /// Every tool, in declaration order.
    const TOOLS: &'static [ToolSpec];

    /// Whether calls go to [`Analytics::global`] (no `#[mcp_server(analytics = ...)]`); the serve
    /// helpers then set it up from the environment before serving, failing on bad settings.
    const GLOBAL_ANALYTICS: bool = true;

    /// The cache of rmcp `Tool`s built from [`Server::TOOLS`].
    fn tool_list() -> &'static ToolList;

    /// Where this server's calls are recorded (`#[mcp_server(analytics = ...)]`).
    fn analytics(&self) -> &Analytics {
        Analytics::global()
    }

    /// Whether paid tools use [`Payments::global`] (no `#[mcp_server(payments = ...)]`); the
    /// serve helpers then set it up from the environment before serving.
    const GLOBAL_PAYMENTS: bool = true;

    /// Who takes payments for this server's `#[paid]` tools.
    fn payments(&self) -> &Payments {
        Payments::global()
    }

    /// Runs the tool named by `call` (a `match` on the tool name).
    fn dispatch(&self, call: ToolCall<'_>) -> impl Future<Output = Outcome> + Send;

    /// Every prompt, in declaration order.
    const PROMPTS: &'static [PromptSpec] = &[];
    /// Every resource at a fixed URI, in declaration order.
    const RESOURCES: &'static [ResourceSpec] = &[];
    /// Every resource template, in declaration order (a URI is read by the first it matches).
    const RESOURCE_TEMPLATES: &'static [ResourceTemplateSpec] = &[];
    /// Every completion.
    const COMPLETIONS: &'static [CompletionSpec] = &[];

    /// Runs the prompt named by `prompt` (a `match` on the prompt name).
    fn dispatch_prompt(
        &self,
        prompt: PromptCall<'_>,
    ) -> impl Future<Output = Result<GetPromptResult, ErrorData>> + Send {
        std::future::ready(prompt.unknown())
    }

    /// Reads the resource of `read` (a `match` on the resource's URI or URI template).
    fn dispatch_resource(
        &self,
        read: ResourceCall<'_>,
    ) -> impl Future<Output = Result<ReadResourceResult, ErrorData>> + Send {
        std::future::ready(read.not_found())
    }

    /// Completes the argument of `completion` (a `match` on its prompt or template and
    /// argument).
    fn dispatch_completion(
        &self,
        completion: CompletionCall<'_>,
    ) -> impl Future<Output = Result<CompleteResult, ErrorData>> + Send {
        std::future::ready(completion.none())
    }
}

/// Polls `future` with its panics caught (and quietly logged, as a tool's are): a panic is an
/// internal error.
async fn caught<F: Future>(future: F) -> Result<F::Output, ErrorData> {
    tool_panics::as_tool(AssertUnwindSafe(future).catch_unwind())
        .await
        .map_err(|_| {
            ErrorData::internal_error("the server failed unexpectedly (internal error)", None)
        })
}
