//! What one MCP request other than `tools/call` is, as stored and exported: [`RequestEvent`],
//! its [`Method`] and [`RequestStatus`]. Tool calls are [`super::ToolCallEvent`]s.

use std::{borrow::Cow, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Transport;

/// An MCP request method other than `tools/call` (which is recorded in `tool_calls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Method {
    /// `initialize`: the legacy handshake (client, capabilities, protocol).
    Initialize,
    /// `ping`.
    Ping,
    /// `tools/list`.
    ToolsList,
    /// `prompts/list`.
    PromptsList,
    /// `prompts/get` (target: the prompt name).
    PromptsGet,
    /// `resources/list`.
    ResourcesList,
    /// `resources/templates/list`.
    ResourceTemplatesList,
    /// `resources/read` (target: the resource URI).
    ResourcesRead,
    /// `resources/subscribe` (target: the resource URI).
    ResourcesSubscribe,
    /// `resources/unsubscribe` (target: the resource URI).
    ResourcesUnsubscribe,
    /// `completion/complete` (target: the prompt name or resource template URI completed).
    CompletionComplete,
    /// `logging/setLevel` (target: the level).
    LoggingSetLevel,
    /// `server/discover`: MCP 2026-07-28's opener, in place of `initialize`.
    Discover,
}

impl Method {
    /// Every method, in a fixed order.
    pub const ALL: [Method; 13] = [
        Method::Initialize,
        Method::Ping,
        Method::ToolsList,
        Method::PromptsList,
        Method::PromptsGet,
        Method::ResourcesList,
        Method::ResourceTemplatesList,
        Method::ResourcesRead,
        Method::ResourcesSubscribe,
        Method::ResourcesUnsubscribe,
        Method::CompletionComplete,
        Method::LoggingSetLevel,
        Method::Discover,
    ];

    /// The JSON-RPC method name (`prompts/get`, …), as stored.
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
            Method::Discover => "server/discover",
        }
    }
}

impl FromStr for Method {
    type Err = String;

    /// Parses a JSON-RPC method name (`prompts/get`, …).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|method| method.as_str() == name)
            .ok_or_else(|| format!("unknown method `{name}`"))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Cow::<'de, str>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// How a request ended: `ok`, the class of its JSON-RPC error, or a payment refusal. Stored as
/// the `status` column of `requests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestStatus {
    /// Answered with a result.
    Ok,
    /// JSON-RPC -32602: bad parameters, or an unknown prompt name.
    InvalidParams,
    /// JSON-RPC -32601: the server does not serve this method.
    MethodNotFound,
    /// MCP -32002: no resource has this URI.
    ResourceNotFound,
    /// JSON-RPC -32603.
    InternalError,
    /// Any other JSON-RPC error (the code is the `error_type`).
    ProtocolError,
    /// The client cancelled the request (or went away) before it was answered.
    Cancelled,
    /// The server's code panicked; the client got an internal error.
    Panic,
    /// A paid prompt or resource was not served: the caller has not paid (or is not signed
    /// in); the error's data carries the checkout link.
    PaymentRequired,
    /// A paid prompt or resource was not served because payments could not be checked.
    PaymentUnavailable,
}

impl RequestStatus {
    /// Every status, in a fixed order.
    pub const ALL: [RequestStatus; 10] = [
        RequestStatus::Ok,
        RequestStatus::InvalidParams,
        RequestStatus::MethodNotFound,
        RequestStatus::ResourceNotFound,
        RequestStatus::InternalError,
        RequestStatus::ProtocolError,
        RequestStatus::Cancelled,
        RequestStatus::Panic,
        RequestStatus::PaymentRequired,
        RequestStatus::PaymentUnavailable,
    ];

    /// The stored name (`ok`, `invalid_params`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Ok => "ok",
            RequestStatus::InvalidParams => "invalid_params",
            RequestStatus::MethodNotFound => "method_not_found",
            RequestStatus::ResourceNotFound => "resource_not_found",
            RequestStatus::InternalError => "internal_error",
            RequestStatus::ProtocolError => "protocol_error",
            RequestStatus::Cancelled => "cancelled",
            RequestStatus::Panic => "panic",
            RequestStatus::PaymentRequired => "payment_required",
            RequestStatus::PaymentUnavailable => "payment_unavailable",
        }
    }

    /// Whether this status counts as an error in rates and rollups (as for tool calls, a
    /// payment request is not one).
    pub fn is_error(self) -> bool {
        !matches!(self, RequestStatus::Ok | RequestStatus::PaymentRequired)
    }
}

impl FromStr for RequestStatus {
    type Err = String;

    /// Parses a stored name (`ok`, `invalid_params`, …).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        RequestStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| format!("unknown request status `{name}`"))
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One MCP request other than `tools/call`, sanitized: the row stored in `requests` and what
/// exporters receive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestEvent {
    /// Unique, time-ordered id (UUIDv7).
    pub id: String,
    /// When the request started, in unix milliseconds.
    pub ts_ms: i64,
    /// The server's name.
    pub server_name: String,
    /// The server's version.
    pub server_version: String,
    /// The request's method.
    pub method: Method,
    /// What it was about, redacted: the prompt name (`prompts/get`), the resource URI
    /// (`resources/read`, subscriptions), the completed reference (`completion/complete`) or the
    /// level (`logging/setLevel`).
    pub target: Option<String>,
    /// The authenticated user (`Identity::subject`), if any.
    pub user_id: Option<String>,
    /// The MCP session. On sessionless protocols the caller's derived key (`d-` and 16 hex
    /// digits), which the store replaces with a session split by inactivity and W3C trace.
    pub session_id: Option<String>,
    /// The client's implementation name, if known.
    pub client_name: Option<String>,
    /// The client's implementation version, if known.
    pub client_version: Option<String>,
    /// The MCP protocol version: for `initialize` the one negotiated, else the request's or the
    /// handshake's.
    pub protocol_version: Option<String>,
    /// How the request arrived.
    pub transport: Transport,
    /// The JSON-RPC request id.
    pub request_id: Option<String>,
    /// Wall time spent answering, in microseconds.
    pub duration_us: u64,
    /// How the request ended.
    pub status: RequestStatus,
    /// The JSON-RPC error code (`-32602`, …), or the payment answer's status
    /// (`payment_required`, `sign_in_required`, …), or `panic`.
    pub error_type: Option<String>,
    /// The error text, redacted.
    pub error_message: Option<String>,
    /// The capabilities the client declared (`initialize`, `server/discover`), as JSON text,
    /// redacted.
    pub client_capabilities: Option<String>,
    /// When the request started, in unix nanoseconds (span start times). Not stored in SQLite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_ns: Option<u64>,
    /// The W3C `traceparent` the client sent, as received. Not stored in SQLite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The W3C `tracestate` sent with that `traceparent`. Not stored in SQLite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_statuses_read_back_from_their_stored_names() {
        for method in Method::ALL {
            assert_eq!(method.as_str().parse::<Method>(), Ok(method));
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{}\"", method.as_str()));
            assert_eq!(serde_json::from_str::<Method>(&json).unwrap(), method);
        }
        for status in RequestStatus::ALL {
            assert_eq!(status.as_str().parse::<RequestStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert!("tools/call".parse::<Method>().is_err());
    }

    #[test]
    fn only_answers_and_payment_requests_are_not_errors() {
        let not_errors: Vec<_> = RequestStatus::ALL
            .into_iter()
            .filter(|status| !status.is_error())
            .collect();
        assert_eq!(
            not_errors,
            [RequestStatus::Ok, RequestStatus::PaymentRequired]
        );
    }
}
