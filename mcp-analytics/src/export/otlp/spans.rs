//! One SERVER span per request, as the MCP semantic conventions describe it: named
//! `tools/call {tool}`, `prompts/get {prompt}` or the method alone, timed from the request's
//! start for its duration, a child of the client's span when the request carried a valid
//! `traceparent`, status ERROR exactly when `error.type` is set, payment outcomes as
//! `mcp_analytics.payment` span events.

use std::sync::Arc;

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    resource::v1::Resource,
    trace::v1::{
        ResourceSpans, ScopeSpans, Span, Status,
        span::{Event, SpanKind},
        status::StatusCode,
    },
};

use super::{
    resource::scope,
    semconv::{self, string},
    trace_context::{IdGenerator, Parent},
};
use crate::{Method, RequestEvent, ToolCallEvent};

/// `Span.flags`: the parent's remoteness is known (bit 8) and it is remote (bit 9).
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;
/// W3C trace flags: sampled.
const SAMPLED: u32 = 0x01;

/// Turns events into spans.
pub(super) struct SpanEncoder {
    ids: IdGenerator,
    capture_content: bool,
}

impl SpanEncoder {
    /// `capture_content`: add the (already redacted) arguments and result.
    pub(super) fn new(capture_content: bool) -> Self {
        Self {
            ids: IdGenerator::new(),
            capture_content,
        }
    }

    /// The span of one call; `None` when the client's trace is not sampled (parent-based
    /// sampling, the OpenTelemetry default).
    pub(super) fn span(&mut self, event: &ToolCallEvent) -> Option<Span> {
        let error = semconv::error_type(event);
        let status = error.as_ref().map(|error| Status {
            code: StatusCode::Error as i32,
            message: self.status_message(event, error.rpc_code.is_some()),
        });
        let timing = Timing {
            traceparent: event.traceparent.as_deref(),
            tracestate: event.tracestate.as_deref(),
            ts_ns: event.ts_ns,
            ts_ms: event.ts_ms,
            duration_us: event.duration_us,
        };
        let mut span = self.frame(&timing)?;
        span.name = format!("{} {}", semconv::TOOLS_CALL, event.tool);
        span.attributes = self.attributes(event);
        span.events = payment_event(event.status.as_str(), span.end_time_unix_nano)
            .into_iter()
            .collect();
        span.status = status;
        Some(span)
    }

    /// The span of one request other than `tools/call`: named by its method (and prompt name),
    /// with the resource URI (redacted) as an attribute; `None` when not sampled.
    pub(super) fn request_span(&mut self, request: &RequestEvent) -> Option<Span> {
        let timing = Timing {
            traceparent: request.traceparent.as_deref(),
            tracestate: request.tracestate.as_deref(),
            ts_ns: request.ts_ns,
            ts_ms: request.ts_ms,
            duration_us: request.duration_us,
        };
        let mut span = self.frame(&timing)?;
        span.name = match (request.method, &request.target) {
            (Method::PromptsGet, Some(name)) => format!("{} {name}", request.method),
            (method, _) => method.as_str().to_owned(),
        };
        let mut attributes = Vec::with_capacity(12);
        semconv::request_attributes(request, &mut attributes);
        if let Some(uri) = request
            .target
            .as_ref()
            .filter(|_| semconv::is_resource_request(request.method))
        {
            attributes.push(string(semconv::MCP_RESOURCE_URI, uri));
        }
        let optional = [
            (semconv::JSONRPC_REQUEST_ID, &request.request_id),
            (semconv::MCP_SESSION_ID, &request.session_id),
            (semconv::USER_ID, &request.user_id),
            (semconv::CLIENT_NAME, &request.client_name),
            (semconv::CLIENT_VERSION, &request.client_version),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                attributes.push(string(key, value));
            }
        }
        attributes.push(string(semconv::REQUEST_STATUS, request.status.as_str()));
        attributes.push(string(semconv::EVENT_ID, &request.id));
        span.attributes = attributes;
        span.events = payment_event(request.status.as_str(), span.end_time_unix_nano)
            .into_iter()
            .collect();
        span.status = semconv::request_error_type(request).map(|error| Status {
            code: StatusCode::Error as i32,
            // JSON-RPC error messages, as the conventions ask (already redacted).
            message: match (&error.rpc_code, &request.error_message) {
                (Some(_), Some(message)) => message.clone(),
                _ => String::new(),
            },
        });
        Some(span)
    }

    /// A SERVER span with its ids, parent and times; `None` when the client's trace is not
    /// sampled.
    fn frame(&mut self, timing: &Timing<'_>) -> Option<Span> {
        let parent = timing.traceparent.and_then(Parent::parse);
        if parent.is_some_and(|parent| !parent.sampled()) {
            return None;
        }
        let start = timing.ts_ns.unwrap_or_else(|| {
            u64::try_from(timing.ts_ms)
                .unwrap_or(0)
                .saturating_mul(1_000_000)
        });
        let end = start.saturating_add(timing.duration_us.saturating_mul(1_000));
        let (trace_id, parent_span_id, trace_state, flags) = match parent {
            Some(parent) => (
                parent.trace_id,
                parent.span_id.to_vec(),
                timing.tracestate.unwrap_or_default().to_owned(),
                u32::from(parent.flags) | FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE,
            ),
            None => (
                self.ids.trace_id(),
                Vec::new(),
                String::new(),
                SAMPLED | FLAG_HAS_IS_REMOTE,
            ),
        };
        Some(Span {
            trace_id: trace_id.to_vec(),
            span_id: self.ids.span_id().to_vec(),
            trace_state,
            parent_span_id,
            flags,
            kind: SpanKind::Server as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Span::default()
        })
    }

    fn attributes(
        &self,
        event: &ToolCallEvent,
    ) -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
        let mut attributes = Vec::with_capacity(16);
        semconv::operation_attributes(event, &mut attributes);
        let optional = [
            (semconv::JSONRPC_REQUEST_ID, &event.request_id),
            (semconv::MCP_SESSION_ID, &event.session_id),
            (semconv::USER_ID, &event.user_id),
            (semconv::CLIENT_NAME, &event.client_name),
            (semconv::CLIENT_VERSION, &event.client_version),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                attributes.push(string(key, value));
            }
        }
        attributes.push(string(semconv::CALL_STATUS, event.status.as_str()));
        attributes.push(string(semconv::EVENT_ID, &event.id));
        if self.capture_content {
            if let Some(params) = &event.params {
                attributes.push(semconv::json(semconv::GEN_AI_TOOL_CALL_ARGUMENTS, params));
            }
            if let Some(result) = &event.result {
                attributes.push(semconv::json(semconv::GEN_AI_TOOL_CALL_RESULT, result));
            }
        }
        attributes
    }

    /// The status description: the JSON-RPC error message (as the conventions ask); a tool's own
    /// error text only with content capture (it comes from the result).
    fn status_message(&self, event: &ToolCallEvent, json_rpc: bool) -> String {
        match &event.error_message {
            Some(message) if json_rpc || self.capture_content => message.clone(),
            _ => String::new(),
        }
    }
}

/// When and in which trace an operation ran.
struct Timing<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
    ts_ns: Option<u64>,
    ts_ms: i64,
    duration_us: u64,
}

/// `mcp_analytics.payment` with `mcp_analytics.payment.status` for payment statuses (keyed on
/// the stored name: `payment_required`, `payment_unavailable`, …).
fn payment_event(status: &str, at: u64) -> Option<Event> {
    status
        .starts_with(semconv::PAYMENT_STATUS_PREFIX)
        .then(|| Event {
            time_unix_nano: at,
            name: semconv::PAYMENT_EVENT.into(),
            attributes: vec![string(semconv::PAYMENT_STATUS, status)],
            ..Event::default()
        })
}

/// One export request: spans grouped by their (shared) resource, under this crate's scope.
pub(super) fn request(spans: Vec<(Arc<Resource>, Span)>) -> ExportTraceServiceRequest {
    let mut groups: Vec<(Arc<Resource>, Vec<Span>)> = Vec::new();
    for (resource, span) in spans {
        match groups
            .iter_mut()
            .find(|(existing, _)| Arc::ptr_eq(existing, &resource))
        {
            Some((_, spans)) => spans.push(span),
            None => groups.push((resource, vec![span])),
        }
    }
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|(resource, spans)| ResourceSpans {
                resource: Some(Arc::unwrap_or_clone(resource)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};

    use super::*;
    use crate::{Status as CallStatus, Transport, export::otlp::semconv::tests::event};

    fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
        let value = attributes.iter().find(|attribute| attribute.key == key)?;
        match value.value.as_ref()?.value.as_ref()? {
            Value::StringValue(text) => Some(text),
            _ => None,
        }
    }

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_successful_call_is_a_server_span_with_the_conventional_attributes() {
        let mut call = event(CallStatus::Ok, None);
        call.ts_ns = Some(1_764_000_000_123_456_789);
        call.session_id = Some("s-1".into());
        call.user_id = Some("alice".into());
        call.client_name = Some("cli".into());
        call.client_version = Some("2.0".into());
        call.params = Some(r#"{"a":1}"#.into());
        let span = SpanEncoder::new(false).span(&call).unwrap();
        assert_eq!(span.name, "tools/call add");
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(span.start_time_unix_nano, 1_764_000_000_123_456_789);
        assert_eq!(span.end_time_unix_nano, 1_764_000_000_124_956_789);
        assert_eq!(span.status, None);
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
        let attributes = &span.attributes;
        for (key, value) in [
            ("mcp.method.name", "tools/call"),
            ("gen_ai.tool.name", "add"),
            ("gen_ai.operation.name", "execute_tool"),
            ("jsonrpc.request.id", "7"),
            ("mcp.session.id", "s-1"),
            ("mcp.protocol.version", "2025-06-18"),
            ("network.transport", "tcp"),
            ("network.protocol.name", "http"),
            ("user.id", "alice"),
            ("mcp_analytics.client.name", "cli"),
            ("mcp_analytics.client.version", "2.0"),
            ("mcp_analytics.call.status", "ok"),
        ] {
            assert_eq!(text(attributes, key), Some(value), "{key}");
        }
        for absent in [
            "error.type",
            "rpc.response.status_code",
            "gen_ai.tool.call.arguments",
        ] {
            assert_eq!(text(attributes, absent), None, "{absent}");
        }
    }

    #[test]
    fn errors_set_error_type_and_span_status() {
        let mut failed = event(CallStatus::ProtocolError, Some("-32603"));
        failed.error_message = Some("database down".into());
        failed.transport = Transport::Stdio;
        let span = SpanEncoder::new(false).span(&failed).unwrap();
        let status = span.status.unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "database down");
        assert_eq!(text(&span.attributes, "error.type"), Some("-32603"));
        assert_eq!(
            text(&span.attributes, "rpc.response.status_code"),
            Some("-32603")
        );
        assert_eq!(text(&span.attributes, "network.transport"), Some("pipe"));
        assert_eq!(text(&span.attributes, "network.protocol.name"), None);

        let mut tool_error = event(CallStatus::ToolError, Some("tool_error"));
        tool_error.error_message = Some("cannot divide by zero".into());
        let span = SpanEncoder::new(false).span(&tool_error).unwrap();
        assert_eq!(text(&span.attributes, "error.type"), Some("tool_error"));
        assert_eq!(text(&span.attributes, "rpc.response.status_code"), None);
        assert_eq!(
            span.status.unwrap().message,
            "",
            "tool text only with content capture"
        );
        let span = SpanEncoder::new(true).span(&tool_error).unwrap();
        assert_eq!(span.status.unwrap().message, "cannot divide by zero");
    }

    #[test]
    fn a_valid_traceparent_is_the_parent_and_an_invalid_one_starts_a_trace() {
        let mut call = event(CallStatus::Ok, None);
        call.traceparent = Some(PARENT.into());
        call.tracestate = Some("vendor=x".into());
        let span = SpanEncoder::new(false).span(&call).unwrap();
        assert_eq!(
            span.trace_id,
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        assert_eq!(
            span.parent_span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_ne!(span.span_id, span.parent_span_id);
        assert_eq!(span.trace_state, "vendor=x");
        assert_eq!(span.flags, 0x301);

        call.traceparent = Some("00-not-a-trace".into());
        let span = SpanEncoder::new(false).span(&call).unwrap();
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.trace_state, "");
        assert_eq!(span.flags, 0x101);

        call.traceparent = Some(PARENT.replace("-01", "-00"));
        assert!(SpanEncoder::new(false).span(&call).is_none(), "not sampled");
    }

    #[test]
    fn content_only_when_opted_in() {
        let mut call = event(CallStatus::Ok, None);
        call.params = Some(r#"{"password":"[REDACTED]"}"#.into());
        call.result = Some(r#"{"content":[]}"#.into());
        let plain = SpanEncoder::new(false).span(&call).unwrap();
        assert!(
            !plain
                .attributes
                .iter()
                .any(|a| a.key.starts_with("gen_ai.tool.call."))
        );
        let captured = SpanEncoder::new(true).span(&call).unwrap();
        let keys: Vec<&str> = captured.attributes.iter().map(|a| a.key.as_str()).collect();
        assert!(keys.contains(&"gen_ai.tool.call.arguments"));
        assert!(keys.contains(&"gen_ai.tool.call.result"));
    }

    #[test]
    fn payment_statuses_become_span_events() {
        let event = payment_event("payment_required", 42).unwrap();
        assert_eq!(event.name, "mcp_analytics.payment");
        assert_eq!(event.time_unix_nano, 42);
        assert_eq!(
            text(&event.attributes, "mcp_analytics.payment.status"),
            Some("payment_required")
        );
        assert!(payment_event("payment_unavailable", 1).is_some());
        assert!(payment_event("ok", 1).is_none());
        assert!(payment_event("tool_error", 1).is_none());
    }

    #[test]
    fn ms_timestamps_are_the_fallback_and_requests_group_by_resource() {
        let call = event(CallStatus::Ok, None);
        let span = SpanEncoder::new(false).span(&call).unwrap();
        assert_eq!(span.start_time_unix_nano, 1_764_000_000_123_000_000);
        assert!(span.events.is_empty());
        let a = Arc::new(Resource::default());
        let b = Arc::new(Resource {
            dropped_attributes_count: 1,
            ..Resource::default()
        });
        let request = request(vec![
            (a.clone(), span.clone()),
            (b, span.clone()),
            (a, span),
        ]);
        assert_eq!(request.resource_spans.len(), 2);
        assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 2);
        let scope = request.resource_spans[0].scope_spans[0]
            .scope
            .as_ref()
            .unwrap();
        assert_eq!(scope.name, "mcp-analytics");
    }
}
