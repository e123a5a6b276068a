//! One tool invocation as the generated `dispatch` sees it: [`ToolCall`] deserializes the
//! arguments, runs the user's method with panics caught, and classifies the [`Outcome`].

use std::{any::Any, borrow::Cow, future::Future, panic::AssertUnwindSafe};

use futures::FutureExt;
use rmcp::{
    ErrorData,
    handler::server::tool::IntoCallToolResult,
    model::{CallToolResponse, CallToolResult, ContentBlock, ErrorCode},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::invalid_params;
use crate::{CallContext, ClientText, event::Status};

/// A call on its way to a tool method.
pub struct ToolCall<'a> {
    name: &'a str,
    arguments: &'a Value,
    context: CallContext,
}

/// How a call ended: the response for the client and its classification for analytics.
pub struct Outcome {
    pub(crate) response: Result<CallToolResponse, ErrorData>,
    pub(crate) status: Status,
    /// `(error_type, error_message)` known at this point (tool-error text comes from the result).
    pub(crate) error: Option<(Cow<'static, str>, String)>,
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

async fn run_caught<Fut, R>(future: Fut) -> Outcome
where
    Fut: Future<Output = R>,
    R: IntoCallToolResult,
{
    match super::tool_panics::as_tool(AssertUnwindSafe(future).catch_unwind()).await {
        Ok(result) => Outcome::from_response(result.into_call_tool_result()),
        Err(panic) => Outcome::panic(panic.as_ref()),
    }
}

impl Outcome {
    pub(crate) fn from_response(response: Result<CallToolResponse, ErrorData>) -> Self {
        let (status, error) = match &response {
            Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => (
                Status::ToolError,
                Some(("tool_error".into(), String::new())),
            ),
            Ok(CallToolResponse::InputRequired(_)) => (Status::InputRequired, None),
            Ok(_) => (Status::Ok, None),
            Err(error) => (
                Status::ProtocolError,
                Some((error.code.0.to_string().into(), error.message.to_string())),
            ),
        };
        Outcome {
            response,
            status,
            error,
        }
    }

    /// The caller sees serde's message (it repeats their own value); what is recorded names the
    /// field and the expected type but never the value (see [`invalid_params::described`]).
    fn invalid_params(error: &serde_json::Error, path: Option<&str>) -> Self {
        let text = format!("failed to deserialize parameters: {error}");
        Outcome {
            response: Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into()),
            status: Status::InvalidParams,
            error: Some((
                "invalid_params".into(),
                invalid_params::described(&error.to_string(), path),
            )),
        }
    }

    fn panic(payload: &(dyn Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".to_owned());
        let text = "the tool failed unexpectedly (internal error); the failure was recorded";
        Outcome {
            response: Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into()),
            status: Status::Panic,
            error: Some(("panic".into(), message)),
        }
    }

    /// A call the payment gate answered without running the tool.
    pub(crate) fn refused(
        response: impl Into<CallToolResponse>,
        status: Status,
        error_type: &'static str,
        message: String,
    ) -> Self {
        Outcome {
            response: Ok(response.into()),
            status,
            error: Some((error_type.into(), message)),
        }
    }

    pub(crate) fn cancelled() -> Self {
        Outcome {
            response: Err(ErrorData::new(ErrorCode(-32800), "request cancelled", None)),
            status: Status::Cancelled,
            error: Some((
                "cancelled".into(),
                "the client cancelled the request".into(),
            )),
        }
    }
}
