//! Replicas of one server sharing one PostgreSQL database, in one process: each replica is a
//! [`Payments`] built from the same URL (ledgers, checkouts and test pages of their own).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rmcp::model::{CallToolResponse, CallToolResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    Admission, Payer, Payments,
    checkouts::Checkouts,
    ledger::{Ledger, pg_tests::wait_until_listening},
    pricing::{CheckoutMode, Grant, LineItem, PaidKind, PaidTool, Price, Pricing},
    provider::Provider,
    store::{PaymentDb, pg::PgPayments},
};
use crate::{
    Environment, database::PostgresUrl, outcome::Outcome, postgres::test_cluster::Cluster,
};

static CREDITS: Pricing = Pricing {
    mode: CheckoutMode::Payment,
    success_url: "https://example.com/ok",
    cancel_url: None,
    line_items: &[LineItem {
        price: Price::Id("price_image"),
        quantity: Some(3),
    }],
    meter: None,
    reason: None,
    grant: Grant::Credits,
};

const TOOL: PaidTool = PaidTool {
    kind: PaidKind::Tool,
    name: "image",
    description: None,
    pricing: &CREDITS,
};

fn payer(user: &str) -> Payer {
    Payer {
        user_id: Some(user.into()),
        email: None,
        session: None,
        url_elicitation: false,
        legacy_peer: None,
    }
}

/// A replica: payments on `url` with the local test provider, its pages served on loopback.
async fn replica(url: &str) -> (Payments, String) {
    let payments = Payments::builder()
        .environment(Environment::Development)
        .database(url)
        .build()
        .expect("payments on PostgreSQL");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    payments.set_public_url(&format!("http://{addr}"));
    let router = payments.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    wait_until_listening(&payments.core().expect("configured").ledger).await;
    (payments, addr)
}

/// The checkout a refused call links to.
fn checkout_of(admission: Admission) -> (String, String) {
    let Admission::Refuse(outcome) = admission else {
        panic!("expected payment_required");
    };
    let Ok(CallToolResponse::Complete(result)) = &outcome.response else {
        panic!("expected a result")
    };
    let structured = result.structured_content.as_ref().expect("structured");
    (
        structured["checkout_session_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        structured["checkout_url"].as_str().unwrap().to_owned(),
    )
}

/// Runs one admitted call to success.
async fn run(admission: Admission) -> bool {
    match admission {
        Admission::Run(ticket) => {
            let ok = Outcome::from_response(Ok(CallToolResponse::Complete(
                CallToolResult::success(vec![]),
            )));
            ticket.settle(&ok).await;
            true
        }
        Admission::Refuse(_) => false,
    }
}

/// Pays the test checkout through the page at `addr` (`POST /pay/{id}`); the HTTP status.
async fn pay(addr: &str, session: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /pay/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response[9..12].parse().expect("a status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_made_on_one_replica_is_paid_on_anothers_page_and_unlocks_both() {
    let url = Cluster::shared().create_database("replicas_pay");
    let (a, _) = replica(&url).await;
    let (b, b_addr) = replica(&url).await;
    let (session, link) = checkout_of(a.admit(TOOL, payer("alice")).await);
    assert!(link.contains(&session), "{link}");
    assert_eq!(
        pay(&b_addr, &session).await,
        200,
        "replica b's page knows replica a's checkout"
    );
    // Three credits bought: one call on a, two on b, then none.
    assert!(run(a.admit(TOOL, payer("alice")).await).await, "a runs");
    assert!(run(b.admit(TOOL, payer("alice")).await).await, "b runs");
    assert!(run(b.admit(TOOL, payer("alice")).await).await, "b runs");
    for replica in [&a, &b] {
        assert!(
            !run(replica.admit(TOOL, payer("alice")).await).await,
            "every credit was used"
        );
    }
}

/// A Stripe stand-in that creates a new customer for every request (no idempotency), slowly.
async fn customer_counter() -> (String, Arc<AtomicUsize>) {
    let created = Arc::new(AtomicUsize::new(0));
    let counter = created.clone();
    let router = axum::Router::new().route(
        "/v1/customers",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                axum::Json(serde_json::json!({
                    "id": format!("cus_{n}"), "object": "customer", "created": 0, "livemode": false,
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, created)
}

#[cfg(feature = "stripe")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_on_two_replicas_create_one_customer() {
    let url = Cluster::shared().create_database("replicas_customer");
    let pg = PgPayments::open(&PostgresUrl::parse(&url).unwrap()).expect("migrate");
    let (base, created) = customer_counter().await;
    let checkouts = |name: &str| {
        let provider = super::provider::stripe::StripeProvider::new(
            "sk_test_counter",
            Some(&base),
            Duration::from_secs(5),
        )
        .expect("provider");
        let db = PaymentDb::Postgres(pg.clone());
        let ledger = Arc::new(Ledger::new(
            Arc::new(super::ledger::pg::PgLedger::new(
                pg.clone(),
                name.to_owned(),
            )),
            Duration::from_secs(60),
        ));
        Checkouts::new(Arc::new(Provider::Stripe(Box::new(provider))), db, ledger)
    };
    let (a, b) = (checkouts("a"), checkouts("b"));
    let (on_a, on_b) = tokio::join!(a.customer("alice", None), b.customer("alice", None));
    assert_eq!(on_a.expect("a"), on_b.expect("b"), "one customer for alice");
    assert_eq!(created.load(Ordering::SeqCst), 1, "created once at Stripe");
}

/// A signed `checkout.session.expired` event for an unpaid checkout of `alice`.
#[cfg(feature = "stripe")]
fn expired_event(secret: &str) -> (String, String) {
    let mut session = serde_json::json!({
        "id": "cs_test_expired",
        "object": "checkout.session",
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": 500,
        "amount_total": 500,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": null,
        "client_reference_id": "alice",
        "client_secret": null,
        "consent": null,
        "consent_collection": null,
        "created": 0,
        "currency": "usd",
        "custom_fields": [],
        "custom_text": { "after_submit": null, "shipping_address": null, "submit": null,
                         "terms_of_service_acceptance": null },
        "customer": "cus_1",
        "customer_creation": null,
        "customer_details": null,
        "customer_email": null,
    });
    let rest = serde_json::json!({
        "expires_at": 0,
        "invoice": null,
        "livemode": false,
        "locale": null,
        "metadata": { "mcp_user_id": "alice", "mcp_tool": "image", "mcp_price_key": "price_image" },
        "mode": "payment",
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": "always",
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "recovered_from": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": "expired",
        "submit_type": null,
        "subscription": null,
        "success_url": "https://example.com/ok",
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted",
        "url": null,
    });
    if let (Some(head), serde_json::Value::Object(rest)) = (session.as_object_mut(), rest) {
        head.extend(rest);
    }
    let body = serde_json::json!({
        "id": "evt_expired_1", "object": "event", "api_version": "2026-09-30.endive",
        "created": super::now_ms() / 1000, "data": { "object": session }, "livemode": false,
        "pending_webhooks": 1, "request": { "id": null, "idempotency_key": null },
        "type": "checkout.session.expired"
    })
    .to_string();
    let signature =
        stripe_webhook::Webhook::generate_test_header(&body, secret, Some(super::now_ms() / 1000));
    (body, signature)
}

#[cfg(feature = "stripe")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_webhook_event_delivered_to_two_replicas_at_once_is_applied_once() {
    const SECRET: &str = "whsec_replicas";
    let url = Cluster::shared().create_database("replicas_webhook");
    let replica = || {
        Payments::builder()
            .environment(Environment::Development)
            .webhook_secret(SECRET)
            .database(&url)
            .build()
            .expect("payments on PostgreSQL")
    };
    let (a, b) = (replica(), replica());
    let (body, signature) = expired_event(SECRET);
    let deliveries: Vec<_> = (0..8)
        .map(|i| {
            let replica = if i % 2 == 0 { &a } else { &b }.clone();
            let (body, signature) = (body.clone(), signature.clone());
            tokio::spawn(async move {
                let core = replica.core().expect("configured");
                core.webhooks
                    .receive(Some(&signature), body.as_bytes())
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for delivery in deliveries {
        answers.push(delivery.await.expect("delivery").body);
    }
    assert_eq!(
        answers.iter().filter(|body| **body == "ok").count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|body| ["ok", "duplicate"].contains(body))
    );
    let pg = PgPayments::open(&PostgresUrl::parse(&url).unwrap()).expect("open");
    let recorded: i64 = pg
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM payment_events WHERE kind = 'checkout_expired'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 1, "the event was applied once");
}
