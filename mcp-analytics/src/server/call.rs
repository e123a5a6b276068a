//! One tool invocation as the generated `dispatch` sees it: [`ToolCall`] deserializes the
//! arguments, runs the user's method with panics caught, and classifies the [`Outcome`].

use std::{future::Future, panic::AssertUnwindSafe};

use futures::FutureExt;
use rmcp::{ErrorData, handler::server::tool::IntoCallToolResult, model::CallToolResponse};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{CallContext, ClientText, event::Status, outcome::Outcome};

/// A call on its way to a tool method.
pub struct ToolCall<'a> {
    name: &'a str,
    arguments: &'a Value,
    context: CallContext,
}

impl<'a> ToolCall<'a> {
    pub(crate) fn new(name: &'a str, arguments: &'a Value, context: CallContext) -> Self {
        Self {
            name,
            arguments,
            context,
        }
    }

    /// The requested tool name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Deserializes the arguments into `A` and runs `tool`; bad arguments become a tool error.
    pub async fn run<A, F, Fut, R>(self, tool: F) -> Outcome
    where
        A: DeserializeOwned,
        F: FnOnce(A, CallContext) -> Fut,
        Fut: Future<Output = R>,
        R: IntoCallToolResult,
    {
        match A::deserialize(self.arguments) {
            Ok(args) => run_caught(tool(args, self.context)).await,
            Err(error) => {
                // Only a failed call pays for finding where: deserialize again, tracking the path.
                let path = serde_path_to_error::deserialize::<_, A>(self.arguments)
                    .err()
                    .map(|tracked| tracked.path().to_string());
                Outcome::invalid_params(&error, path.as_deref())
            }
        }
    }

    /// Runs a tool that takes no arguments (any arguments sent are ignored).
    pub async fn run_without_args<F, Fut, R>(self, tool: F) -> Outcome
    where
        F: FnOnce(CallContext) -> Fut,
        Fut: Future<Output = R>,
        R: IntoCallToolResult,
    {
        run_caught(tool(self.context)).await
    }

    /// The answer for a name no tool has (the name as [`ClientText`]: capped, printable).
    pub fn unknown_tool(self) -> Outcome {
        let message = format!("tool not found: {}", ClientText::new(self.name));
        Outcome {
            response: Err(ErrorData::invalid_params(message.clone(), None)),
            status: Status::UnknownTool,
            error: Some(("unknown_tool".into(), message)),
        }
    }
}

/// A tool method's result, checked to be one rmcp turns into a tool result: what `#[mcp_server]`
/// wraps each awaited method call in (`returns(self.method(args).await)`), spanned at the
/// method's return type, so a type that is not [`IntoCallToolResult`] is one error pointing
/// there. The conversion is not done here: [`ToolCall::run`] does it after the tool's future,
/// outside its panic scope, as for any other result.
pub fn returns<R: IntoCallToolResult>(value: R) -> Returned<R> {
    Returned {
        value,
        convert: R::into_call_tool_result,
    }
}

/// A result passed through [`returns`]: converts like the value it holds. Its conversion needs
/// no bound on `R` (it was checked in [`returns`]), so a wrong type is reported only once.
pub struct Returned<R> {
    value: R,
    convert: fn(R) -> Result<CallToolResponse, ErrorData>,
}

impl<R> IntoCallToolResult for Returned<R> {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        (self.convert)(self.value)
    }
}

async fn run_caught<Fut, R>(future: Fut) -> Outcome
where
    Fut: Future<Output = R>,
    R: IntoCallToolResult,
{
    let caught = super::tool_panics::as_tool(AssertUnwindSafe(future).catch_unwind());
    match crate::context::input_scope(caught).await {
        // The tool asked an MCP 2026-07-28 client for input: that is the call's answer.
        (Ok(_), Some(input_required)) => Outcome::from_response(Ok(input_required.into())),
        (Ok(result), None) => Outcome::from_response(result.into_call_tool_result()),
        (Err(panic), _) => Outcome::panic(panic.as_ref(), super::tool_panics::take_backtrace()),
    }
}
