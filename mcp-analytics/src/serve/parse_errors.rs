//! JSON-RPC answers for `/mcp` bodies that are not JSON-RPC: rmcp answers `415` to any body
//! declared `application/json` that it cannot read as a message; JSON-RPC wants `400` with a
//! parse error (`-32700`) for malformed JSON and an invalid request (`-32600`) for JSON that is
//! no message. Bodies with another content type keep rmcp's `415`.

use axum::{
    body::Body,
    extract::Request,
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// The middleware: keeps a POSTed JSON body (up to `limit` bytes, rmcp's own limit) and, when
/// rmcp refuses it as unreadable, answers with the JSON-RPC error instead.
pub(crate) async fn json_rpc_errors(limit: usize, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !declares_json(&request) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Payload Too Large: request body exceeds {limit} bytes"),
            )
                .into_response();
        }
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    let error = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Err(error) => json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32700, "message": format!("Parse error: {error}")},
        }),
        Ok(value) => {
            let id = value
                .get("id")
                .filter(|id| id.is_string() || id.is_i64() || id.is_u64())
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": -32600, "message": "Invalid Request: not a JSON-RPC 2.0 message this server understands"},
            })
        }
    };
    crate::guard::json_response(StatusCode::BAD_REQUEST, &error)
}

fn declares_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}
