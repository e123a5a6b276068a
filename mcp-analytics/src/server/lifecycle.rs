//! The generic bodies of the generated `ServerHandler` methods for the lifecycle and utility
//! requests — `initialize`, `server/discover`, `ping`, `logging/setLevel` — each answered as
//! rmcp's default answers it and recorded with [`observe`].

#![allow(deprecated)] // rmcp marks logging deprecated (SEP-2577); MCP still defines it.

use rmcp::{
    ErrorData, ServerHandler,
    model::{
        DiscoverResult, InitializeRequestParams, InitializeResult, SetLevelRequestMethod,
        SetLevelRequestParams,
    },
};

use super::{
    RequestContext, Server,
    observe::{Method, Observation, observe, observed},
};

/// `ServerHandler::initialize`: rmcp's default (the handshake becomes the connection's peer
/// info, the protocol version is negotiated), recorded with the client, its capabilities and
/// the negotiated version.
pub async fn initialize<S: Server + ServerHandler>(
    server: &S,
    request: InitializeRequestParams,
    context: RequestContext,
) -> Result<InitializeResult, ErrorData> {
    let result = server.negotiate_initialize(&request);
    context.peer.set_peer_info(request);
    let handshake = context.peer.peer_info().expect("set just above");
    let negotiated = result
        .as_ref()
        .ok()
        .map(|result| result.protocol_version.clone());
    let observation = Observation::handshake(handshake, negotiated);
    observe(server, observation, &context, async { result }).await
}

/// `ServerHandler::discover` (MCP 2026-07-28): rmcp's default answer (the supported versions
/// and the server's info), recorded with the capabilities the client declared.
pub async fn discover<S: Server + ServerHandler>(
    server: &S,
    context: RequestContext,
) -> Result<DiscoverResult, ErrorData> {
    let capabilities = context
        .meta
        .get("io.modelcontextprotocol/clientCapabilities")
        .cloned();
    let observation = Observation::new(Method::Discover, None).capabilities(capabilities);
    let answer = async {
        Ok(DiscoverResult::from_server_info(
            server.supported_protocol_versions().into_owned(),
            server.get_info(),
        ))
    };
    observe(server, observation, &context, answer).await
}

/// `ServerHandler::ping`. (rmcp answers a ping before `initialize` itself, unrecorded, and
/// refuses `ping` on MCP 2026-07-28 before any handler runs.)
pub async fn ping<S: Server>(server: &S, context: RequestContext) -> Result<(), ErrorData> {
    observed(server, Method::Ping, None, &context, async { Ok(()) }).await
}

/// `ServerHandler::set_level` (`logging/setLevel`), recorded with the level as its target: sets
/// the connection's minimum level for [`CallContext::log`](crate::CallContext::log) (see
/// [`set_log_level`](super::set_log_level)); `-32601` unless the server advertises logging.
pub async fn set_level<S: Server + ServerHandler>(
    server: &S,
    request: SetLevelRequestParams,
    context: RequestContext,
) -> Result<(), ErrorData> {
    let level = serde_json::to_value(request.level).ok();
    let level = level.as_ref().and_then(serde_json::Value::as_str);
    let answer = async {
        if server.get_info().capabilities.logging.is_none() {
            return Err(ErrorData::method_not_found::<SetLevelRequestMethod>());
        }
        super::set_log_level(&context, request.level.into());
        Ok(())
    };
    observed(server, Method::LoggingSetLevel, level, &context, answer).await
}
