//! The Stripe webhook (`POST /stripe/webhook`) through the payments router, in process: every
//! fuzzer body is signed with the configured webhook secret (`Stripe-Signature: t=…,v1=…`,
//! HMAC-SHA256) so it reaches the event parser and the handlers behind it. Whatever the body,
//! the route answers (2xx, 4xx or 5xx) and never panics.
//!
//! Each delivery's event id (`"evt_…`) gets a fresh prefix, so a mutated event is applied
//! instead of being acknowledged as a duplicate of an earlier one.
//!
//! `FUZZ_VERBOSE=1` prints each answer (to see which seeds reach which handler).
//!
//! The payments use the local test provider (no Stripe key: nothing leaves the process) and a
//! database in a temporary directory (in `/dev/shm` when there is one).

#![no_main]

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    Router,
    body::Body,
    http::{Request, header},
};
use libfuzzer_sys::fuzz_target;
use mcp_analytics::{Environment, Payments};
use stripe_webhook::Webhook;
use tower::ServiceExt;

const SECRET: &str = "whsec_fuzz_0123456789abcdef";

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    _payments: Payments,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = match std::fs::metadata("/dev/shm") {
            Ok(meta) if meta.is_dir() => tempfile::tempdir_in("/dev/shm"),
            _ => tempfile::tempdir(),
        }
        .expect("a temporary directory");
        let payments = Payments::builder()
            .environment(Environment::Development)
            .webhook_secret(SECRET)
            .database(dir.path().join("payments.db"))
            .local_price("price_fuzz", 500, "usd")
            .build()
            .expect("payments with the local provider");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        Harness {
            runtime,
            router: payments.router(),
            _payments: payments,
            _dir: dir,
        }
    })
}

fuzz_target!(|body: &[u8]| {
    let harness = harness();
    // Stripe signs the body text; the route refuses non-UTF-8 bodies first.
    let Ok(payload) = std::str::from_utf8(body) else {
        let request = Request::post("/stripe/webhook")
            .header(header::HOST, "127.0.0.1")
            .header("stripe-signature", "t=1,v1=00")
            .body(Body::from(body.to_vec()))
            .expect("a request");
        let status = harness
            .runtime
            .block_on(harness.router.clone().oneshot(request))
            .expect("routers are infallible")
            .status();
        assert!(status.is_client_error(), "non-UTF-8 body answered {status}");
        return;
    };
    static DELIVERY: AtomicU64 = AtomicU64::new(0);
    let delivery = DELIVERY.fetch_add(1, Ordering::Relaxed);
    let payload = payload.replacen("\"evt_", &format!("\"evt_{delivery}_"), 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let signature = Webhook::generate_test_header(&payload, SECRET, Some(now));
    let request = Request::post("/stripe/webhook")
        .header(header::HOST, "127.0.0.1")
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header("stripe-signature", signature)
        .body(Body::from(payload))
        .expect("a request");
    let response = harness
        .runtime
        .block_on(harness.router.clone().oneshot(request))
        .expect("routers are infallible");
    let status = response.status();
    if std::env::var_os("FUZZ_VERBOSE").is_some() {
        let text = harness.runtime.block_on(async {
            axum::body::to_bytes(response.into_body(), 64 * 1024)
                .await
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default()
        });
        eprintln!("{status} {text}");
    }
    assert!(
        status.is_success() || status.is_client_error() || status.is_server_error(),
        "unexpected status {status}"
    );
});
