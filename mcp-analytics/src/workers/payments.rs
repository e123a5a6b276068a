//! Payments on a Worker: [`Payments::global`] set up from the Worker's variables, its tables in
//! the D1 database bound as [`D1_BINDING`](super::D1_BINDING), and the local test provider's
//! checkout page (`GET`/`POST /pay/{id}`) served by the Worker, its links on the origin the
//! request came to.

use std::sync::Arc;

use worker::{Env, Request, Response, send::SendWrapper};

use super::{
    D1_BINDING,
    d1::{D1, SharedD1},
    variable,
};
use crate::payments::{D1Payments, Payments, PaymentsBuilder, pages::PageBody};

/// Sets up [`Payments::global`] once per instance: the provider from the Worker's variables
/// (`STRIPE_SECRET_KEY`, `ENVIRONMENT`, `MCP_PUBLIC_URL`, prices read with `env(...)`), the
/// tables in D1. Without the binding, or with a bad setting (logged), paid tools answer
/// `payment_unavailable`.
pub(super) fn install(env: &Env, request: &Request) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let Ok(database) = env.d1(D1_BINDING) else {
            worker::console_error!(
                "mcp-analytics: no D1 binding {D1_BINDING}; paid tools answer payment_unavailable"
            );
            return;
        };
        let db = D1Payments::new(Arc::new(SharedD1(SendWrapper::new(D1(database)))));
        // The Worker's variables stay readable for the instance's life (one thread).
        let env = SendWrapper::new(env.clone());
        let built = PaymentsBuilder::from_lookup(move |name| variable(&env, name))
            .and_then(|builder| builder.d1(db).build());
        let host = request
            .url()
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        match built {
            Ok(payments) if !payments.test_payments_allowed_at(&host) => {
                worker::console_error!(
                    "mcp-analytics: test payments (no STRIPE_SECRET_KEY) are refused at {host}: set ENVIRONMENT=development to allow them; paid tools answer payment_unavailable"
                );
            }
            Ok(payments) => {
                Payments::set_global(payments);
            }
            Err(error) => {
                worker::console_error!("mcp-analytics: {error}; paid tools answer payment_unavailable");
            }
        }
    });
}

/// Points the local test provider's links at the origin `request` came to, unless
/// `MCP_PUBLIC_URL` names one.
pub(super) fn note_origin(request: &Request) {
    if let Ok(url) = request.url() {
        Payments::global().default_public_url(&url.origin().ascii_serialization());
    }
}

/// `GET /pay/{id}` shows the test checkout, `POST` pays it (a form posted from the page
/// itself only).
pub(super) async fn answer(request: &Request, id: &str) -> worker::Result<Response> {
    let payments = Payments::global();
    if !payments.is_local() {
        return Response::error("not found", 404);
    }
    let page = match request.method() {
        worker::Method::Get => payments.checkout_page(id).await,
        worker::Method::Post => {
            if let Some(refusal) = super::mcp::cross_origin(request)? {
                return Ok(refusal);
            }
            payments.pay_test_checkout(id).await
        }
        _ => return Response::error("method not allowed", 405),
    };
    let status = page.status;
    match page.body {
        PageBody::Html(html) => Response::from_html(html),
        PageBody::Text(text) => Response::ok(text),
    }
    .map(|response| response.with_status(status))
}
