//! How a tool call ended: the response for the client and its classification for analytics
//! ([`Outcome`]), built by the dispatch (results, invalid parameters, panics, cancellation)
//! and by the payment gate (refusals).

mod invalid_params;

pub use invalid_params::ParamProblem;
pub(crate) use invalid_params::classify as classify_invalid_params;

use std::{any::Any, borrow::Cow};

use rmcp::{
    ErrorData,
    model::{CallToolResponse, CallToolResult, ContentBlock, ErrorCode},
};

use crate::event::Status;

/// How a call ended: the response for the client and its classification for analytics.
pub struct Outcome {
    pub(crate) response: Result<CallToolResponse, ErrorData>,
    pub(crate) status: Status,
    /// `(error_type, error_message)` known at this point (tool-error text comes from the result).
    pub(crate) error: Option<(Cow<'static, str>, String)>,
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
    pub(crate) fn invalid_params(error: &serde_json::Error, path: Option<&str>) -> Self {
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

    /// A tool's panic, recorded with its message and, when known, the tool's frames of the
    /// backtrace (both sanitized by the writer).
    pub(crate) fn panic(payload: &(dyn Any + Send), frames: Option<String>) -> Self {
        let message = match frames {
            Some(frames) => format!("{}\n\nbacktrace:\n{frames}", panic_message(payload)),
            None => panic_message(payload),
        };
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

/// The message a panic was raised with (unsanitized: it may quote secrets).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}
