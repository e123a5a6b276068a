//! Serving an `#[mcp_server]` from a Cloudflare Worker (feature `workers`, `wasm32` only).
//!
//! ```ignore
//! use worker::{Context, Env, Request, Response, event};
//!
//! #[event(fetch)]
//! async fn fetch(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
//!     mcp_analytics::workers::serve(MyServer, request, env, ctx).await
//! }
//! ```
//!
//! [`serve`] answers:
//! - `POST /mcp`: one JSON-RPC message in, one JSON response out — MCP 2026-07-28, which is
//!   sessionless, and the request/response flows of the older versions (`initialize`, then
//!   each request on its own, without a session). Notifications and responses are accepted
//!   with `202`. `GET` and `DELETE` answer `405`: a Worker keeps no stream open and no session
//!   (that would take a Durable Object), so servers cannot send requests to clients here
//!   (elicitation and sampling answer an error).
//! - `GET`/`POST /pay/{id}`: the local test provider's checkout page (development, no
//!   `STRIPE_SECRET_KEY`): `#[paid]` tools keep what users bought in the same D1 database
//!   (see `payments`).
//! - With `MCP_OAUTH_ISSUER` set, `/mcp` needs a bearer JWT from that issuer and records its
//!   subject as the user; `/.well-known/oauth-protected-resource` describes it (see
//!   `identity.rs`).
//! - `/analytics`: the native dashboard's page, its sign-in form and its JSON API
//!   (`/analytics/api/{overview,errors,payments,alerts,session}`, plus `sessions` and `report`),
//!   read from D1, behind `MCP_ANALYTICS_API_KEY` (a Worker secret) given as a bearer token or
//!   through the sign-in form's cookie; without the secret `/analytics` answers `401`.
//!
//! Every call is recorded as natively (timed, classified, sanitized) and written to the D1
//! database bound as [`D1_BINDING`] after the response has gone (`ctx.wait_until`), so the
//! caller never waits on storage; a Worker without the binding answers calls and logs that
//! nothing is stored. Durations come from the JavaScript clock, which Workers advance only
//! while a request waits on I/O.

mod analytics;
mod d1;
mod identity;
mod mcp;
mod payments;
mod runtime;

use rmcp::ServerHandler;
use worker::{Context, Env, Method, Request, Response};

use crate::{Analytics, Config, server::Server};

/// The name of the D1 binding analytics are stored in (`[[d1_databases]] binding` in
/// `wrangler.toml`).
pub const D1_BINDING: &str = "MCP_ANALYTICS_DB";

/// The Worker secret (or variable) guarding `/analytics`.
pub const API_KEY: &str = "MCP_ANALYTICS_API_KEY";

/// Answers one request to the Worker with `server`: `/mcp` and `/analytics` (see the module's
/// documentation); anything else is `404`.
pub async fn serve<S>(
    server: S,
    request: Request,
    env: Env,
    ctx: Context,
) -> worker::Result<Response>
where
    S: Server + ServerHandler,
{
    log_panics();
    if S::GLOBAL_ANALYTICS {
        install_analytics(&env);
    }
    if S::GLOBAL_PAYMENTS {
        payments::install(&env, &request);
        payments::note_origin(&request);
    }
    let path = request.path();
    let analytics_handle = server.analytics().clone();
    let response = match (request.method(), path.as_str()) {
        (Method::Post, "/mcp") => match identity::admit(&request, &env).await {
            Ok(caller) => mcp::answer(server, request, caller).await,
            Err(refusal) => Ok(refusal),
        },
        (Method::Options, "/mcp") => Response::empty().map(|response| response.with_status(204)),
        (_, "/mcp") => mcp::method_not_allowed(),
        (_, path) if path.starts_with("/pay/") => {
            payments::answer(&request, &path["/pay/".len()..]).await
        }
        (_, path) if path == "/analytics" || path.starts_with("/analytics/") => {
            analytics::answer(request, &env, &path["/analytics".len()..]).await
        }
        (Method::Get, path) if path.starts_with("/.well-known/oauth-protected-resource") => {
            identity::metadata(&request, &env, path)
                .unwrap_or_else(|| Response::error("not found", 404))
        }
        _ => Response::error("not found", 404),
    };
    analytics::store_after_response(&analytics_handle, &env, &ctx);
    response
}

/// Logs a panic's message to the Worker's console before the instance aborts (a panic ends a
/// `wasm32` instance: the request fails and the next starts a fresh one).
fn log_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|panic| {
            worker::console_error!("mcp-analytics: {panic}");
        }));
    });
}

/// Sets up [`Analytics::global`] from the Worker's variables and secrets (`MCP_ANALYTICS_*`, as
/// natively), once per instance. A bad setting is logged and leaves analytics off: calls are
/// still answered.
fn install_analytics(env: &Env) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let built = Config::from_lookup(|name| variable(env, name))
            .and_then(|config| Analytics::builder().config(config).build());
        let analytics = built.unwrap_or_else(|error| {
            worker::console_error!("mcp-analytics: {error}; analytics is disabled");
            Analytics::disabled()
        });
        let _ = analytics.install();
    });
}

/// A Worker variable or secret (bindings of other kinds, such as the D1 database, are not).
pub(crate) fn variable(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|var| var.to_string())
        .or_else(|_| env.secret(name).map(|secret| secret.to_string()))
        .ok()
}
