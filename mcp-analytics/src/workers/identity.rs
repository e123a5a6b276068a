//! OAuth on the Worker: with `MCP_OAUTH_ISSUER` (and the other `MCP_OAUTH_*` variables, as
//! natively) `POST /mcp` needs a bearer JWT from that issuer, checked against its JWKS
//! (fetched with `fetch`, cached per instance), and the caller's [`Identity`] is recorded as
//! the user of each call; the RFC 9728 protected-resource metadata is served at
//! `/.well-known/oauth-protected-resource[/mcp]`. Without the variables `/mcp` is open.
//! Refusals are the native ones (`401` with `WWW-Authenticate: Bearer resource_metadata=…`,
//! `403 insufficient_scope`, `503` while the issuer cannot be reached). Tokens are JWTs only:
//! introspection (`MCP_OAUTH_INTROSPECTION_URL`) is refused as a setting here.

use std::{cell::OnceCell, rc::Rc};

use worker::{Env, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response};

use super::{mcp, variable};
use crate::{
    Identity, OAuthConfig,
    identity::{Gate, Rejection},
};

thread_local! {
    /// This instance's gate: `None` without `MCP_OAUTH_ISSUER`, an error for bad settings.
    static GATE: OnceCell<Result<Option<Rc<Gate>>, String>> = const { OnceCell::new() };
}

/// The gate configured by the Worker's variables (read once per instance).
fn gate(env: &Env) -> Result<Option<Rc<Gate>>, String> {
    GATE.with(|cell| {
        cell.get_or_init(|| {
            let gate = OAuthConfig::from_lookup(|name| variable(env, name))
                .and_then(|config| config.map(|config| Gate::new(&config)).transpose())
                .map(|gate| gate.map(Rc::new))
                .map_err(|error| error.to_string());
            if let Err(error) = &gate {
                worker::console_error!("mcp-analytics: OAuth is configured but cannot run: {error}; /mcp refuses every request");
            }
            gate
        })
        .clone()
    })
}

/// Lets a request to `/mcp` through with the caller's identity (`None` when OAuth is off),
/// or answers it.
pub(super) async fn admit(request: &Request, env: &Env) -> Result<Option<Identity>, Response> {
    let gate = match gate(env) {
        Ok(Some(gate)) => gate,
        Ok(None) => return Ok(None),
        Err(_) => {
            return Err(text(
                500,
                "this server's OAuth settings are invalid; see the Worker's log",
            ));
        }
    };
    let parts = match mcp::parts(request) {
        Ok(parts) => parts,
        Err(error) => return Err(text(400, &error.to_string())),
    };
    match gate.admit(&parts.headers, get).await {
        Ok(identity) => Ok(Some(identity)),
        Err(Rejection { refusal, log }) => {
            if let Some(why) = log {
                worker::console_warn!("mcp-analytics: cannot check an OAuth token: {why}");
            }
            let mut response = text(refusal.status, refusal.body);
            let headers = response.headers_mut();
            if let Some(challenge) = &refusal.challenge {
                let _ = headers.set("www-authenticate", challenge);
            }
            if let Some(retry) = refusal.retry_after {
                let _ = headers.set("retry-after", retry);
            }
            Err(response)
        }
    }
}

/// The protected-resource metadata, when OAuth is on and `path` is where it is published.
pub(super) fn metadata(
    request: &Request,
    env: &Env,
    path: &str,
) -> Option<worker::Result<Response>> {
    let gate = gate(env).ok().flatten()?;
    let parts = mcp::parts(request).ok()?;
    let document = gate.metadata(path, &parts.headers)?;
    Some(Response::from_json(&document))
}

/// A response with a text body (none when `body` is empty), as natively.
fn text(status: u16, body: &str) -> Response {
    let response = if body.is_empty() {
        Response::empty()
    } else {
        Response::ok(body)
    };
    response
        .unwrap_or_else(|_| Response::empty().expect("an empty response builds"))
        .with_status(status)
}

/// GETs `url` for the gate (discovery documents, the JWKS), without following redirects: keys
/// must come from the configured or discovered URL.
async fn get(url: String) -> Result<Vec<u8>, String> {
    let headers = Headers::new();
    headers
        .set("accept", "application/json")
        .map_err(|error| error.to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get)
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    let request = Request::new_with_init(&url, &init).map_err(|error| error.to_string())?;
    let mut response = Fetch::Request(request)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status_code();
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    response.bytes().await.map_err(|error| error.to_string())
}
