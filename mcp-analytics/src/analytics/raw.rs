//! [`RawCall`]: a finished call as the call path hands it over (nothing formatted, nothing
//! sanitized yet), and its conversion into the stored [`ToolCallEvent`] on the writer thread.

use std::{borrow::Cow, time::Duration};

use rmcp::{ErrorData, model::CallToolResponse};
use serde_json::Value;

use crate::{
    ClientText, Sanitizer,
    capture::Capture,
    client_text::client_string,
    event::{Status, ToolCallEvent, Transport},
    outcome::Outcome,
    spec::{ServerInfo, ToolSpec},
};

/// A finished call before sanitization: what the call path hands to the queue.
pub(crate) struct RawCall {
    pub(super) ts_ms: i64,
    server: &'static ServerInfo,
    specs: &'static [ToolSpec],
    pub(crate) tool: Cow<'static, str>,
    pub(crate) arguments: Value,
    capture: Capture,
    duration: Duration,
    status: Status,
    error: Option<(Cow<'static, str>, String)>,
    result: Option<Result<CallToolResponse, ErrorData>>,
}

impl RawCall {
    /// A call of `tool` on the server described by `server` and `specs`.
    pub(crate) fn new(
        server: &'static ServerInfo,
        specs: &'static [ToolSpec],
        tool: Cow<'static, str>,
        arguments: Value,
        capture: Capture,
    ) -> Box<Self> {
        // A known tool's name is the spec's `&'static str`; the request's copy is freed here, on
        // the calling thread, instead of on the writer's.
        let tool = match specs.iter().find(|spec| spec.name == tool) {
            Some(spec) => Cow::Borrowed(spec.name),
            None => tool,
        };
        Box::new(RawCall {
            // One clock reading for both the millisecond column and the span's start.
            ts_ms: (capture.started_ns / 1_000_000) as i64,
            server,
            specs,
            tool,
            arguments,
            capture,
            duration: Duration::ZERO,
            status: Status::Ok,
            error: None,
            result: None,
        })
    }

    /// Fills in how the call ended; keeps a copy of the response only for tracked results.
    pub(crate) fn complete(&mut self, duration: Duration, outcome: &Outcome) {
        self.duration = duration;
        self.status = outcome.status;
        self.error.clone_from(&outcome.error);
        // An invalid-params answer repeats the caller's value; its value-free description is in
        // the error message instead.
        if self.spec().is_none_or(|spec| spec.track_results)
            && outcome.response.is_ok()
            && outcome.status != Status::InvalidParams
        {
            self.result = Some(outcome.response.clone());
        }
    }

    fn spec(&self) -> Option<&'static ToolSpec> {
        self.specs.iter().find(|spec| spec.name == self.tool)
    }

    /// The stored form: ids formatted, client-chosen strings made [`ClientText`], everything that
    /// may hold secrets sanitized.
    pub(super) fn into_event(self, id: String, sanitizer: &Sanitizer) -> ToolCallEvent {
        let redact = self.spec().map_or(&[][..], |spec| spec.redact);
        let result_json = match &self.result {
            Some(Ok(response)) => response_json(response),
            _ => None,
        };
        let (error_type, mut error_message) = match self.error {
            Some((kind, message)) => (
                Some(kind.into_owned()),
                (!message.is_empty()).then_some(message),
            ),
            None => (None, None),
        };
        if self.status == Status::ToolError && error_message.is_none() {
            error_message = result_json.as_ref().and_then(first_text).map(str::to_owned);
        }
        let caller = Caller::from(self.capture, sanitizer);
        ToolCallEvent {
            id,
            ts_ms: self.ts_ms,
            server_name: self.server.name.to_owned(),
            server_version: self.server.version.to_owned(),
            tool: client_string(self.tool.into_owned()),
            user_id: caller.user_id,
            user_email: caller.user_email,
            user_name: caller.user_name,
            session_id: caller.session_id,
            client_name: caller.client_name,
            client_version: caller.client_version,
            protocol_version: caller.protocol_version,
            transport: caller.transport,
            request_id: caller.request_id,
            duration_us: u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX),
            status: self.status,
            error_type,
            error_message: error_message.map(|message| sanitizer.text_with_keys(&message, redact)),
            params: Some(sanitizer.json_text(&self.arguments, redact)),
            result: result_json.map(|result| sanitizer.json_text(&result, redact)),
            ts_ns: Some(caller.ts_ns),
            traceparent: caller.traceparent,
            tracestate: caller.tracestate,
        }
    }
}

/// Who called and how, as stored: ids formatted, client-chosen strings made [`ClientText`],
/// the user's details as configured. Shared by tool calls and the other requests.
pub(super) struct Caller {
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub user_name: Option<String>,
    pub session_id: Option<String>,
    pub client_name: Option<String>,
    pub client_version: Option<String>,
    pub protocol_version: Option<String>,
    pub transport: Transport,
    pub request_id: Option<String>,
    pub ts_ns: u64,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl Caller {
    pub(super) fn from(capture: Capture, sanitizer: &Sanitizer) -> Self {
        let (user_email, user_name) = capture.user_details.map_or((None, None), |details| {
            let (email, name) = *details;
            (
                email.and_then(|email| sanitizer.user_email(&email)),
                name.and_then(|name| sanitizer.user_name(&name)),
            )
        });
        let client = capture.client.implementation();
        Caller {
            user_id: capture.user_id.map(|id| id.to_string()),
            user_email,
            user_name,
            session_id: capture.session.map(|session| session.to_string()),
            client_name: client.map(|client| ClientText::new(&client.name).into_string()),
            client_version: client.map(|client| ClientText::new(&client.version).into_string()),
            protocol_version: capture
                .protocol_version
                .map(|version| client_string(version.to_string())),
            transport: capture.transport,
            request_id: Some(client_string(capture.request_id.to_string())),
            ts_ns: capture.started_ns,
            traceparent: capture.trace.traceparent,
            tracestate: capture.trace.tracestate,
        }
    }
}

fn response_json(response: &CallToolResponse) -> Option<Value> {
    match response {
        CallToolResponse::Complete(result) => serde_json::to_value(result).ok(),
        CallToolResponse::InputRequired(input) => serde_json::to_value(input).ok(),
        CallToolResponse::Task(task) => serde_json::to_value(task).ok(),
        _ => None,
    }
}

/// The text of the first text block of a serialized `CallToolResult`.
fn first_text(result: &Value) -> Option<&str> {
    result
        .get("content")?
        .as_array()?
        .iter()
        .find_map(|block| block.get("text")?.as_str())
}
