//! `POST /mcp`: one JSON-RPC message through rmcp's service loop, as rmcp's stateless HTTP
//! server answers it (`serve_directly` with the peer it would assume), over in-memory channels.

use futures::{SinkExt, StreamExt, channel::mpsc};
use rmcp::{
    RoleServer, ServerHandler,
    model::{
        ClientCapabilities, ClientJsonRpcMessage, ClientRequest, ErrorCode, ErrorData,
        GetExtensions, Implementation, InitializeRequestParams, JsonRpcError, JsonRpcRequest,
        ProtocolVersion, ServerJsonRpcMessage, ServerResult,
    },
    service::serve_directly,
};
use worker::{Request, Response};

use super::runtime;
use crate::Identity;

/// The largest request body taken (rmcp's HTTP server's limit).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Answers one `POST /mcp`.
/// `caller` is the OAuth identity, which capture records as the user.
pub(super) async fn answer<S: ServerHandler>(
    server: S,
    mut request: Request,
    caller: Option<Identity>,
) -> worker::Result<Response> {
    if let Some(refusal) = cross_origin(&request)? {
        return Ok(refusal);
    }
    let declared = request
        .headers()
        .get("content-length")?
        .and_then(|length| length.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY) {
        return Response::error("the request body is larger than 4 MiB", 413);
    }
    let body = request.bytes().await?;
    if body.len() > MAX_BODY {
        return Response::error("the request body is larger than 4 MiB", 413);
    }
    let message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(error) => {
            let error = ErrorData::new(
                ErrorCode::PARSE_ERROR,
                format!("Parse error: {error}"),
                None,
            );
            return json(
                &ServerJsonRpcMessage::Error(JsonRpcError::new(None, error)),
                400,
            );
        }
    };
    let ClientJsonRpcMessage::Request(mut call) = message else {
        // Notifications (`initialized`, `cancelled`, …) and responses have no one to reach
        // without a session.
        return Response::empty().map(|response| response.with_status(202));
    };
    let mut parts = parts(&request)?;
    if let Some(caller) = caller {
        parts.extensions.insert(caller);
    }
    let peer = peer_info(&call, &parts.headers);
    let requested = match &call.request {
        ClientRequest::InitializeRequest(initialize) => {
            Some(initialize.params.protocol_version.clone())
        }
        _ => None,
    };
    let supported = server.supported_protocol_versions();
    call.request.extensions_mut().insert(parts);
    let mut reply = runtime::drive(exchange(server, call, peer)).await;
    if let (Some(requested), ServerJsonRpcMessage::Response(response)) = (requested, &mut reply)
        && let ServerResult::InitializeResult(result) = &mut response.result
        && requested.has_initialize()
        && supported.contains(&requested)
    {
        result.protocol_version = requested;
    }
    let status = match &reply {
        ServerJsonRpcMessage::Error(error) if error.error.code == ErrorCode::METHOD_NOT_FOUND => {
            404
        }
        ServerJsonRpcMessage::Error(error)
            if error.error.code == ErrorCode::UNSUPPORTED_PROTOCOL_VERSION =>
        {
            400
        }
        _ => 200,
    };
    json(&reply, status)
}

/// Runs `call` through rmcp's loop and returns its answer; a request the server sends the
/// client meanwhile (elicitation, sampling, roots) is refused at once, since nobody could
/// answer it.
async fn exchange<S: ServerHandler>(
    server: S,
    call: JsonRpcRequest<ClientRequest>,
    peer: Option<InitializeRequestParams>,
) -> ServerJsonRpcMessage {
    let id = call.id.clone();
    let (mut to_server, server_in) = mpsc::unbounded::<ClientJsonRpcMessage>();
    let (server_out, mut from_server) = mpsc::unbounded::<ServerJsonRpcMessage>();
    let running = serve_directly::<RoleServer, _, _, _, _>(server, (server_out, server_in), peer);
    let _ = to_server.send(ClientJsonRpcMessage::Request(call)).await;
    while let Some(message) = from_server.next().await {
        match message {
            ServerJsonRpcMessage::Response(ref response) if response.id == id => return message,
            ServerJsonRpcMessage::Error(ref error) if error.id.as_ref() == Some(&id) => {
                return message;
            }
            ServerJsonRpcMessage::Request(request) => {
                let refusal = ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    "this server runs on Cloudflare Workers without sessions: it cannot send requests to the client",
                    None,
                );
                let _ = to_server
                    .send(ClientJsonRpcMessage::Error(JsonRpcError::new(
                        Some(request.id),
                        refusal,
                    )))
                    .await;
            }
            // Notifications (progress, logging) have no stream to travel on.
            _ => {}
        }
    }
    drop(running);
    ServerJsonRpcMessage::Error(JsonRpcError::new(
        Some(id),
        ErrorData::internal_error("the server stopped without answering", None),
    ))
}

/// The peer rmcp's stateless HTTP server assumes: the initialize request's own parameters,
/// else the version the `MCP-Protocol-Version` header names (2025-03-26 without one).
fn peer_info(
    call: &JsonRpcRequest<ClientRequest>,
    headers: &http::HeaderMap,
) -> Option<InitializeRequestParams> {
    if let ClientRequest::InitializeRequest(initialize) = &call.request {
        return Some(initialize.params.clone());
    }
    let version = headers
        .get("mcp-protocol-version")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| serde_json::from_value(serde_json::Value::String(value.to_owned())).ok())
        .unwrap_or(ProtocolVersion::V_2025_03_26);
    Some(
        InitializeRequestParams::new(ClientCapabilities::default(), Implementation::default())
            .with_protocol_version(version),
    )
}

/// The request line and headers, as rmcp's HTTP server hands them to handlers
/// (`RequestContext::extensions`): the capture reads the client and session from them.
pub(super) fn parts(request: &Request) -> worker::Result<http::request::Parts> {
    let url = request.url()?;
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let mut builder = http::Request::builder()
        .method(request.method().as_ref())
        .uri(path);
    for (name, value) in request.headers().entries() {
        builder = builder.header(name, value);
    }
    let (parts, ()) = builder
        .body(())
        .map_err(|error| worker::Error::RustError(format!("request line: {error}")))?
        .into_parts();
    Ok(parts)
}

/// A browser page of another site may not call the server (`Origin` names another host).
pub(super) fn cross_origin(request: &Request) -> worker::Result<Option<Response>> {
    let Some(origin) = request.headers().get("origin")? else {
        return Ok(None);
    };
    let host = request.url()?.host_str().map(str::to_owned);
    let same = url::Url::parse(&origin)
        .ok()
        .and_then(|origin| origin.host_str().map(str::to_owned))
        .is_some_and(|origin| Some(origin) == host);
    if same {
        Ok(None)
    } else {
        Response::error(
            format!("requests from origin {origin} are not allowed"),
            403,
        )
        .map(Some)
    }
}

/// `405` for the methods a sessionless Worker does not serve on `/mcp`.
pub(super) fn method_not_allowed() -> worker::Result<Response> {
    let mut response = Response::error(
        "this MCP server answers POST only: it keeps no stream or session open",
        405,
    )?;
    response.headers_mut().set("allow", "POST")?;
    Ok(response)
}

fn json<T: serde::Serialize>(value: &T, status: u16) -> worker::Result<Response> {
    Ok(Response::from_json(value)?.with_status(status))
}
