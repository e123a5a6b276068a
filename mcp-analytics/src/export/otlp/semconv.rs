//! The OpenTelemetry MCP semantic conventions (semantic-conventions-genai `docs/gen-ai/mcp.md`,
//! status Development) as this exporter applies them to a [`ToolCallEvent`] and a
//! [`RequestEvent`]: attribute names, `error.type` per status, and the attributes spans and the
//! duration histogram share.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value as Any,
};
use serde_json::Value;

use crate::{Method, RequestEvent, ToolCallEvent, Transport};

pub(super) const MCP_METHOD_NAME: &str = "mcp.method.name";
pub(super) const MCP_SESSION_ID: &str = "mcp.session.id";
pub(super) const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
pub(super) const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
pub(super) const GEN_AI_PROMPT_NAME: &str = "gen_ai.prompt.name";
pub(super) const MCP_RESOURCE_URI: &str = "mcp.resource.uri";
pub(super) const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
pub(super) const GEN_AI_TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
pub(super) const GEN_AI_TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
pub(super) const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
pub(super) const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
pub(super) const ERROR_TYPE: &str = "error.type";
pub(super) const NETWORK_TRANSPORT: &str = "network.transport";
pub(super) const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
/// The general OpenTelemetry user attribute (the successor of `enduser.id`).
pub(super) const USER_ID: &str = "user.id";

/// The method of tool calls.
pub(super) const TOOLS_CALL: &str = "tools/call";
pub(super) const EXECUTE_TOOL: &str = "execute_tool";
/// `error.type` for a `CallToolResult` with `isError: true`.
pub(super) const TOOL_ERROR: &str = "tool_error";

/// No convention exists for these: our own namespace.
pub(super) const CLIENT_NAME: &str = "mcp_analytics.client.name";
pub(super) const CLIENT_VERSION: &str = "mcp_analytics.client.version";
/// The call's status as stored (`ok`, `invalid_params`, `panic`, `payment_required`, …).
pub(super) const CALL_STATUS: &str = "mcp_analytics.call.status";
/// A request's status as stored (`ok`, `invalid_params`, `resource_not_found`, …).
pub(super) const REQUEST_STATUS: &str = "mcp_analytics.request.status";
/// The event id of the stored row (UUIDv7), to join a span with the local store.
pub(super) const EVENT_ID: &str = "mcp_analytics.event.id";
/// The span event recorded for payment outcomes, and its attribute.
pub(super) const PAYMENT_EVENT: &str = "mcp_analytics.payment";
pub(super) const PAYMENT_STATUS: &str = "mcp_analytics.payment.status";
/// Statuses (as stored) that are payment activity.
pub(super) const PAYMENT_STATUS_PREFIX: &str = "payment_";

/// JSON-RPC "Invalid params": rmcp's answer to an unknown tool name.
const INVALID_PARAMS: &str = "-32602";
/// JSON-RPC "Request cancelled" (the code rmcp uses for a cancelled request).
const REQUEST_CANCELLED: &str = "-32800";

/// `error.type` of a call, and the JSON-RPC code when the answer was a JSON-RPC error.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ErrorType<'a> {
    pub error_type: Cow<'a, str>,
    pub rpc_code: Option<Cow<'a, str>>,
}

/// `error.type` per the conventions: the JSON-RPC code for calls answered with a JSON-RPC error,
/// `tool_error` for results with `isError: true`; `None` on success.
///
/// The stored `error_type` tells which: a numeric one *is* the JSON-RPC code (protocol errors);
/// `unknown_tool` and `cancelled` were answered with -32602 and -32800; every other error
/// (`tool_error`, `invalid_params`, `panic`, and statuses added later such as the payment ones)
/// reached the client as an `isError` result. Keyed on strings so new statuses need no change.
pub(super) fn error_type(event: &ToolCallEvent) -> Option<ErrorType<'_>> {
    let stored = event.error_type.as_deref()?;
    let code = |code: &'static str| {
        Some(ErrorType {
            error_type: Cow::Borrowed(code),
            rpc_code: Some(Cow::Borrowed(code)),
        })
    };
    if stored.parse::<i64>().is_ok() {
        return Some(ErrorType {
            error_type: Cow::Borrowed(stored),
            rpc_code: Some(Cow::Borrowed(stored)),
        });
    }
    match event.status.as_str() {
        "unknown_tool" => code(INVALID_PARAMS),
        "cancelled" => code(REQUEST_CANCELLED),
        _ => Some(ErrorType {
            error_type: Cow::Borrowed(TOOL_ERROR),
            rpc_code: None,
        }),
    }
}

/// `network.transport`: `pipe` for stdio (byte streams), `tcp` for HTTP.
pub(super) fn network_transport(transport: Transport) -> &'static str {
    match transport {
        Transport::Stdio => "pipe",
        Transport::Http => "tcp",
    }
}

/// The attributes both the span and the duration histogram carry (no ids: they would make
/// every metric point its own series).
pub(super) fn operation_attributes(event: &ToolCallEvent, into: &mut Vec<KeyValue>) {
    into.push(string(MCP_METHOD_NAME, TOOLS_CALL));
    into.push(string(GEN_AI_TOOL_NAME, &event.tool));
    into.push(string(GEN_AI_OPERATION_NAME, EXECUTE_TOOL));
    if let Some(error) = error_type(event) {
        into.push(string(ERROR_TYPE, error.error_type));
        if let Some(code) = error.rpc_code {
            into.push(string(RPC_RESPONSE_STATUS_CODE, code));
        }
    }
    if let Some(version) = &event.protocol_version {
        into.push(string(MCP_PROTOCOL_VERSION, version));
    }
    into.push(string(
        NETWORK_TRANSPORT,
        network_transport(event.transport),
    ));
    if event.transport == Transport::Http {
        into.push(string(NETWORK_PROTOCOL_NAME, "http"));
    }
}

/// `error.type` of a request other than `tools/call`: none when it was answered (or asked for
/// payment, which is no failure), else its stored error type — the JSON-RPC code the client got
/// (also `rpc.response.status_code`), `panic`, or a payment answer.
pub(super) fn request_error_type(request: &RequestEvent) -> Option<ErrorType<'_>> {
    if !request.status.is_error() {
        return None;
    }
    let stored = request.error_type.as_deref().unwrap_or("_OTHER");
    Some(ErrorType {
        error_type: Cow::Borrowed(stored),
        rpc_code: stored
            .parse::<i64>()
            .is_ok()
            .then_some(Cow::Borrowed(stored)),
    })
}

/// The attributes a request's span and its duration histogram point share: the method, the
/// prompt name of `prompts/get` (never the resource URI, which only spans carry), errors,
/// protocol and transport.
pub(super) fn request_attributes(request: &RequestEvent, into: &mut Vec<KeyValue>) {
    into.push(string(MCP_METHOD_NAME, request.method.as_str()));
    if let (Method::PromptsGet, Some(name)) = (request.method, &request.target) {
        into.push(string(GEN_AI_PROMPT_NAME, name));
    }
    if let Some(error) = request_error_type(request) {
        into.push(string(ERROR_TYPE, error.error_type));
        if let Some(code) = error.rpc_code {
            into.push(string(RPC_RESPONSE_STATUS_CODE, code));
        }
    }
    if let Some(version) = &request.protocol_version {
        into.push(string(MCP_PROTOCOL_VERSION, version));
    }
    into.push(string(
        NETWORK_TRANSPORT,
        network_transport(request.transport),
    ));
    if request.transport == Transport::Http {
        into.push(string(NETWORK_PROTOCOL_NAME, "http"));
    }
}

/// Whether a request is about a resource (`mcp.resource.uri` on its span).
pub(super) fn is_resource_request(method: Method) -> bool {
    matches!(
        method,
        Method::ResourcesRead | Method::ResourcesSubscribe | Method::ResourcesUnsubscribe
    )
}

/// A string attribute.
pub(super) fn string(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Any::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

/// A JSON text (already redacted) as a structured value, as the conventions ask for tool
/// arguments and results; text that is not JSON (say, cut by the size cap) stays a string.
pub(super) fn json(key: &str, text: &str) -> KeyValue {
    let value = match serde_json::from_str::<Value>(text) {
        Ok(value) => any(value),
        Err(_) => AnyValue {
            value: Some(Any::StringValue(text.to_owned())),
        },
    };
    KeyValue {
        key: key.to_owned(),
        value: Some(value),
        ..KeyValue::default()
    }
}

fn any(value: Value) -> AnyValue {
    let value = match value {
        Value::Null => None,
        Value::Bool(flag) => Some(Any::BoolValue(flag)),
        Value::Number(number) => Some(match number.as_i64() {
            Some(int) => Any::IntValue(int),
            None => Any::DoubleValue(number.as_f64().unwrap_or(f64::NAN)),
        }),
        Value::String(text) => Some(Any::StringValue(text)),
        Value::Array(items) => Some(Any::ArrayValue(ArrayValue {
            values: items.into_iter().map(any).collect(),
        })),
        Value::Object(map) => Some(Any::KvlistValue(KeyValueList {
            values: map
                .into_iter()
                .map(|(key, value)| KeyValue {
                    key,
                    value: Some(any(value)),
                    ..KeyValue::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::Status;

    /// An `add` call over HTTP with `status`.
    pub(crate) fn event(status: Status, error_type: Option<&str>) -> ToolCallEvent {
        ToolCallEvent {
            id: "0190c0de-0000-7000-8000-000000000000".into(),
            ts_ms: 1_764_000_000_123,
            server_name: "demo".into(),
            server_version: "1.0.0".into(),
            tool: "add".into(),
            user_id: None,
            user_email: None,
            user_name: None,
            session_id: None,
            client_name: None,
            client_version: None,
            protocol_version: Some("2025-06-18".into()),
            transport: Transport::Http,
            request_id: Some("7".into()),
            duration_us: 1500,
            status,
            error_type: error_type.map(str::to_owned),
            error_message: None,
            params: None,
            result: None,
            ts_ns: None,
            traceparent: None,
            tracestate: None,
        }
    }

    fn mapped(event: &ToolCallEvent) -> Option<(String, Option<String>)> {
        error_type(event).map(|error| {
            (
                error.error_type.into_owned(),
                error.rpc_code.map(Cow::into_owned),
            )
        })
    }

    #[test]
    fn error_type_follows_the_conventions_for_every_status() {
        let tool_error = Some(("tool_error".to_owned(), None));
        let code = |code: &str| Some((code.to_owned(), Some(code.to_owned())));
        let cases = [
            (Status::Ok, None, None),
            (Status::InputRequired, None, None),
            (Status::ToolError, Some("tool_error"), tool_error.clone()),
            (
                Status::InvalidParams,
                Some("invalid_params"),
                tool_error.clone(),
            ),
            (Status::Panic, Some("panic"), tool_error.clone()),
            (Status::UnknownTool, Some("unknown_tool"), code("-32602")),
            (Status::ProtocolError, Some("-32603"), code("-32603")),
            (Status::Cancelled, Some("cancelled"), code("-32800")),
        ];
        for (status, stored, expected) in cases {
            assert_eq!(mapped(&event(status, stored)), expected, "{status}");
        }
        // Any status (including ones added later) that is an error maps to a conventional value.
        for status in Status::ALL.into_iter().filter(|status| status.is_error()) {
            let (error_type, code) = mapped(&event(status, Some(status.as_str()))).unwrap();
            assert!(
                error_type == "tool_error" || code.as_deref() == Some(error_type.as_str()),
                "{status}: {error_type}"
            );
        }
    }

    #[test]
    fn json_becomes_structured_values_and_non_json_stays_text() {
        let attribute = json("k", r#"{"a":1,"b":[true,null,"x",2.5]}"#);
        let Some(Any::KvlistValue(list)) = attribute.value.unwrap().value else {
            panic!("an object becomes a kvlist");
        };
        assert_eq!(list.values[0].key, "a");
        assert_eq!(
            list.values[0].value.as_ref().unwrap().value,
            Some(Any::IntValue(1))
        );
        let Some(Any::ArrayValue(array)) = list.values[1].value.clone().unwrap().value else {
            panic!("an array becomes an array");
        };
        assert_eq!(array.values.len(), 4);
        assert_eq!(array.values[1].value, None);
        assert_eq!(array.values[3].value, Some(Any::DoubleValue(2.5)));
        let cut = json("k", r#"{"a":"trunc"#);
        assert_eq!(
            cut.value.unwrap().value,
            Some(Any::StringValue(r#"{"a":"trunc"#.into()))
        );
    }

    #[test]
    fn transports_map_to_network_transport() {
        assert_eq!(network_transport(Transport::Stdio), "pipe");
        assert_eq!(network_transport(Transport::Http), "tcp");
    }
}
