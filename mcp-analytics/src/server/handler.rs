//! The generic bodies of the generated `ServerHandler` methods for tools. `call_tool` is the
//! path of every call: capture, dispatch (panics caught, cancellation observed), classify,
//! record.

use crate::clock::Stopwatch;

use rmcp::{
    ErrorData,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, Implementation, JsonObject,
        ListToolsResult, PaginatedRequestParams, PromptsCapability, ProtocolVersion,
        ResourcesCapability, ServerCapabilities, ServerConfig, Tool, ToolsCapability,
    },
};
use serde_json::Value;

use super::{
    Outcome, RequestContext, Server, ToolCall, ToolSpec,
    observe::{Method, observed},
};
use crate::{
    Analytics, CallContext, LogLevel,
    analytics::RawCall,
    capture::Capture,
    payments::{Admission, Payer, pricing::PaidTool},
};

/// `ServerHandler::get_info`: name, version, instructions, and exactly the capabilities the
/// server uses: logging (`logging/setLevel` is always answered, and tools may log through their
/// [`CallContext`]), then tools, prompts, resources (with `subscribe` when a resource takes
/// subscriptions) and completions, each when it has any.
pub fn server_config<S: Server>() -> ServerConfig {
    let mut capabilities = ServerCapabilities::default();
    capabilities.logging = Some(JsonObject::new());
    if !S::TOOLS.is_empty() {
        capabilities.tools = Some(ToolsCapability::default());
    }
    if !S::PROMPTS.is_empty() {
        capabilities.prompts = Some(PromptsCapability::default());
    }
    if !S::RESOURCES.is_empty() || !S::RESOURCE_TEMPLATES.is_empty() {
        let subscribe = S::RESOURCES.iter().any(|spec| spec.subscribe)
            || S::RESOURCE_TEMPLATES.iter().any(|spec| spec.subscribe);
        let mut resources = ResourcesCapability::default();
        resources.subscribe = subscribe.then_some(true);
        capabilities.resources = Some(resources);
    }
    if !S::COMPLETIONS.is_empty() {
        capabilities.completions = Some(JsonObject::new());
    }
    let config = ServerConfig::new(capabilities)
        .with_server_info(Implementation::new(S::INFO.name, S::INFO.version));
    match S::INFO.instructions {
        Some(instructions) => config.with_instructions(instructions),
        None => config,
    }
}

/// The state behind `ServerHandler::set_level` (`logging/setLevel`): the connection's minimum
/// level for the messages its tools send with [`CallContext::log`]. Servers that take it
/// advertise the `logging` capability.
pub fn set_log_level(context: &RequestContext, level: LogLevel) {
    crate::context::set_session_level(context, level);
}

/// `ServerHandler::get_tool`.
pub fn get_tool<S: Server>(name: &str) -> Option<Tool> {
    S::tool_list()
        .get(S::TOOLS)
        .iter()
        .find(|tool| tool.name == name)
        .cloned()
}

/// `ServerHandler::list_tools`: every tool (one page), with 2026-07-28 cache hints when
/// negotiated; recorded as a `tools/list` request.
pub async fn list_tools<S: Server>(
    server: &S,
    request: Option<PaginatedRequestParams>,
    context: RequestContext,
) -> Result<ListToolsResult, ErrorData> {
    let _every_tool_on_one_page = request;
    record_catalog::<S>(server.analytics());
    let answer = async {
        let result = ListToolsResult::with_all_items(S::tool_list().get(S::TOOLS).to_vec());
        let modern = context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
        Ok(if modern {
            result.with_ttl_ms(0).with_cache_scope(CacheScope::Public)
        } else {
            result
        })
    };
    observed(server, Method::ToolsList, None, &context, answer).await
}

/// Hands `S`'s tool catalogue to `analytics` once (at startup, and on the first `tools/list`
/// of servers started without the serve helpers).
pub(crate) fn record_catalog<S: Server>(analytics: &Analytics) {
    analytics.record_catalog(S::INFO.name, S::INFO.version, || {
        crate::catalog::ToolCatalog::measure(
            S::INFO.name,
            S::INFO.version,
            S::tool_list().get(S::TOOLS),
        )
    });
}

/// `ServerHandler::call_tool`: runs the tool (behind the payment gate when it is paid) and
/// records the call.
pub async fn call_tool<S: Server>(
    server: &S,
    request: CallToolRequestParams,
    context: RequestContext,
) -> Result<CallToolResponse, ErrorData> {
    let CallToolRequestParams {
        name,
        arguments,
        input_responses,
        request_state,
        ..
    } = request;
    let arguments = Value::Object(arguments.unwrap_or_default());
    let paid = paid_tool::<S>(&name);
    let analytics = server.analytics();
    if !analytics.is_enabled() {
        let (payer, call_context) = match paid {
            Some(_) => {
                let capture = Capture::read(&context);
                let payer = payer(&capture, &context);
                let call_context = CallContext::new(context, capture.user_id, capture.session);
                (Some(payer), call_context)
            }
            None => (None, CallContext::new(context, None, None)),
        };
        let call_context = call_context.with_answers(input_responses, request_state);
        let call = ToolCall::new(&name, &arguments, call_context);
        return gated(server, paid, payer, call).await.response;
    }
    let started = Stopwatch::start();
    let capture = Capture::read(&context);
    let payer = paid.map(|_| payer(&capture, &context));
    let cancelled = context.ct.clone();
    let call_context = CallContext::new(context, capture.user_id.clone(), capture.session.clone())
        .with_answers(input_responses, request_state);
    let pending = Pending {
        analytics,
        raw: Some(RawCall::new(&S::INFO, S::TOOLS, name, arguments, capture)),
        started,
    };
    let outcome = {
        let raw = pending.raw.as_ref().expect("set above");
        let call = ToolCall::new(&raw.tool, &raw.arguments, call_context);
        tokio::select! {
            biased;
            outcome = gated(server, paid, payer, call) => outcome,
            () = cancelled.cancelled() => Outcome::cancelled(),
        }
    };
    pending.finish(outcome)
}

/// `name` as a paid tool, when it is one.
fn paid_tool<S: Server>(name: &str) -> Option<PaidTool> {
    S::TOOLS
        .iter()
        .find(|spec| spec.name == name)
        .and_then(ToolSpec::paid_tool)
}

/// Who pays for this call and how to reach them. Cheap: everything only a refusal needs is
/// worked out then.
pub(super) fn payer(capture: &Capture, context: &RequestContext) -> Payer {
    let modern = capture
        .protocol_version
        .as_ref()
        .is_some_and(|version| *version >= ProtocolVersion::V_2026_07_28);
    // MCP 2026-07-28 clients declare capabilities in each request's `_meta`.
    let url_elicitation = modern
        && context
            .meta
            .get("io.modelcontextprotocol/clientCapabilities")
            .and_then(|capabilities| capabilities.get("elicitation"))
            .and_then(|elicitation| elicitation.get("url"))
            .is_some();
    Payer {
        user_id: capture.user_id.clone(),
        email: crate::capture::identity(context).and_then(|identity| identity.email.clone()),
        session: capture.session.clone(),
        url_elicitation,
        legacy_peer: (!modern).then(|| context.peer.clone()),
    }
}

/// Dispatches the call, behind the payment gate for paid tools.
async fn gated<S: Server>(
    server: &S,
    paid: Option<PaidTool>,
    payer: Option<Payer>,
    call: ToolCall<'_>,
) -> Outcome {
    let (Some(tool), Some(payer)) = (paid, payer) else {
        return server.dispatch(call).await;
    };
    match server.payments().admit(tool, payer).await {
        Admission::Refuse(outcome) => outcome,
        Admission::Run(ticket) => {
            let outcome = server.dispatch(call).await;
            ticket.settle(&outcome).await;
            outcome
        }
    }
}

/// A call being served. If it is dropped unfinished (the client went away and the future was
/// dropped), it is recorded as cancelled.
struct Pending<'a> {
    analytics: &'a Analytics,
    raw: Option<Box<RawCall>>,
    started: Stopwatch,
}

impl Pending<'_> {
    fn finish(mut self, outcome: Outcome) -> Result<CallToolResponse, ErrorData> {
        let mut raw = self.raw.take().expect("finished once");
        raw.complete(self.started.elapsed(), &outcome);
        self.analytics.record(raw);
        outcome.response
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(mut raw) = self.raw.take() {
            raw.complete(self.started.elapsed(), &Outcome::cancelled());
            self.analytics.record(raw);
        }
    }
}
