//! What one tool call is, as stored and exported: [`ToolCallEvent`], its [`Status`] and
//! [`Transport`]; every other request is a [`RequestEvent`] (`request`). Events are already
//! sanitized when anyone outside the recorder sees them.

mod request;

use serde::{Deserialize, Serialize};

pub use request::{Method, RequestEvent, RequestStatus};

/// How a tool call ended. Stored as the `status` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The tool returned a result without `isError`.
    Ok,
    /// The tool returned a result with `isError: true` (including `Err` values it returned).
    ToolError,
    /// The arguments did not deserialize into the tool's argument type.
    InvalidParams,
    /// No tool of that name exists.
    UnknownTool,
    /// The call ended in a JSON-RPC error (the tool returned `Err(ErrorData)`).
    ProtocolError,
    /// The client cancelled the request (or went away) before the tool finished.
    Cancelled,
    /// The tool panicked; the caller got a tool error and the server kept serving.
    Panic,
    /// The tool asked the client for more input (MCP 2026-07-28 `InputRequiredResult`).
    InputRequired,
    /// A paid tool did not run: the caller has not paid (or is not signed in); the answer
    /// carries a checkout link.
    PaymentRequired,
    /// A paid tool did not run because payments could not be checked (fail closed).
    PaymentUnavailable,
}

impl Status {
    /// Every status, in a fixed order.
    pub const ALL: [Status; 10] = [
        Status::Ok,
        Status::ToolError,
        Status::InvalidParams,
        Status::UnknownTool,
        Status::ProtocolError,
        Status::Cancelled,
        Status::Panic,
        Status::InputRequired,
        Status::PaymentRequired,
        Status::PaymentUnavailable,
    ];

    /// The stored name (`ok`, `tool_error`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::ToolError => "tool_error",
            Status::InvalidParams => "invalid_params",
            Status::UnknownTool => "unknown_tool",
            Status::ProtocolError => "protocol_error",
            Status::Cancelled => "cancelled",
            Status::Panic => "panic",
            Status::InputRequired => "input_required",
            Status::PaymentRequired => "payment_required",
            Status::PaymentUnavailable => "payment_unavailable",
        }
    }

    /// Whether this status counts as an error in rates and rollups.
    pub fn is_error(self) -> bool {
        !matches!(
            self,
            Status::Ok | Status::InputRequired | Status::PaymentRequired
        )
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    /// Parses a stored name (`ok`, `tool_error`, …).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| format!("unknown status `{name}`"))
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the call reached the server. Stored as the `transport` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A byte stream: stdio (or any `AsyncRead + AsyncWrite`, such as an in-process duplex).
    Stdio,
    /// Streamable HTTP.
    Http,
}

impl Transport {
    /// The stored name (`stdio` or `http`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        }
    }
}

/// One `tools/call`, sanitized: the row stored in `tool_calls` and what exporters receive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCallEvent {
    /// Unique, time-ordered id (UUIDv7).
    pub id: String,
    /// When the call started, in unix milliseconds.
    pub ts_ms: i64,
    /// The server's name (from `#[mcp_server(name)]` or the crate name).
    pub server_name: String,
    /// The server's version.
    pub server_version: String,
    /// The tool name the client asked for.
    pub tool: String,
    /// The authenticated user (`Identity::subject`), if any.
    pub user_id: Option<String>,
    /// The user's email as configured by `MCP_ANALYTICS_USER_DETAILS` (masked by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    /// The user's display name as configured by `MCP_ANALYTICS_USER_DETAILS` (masked by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The MCP session. On sessionless protocols the caller's derived key (`d-` and 16 hex
    /// digits), which the store replaces with a session split by inactivity and W3C trace.
    pub session_id: Option<String>,
    /// The client's implementation name, if known.
    pub client_name: Option<String>,
    /// The client's implementation version, if known.
    pub client_version: Option<String>,
    /// The negotiated or per-request MCP protocol version.
    pub protocol_version: Option<String>,
    /// How the call arrived.
    pub transport: Transport,
    /// The JSON-RPC request id.
    pub request_id: Option<String>,
    /// Wall time spent in the call, in microseconds.
    pub duration_us: u64,
    /// How the call ended.
    pub status: Status,
    /// A short error class (`tool_error`, `invalid_params`, a JSON-RPC code, `panic`, …).
    pub error_type: Option<String>,
    /// The error text, redacted.
    pub error_message: Option<String>,
    /// The arguments as JSON text, redacted and size-capped.
    pub params: Option<String>,
    /// The result as JSON text, redacted and size-capped; `None` with `track_results = false`.
    pub result: Option<String>,
    /// When the call started, in unix nanoseconds (finer than `ts_ms`; span start times). Not
    /// stored in SQLite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_ns: Option<u64>,
    /// The W3C `traceparent` the client sent (request `params._meta`, else the HTTP header), as
    /// received; exporters validate it. Not stored in SQLite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The W3C `tracestate` sent with that `traceparent`. Not stored in SQLite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}
