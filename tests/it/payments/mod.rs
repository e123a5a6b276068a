//! Paid tools end to end through a real MCP client over HTTP, against the in-process fake Stripe
//! (the production async-stripe client pointed at its base URL) and the local test provider:
//! payment_required with a checkout link → pay → the call runs; usage metered exactly once,
//! even through a Stripe outage; cancellation revokes; forged webhooks change nothing; Stripe
//! down fails closed; concurrent first calls create one customer.

// The defects the payments core removed (issue #10), one module per area.
mod delayed_and_dunning;
mod entitlements;
mod healing;
mod invoices;
mod metering;
mod reversals;

use std::{sync::Arc, time::Duration};

use mcp_analytics::{Environment, Payments, Status, payments::MeterDurability};
use mcp_analytics_tests::{
    client::call,
    fake_stripe::{FakeStripe, PriceKind},
    server::{TestServer, bearer_identity_with_email},
};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolResult, ClientConfig},
    service::RunningService,
};
use serde_json::{Value, json};

fn fake_prices(stripe: &FakeStripe) {
    stripe.add_price("price_image", 500, "usd", PriceKind::OneTime);
    stripe.add_price(
        "price_usage",
        2,
        "usd",
        PriceKind::Metered {
            meter: "api_call".into(),
        },
    );
    stripe.add_price("price_pro", 2000, "usd", PriceKind::Recurring);
    stripe.add_price("price_base", 900, "usd", PriceKind::Recurring);
    stripe.add_price("price_hd_surcharge", 200, "usd", PriceKind::OneTime);
    stripe.add_price("price_premium", 1000, "usd", PriceKind::Recurring);
    stripe.add_price("price_unlock", 2500, "usd", PriceKind::OneTime);
    stripe.add_price("price_thumbnail_pack", 900, "usd", PriceKind::OneTime);
}

fn stripe_payments(stripe: &FakeStripe, db: &std::path::Path) -> mcp_analytics::PaymentsBuilder {
    Payments::builder()
        .secret_key(stripe.secret_key())
        .stripe_base_url(stripe.base_url())
        .webhook_secret(stripe.webhook_secret())
        .database(db)
        .timeout(Duration::from_secs(2))
        .env(|var| (var == "TEST_PRICE_USAGE").then(|| "price_usage".to_owned()))
}

/// The fake Stripe with the demo's prices and a server paying through it (its webhooks go to
/// the server); `configure` adjusts the payments.
async fn with_stripe(
    configure: impl FnOnce(mcp_analytics::PaymentsBuilder) -> mcp_analytics::PaymentsBuilder,
) -> (FakeStripe, TestServer) {
    let stripe = FakeStripe::start().await;
    fake_prices(&stripe);
    let server = start(|db| configure(stripe_payments(&stripe, db))).await;
    stripe.set_webhook_url(&format!("http://{}/stripe/webhook", server.addr));
    (stripe, server)
}

/// The paid demo, attributing calls to `Authorization: Bearer <user>` (with an e-mail address),
/// with the payments `payments` configures for its database.
async fn start(
    payments: impl FnOnce(&std::path::Path) -> mcp_analytics::PaymentsBuilder,
) -> TestServer {
    try_start(payments).await.expect("the server starts")
}

async fn try_start(
    payments: impl FnOnce(&std::path::Path) -> mcp_analytics::PaymentsBuilder,
) -> Result<TestServer, mcp_analytics::Error> {
    TestServer::paid(payments)
        .identity(bearer_identity_with_email)
        .without_dashboard()
        .try_start()
        .await
}

fn structured(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .expect("structured content")
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

/// `payment_required`: an error result with the checkout link, reason and amount.
fn assert_payment_required(result: &CallToolResult, tool: &str) -> String {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let body = structured(result);
    assert_eq!(body["status"], "payment_required", "{body}");
    assert_eq!(body["tool"], tool);
    let url = body["checkout_url"].as_str().unwrap().to_owned();
    assert!(
        text(result).contains(&url),
        "the text carries the link: {}",
        text(result)
    );
    body["checkout_session_id"].as_str().unwrap().to_owned()
}

/// Calls `tool` unpaid, then completes the checkout it was offered; returns the session id.
async fn buy(
    stripe: &FakeStripe,
    caller: &RunningService<RoleClient, ClientConfig>,
    tool: &str,
    arguments: Value,
) -> String {
    let unpaid = call(caller, tool, arguments).await.unwrap();
    let session = assert_payment_required(&unpaid, tool);
    stripe.complete_checkout(&session).await;
    session
}

/// Revenue (minor units) and payments of the top tool, as the dashboard reports them.
fn revenue(db: &std::path::Path) -> (i64, u64) {
    let connection = rusqlite::Connection::open(db).unwrap();
    let summary = mcp_analytics::payments::report::PaymentsSummary::read(&connection, 0).unwrap();
    (summary.by_tool[0].amount, summary.by_tool[0].payments)
}

/// Credits left in the store, over all users and prices.
fn credits(db: &std::path::Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT coalesce(sum(credits), 0) FROM payment_entitlements",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

/// Flushes until no meter event is pending (Stripe's retries back off), at most 5 s.
async fn deliver_all(payments: &Payments, when: &str) {
    for _ in 0..50 {
        payments.flush().await;
        if payments.pending_meter_events() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(payments.pending_meter_events(), 0, "delivered {when}");
}

fn payment_events(
    db: &std::path::Path,
    kind: &str,
) -> Vec<(Option<String>, Option<String>, Option<i64>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut statement = conn
        .prepare("SELECT user_id, tool, amount FROM payment_events WHERE kind = ?1 ORDER BY id")
        .unwrap();
    statement
        .query_map([kind], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn one_time_purchase_grants_its_credits() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let alice = server.client(Some("alice")).await;

    let first = call(&alice, "generate_image", json!({"prompt": "a cat"}))
        .await
        .unwrap();
    let session = assert_payment_required(&first, "generate_image");
    assert_eq!(structured(&first)["amount"], 1000, "2 × 5.00 USD");
    assert_eq!(structured(&first)["calls_granted"], 2, "one call per unit");
    assert_eq!(structured(&first)["currency"], "usd");
    assert_eq!(
        structured(&first)["reason"],
        "High-quality AI image generation"
    );
    let again = call(&alice, "generate_image", json!({"prompt": "a cat"}))
        .await
        .unwrap();
    assert_eq!(
        assert_payment_required(&again, "generate_image"),
        session,
        "the open checkout is reused"
    );
    assert_eq!(stripe.count("POST", "/v1/checkout/sessions"), 1);
    assert_eq!(server.runs(), 0, "nothing ran unpaid");

    let deliveries = stripe.complete_checkout(&session).await;
    assert!(
        deliveries.iter().all(|d| d.status == Some(200)),
        "{deliveries:?}"
    );
    let requests_before = stripe.requests().len();
    for _ in 0..2 {
        let paid = call(&alice, "generate_image", json!({"prompt": "a dog"}))
            .await
            .unwrap();
        assert_eq!(paid.is_error, Some(false), "{paid:?}");
        assert_eq!(text(&paid), "image of a dog");
    }
    assert_eq!(
        stripe.requests().len(),
        requests_before,
        "entitled calls make no Stripe requests"
    );
    let used_up = call(&alice, "generate_image", json!({"prompt": "a cow"}))
        .await
        .unwrap();
    let second_session = assert_payment_required(&used_up, "generate_image");
    assert_ne!(second_session, session, "both credits used: a new purchase");
    assert_eq!(server.runs(), 2);

    server.analytics.flush().await;
    let completed = payment_events(&server.db, "checkout_completed");
    assert_eq!(
        completed,
        [(
            Some("alice".into()),
            Some("generate_image".into()),
            Some(1000)
        )]
    );
    assert_eq!(payment_events(&server.db, "checkout_created").len(), 2);
    let statuses: Vec<Status> = server
        .sink
        .events()
        .iter()
        .filter(|e| e.tool == "generate_image")
        .map(|e| e.status)
        .collect();
    assert_eq!(
        statuses,
        [
            Status::PaymentRequired,
            Status::PaymentRequired,
            Status::Ok,
            Status::Ok,
            Status::PaymentRequired
        ]
    );
    let summary = mcp_analytics::payments::report::PaymentsSummary::read(
        &rusqlite::Connection::open(&server.db).unwrap(),
        0,
    )
    .unwrap();
    assert_eq!(summary.by_tool[0].key, "generate_image");
    assert_eq!(summary.by_tool[0].amount, 1000);
    assert_eq!(summary.conversion[0].asked, 1);
    assert_eq!(summary.conversion[0].paid, 1);
}

#[tokio::test]
async fn metered_usage_is_billed_once_per_success_even_through_an_outage() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let bob = server.client(Some("bob")).await;

    let unpaid = call(&bob, "api_call", json!({"url": "/x"})).await.unwrap();
    let session = assert_payment_required(&unpaid, "api_call");
    assert_eq!(structured(&unpaid)["mode"], "subscription");
    stripe.complete_checkout(&session).await;

    for n in 0..3 {
        let result = call(&bob, "api_call", json!({"url": format!("/ok/{n}")}))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(false), "{result:?}");
    }
    let failed = call(&bob, "api_call", json!({"url": "/down", "fail": true}))
        .await
        .unwrap();
    assert_eq!(failed.is_error, Some(true), "a failing call is not billed");
    server.payments().flush().await;
    let customer = stripe.customers()[0].id.clone();
    assert_eq!(stripe.meter_total("api_call", &customer), 3.0);

    // Stripe goes down: the entitled call still runs (no Stripe request on the hot path) and
    // its usage waits in the outbox.
    stripe.set_outage(true);
    let during = call(&bob, "api_call", json!({"url": "/during"}))
        .await
        .unwrap();
    assert_eq!(during.is_error, Some(false), "{during:?}");
    server.payments().flush().await;
    assert_eq!(server.payments().pending_meter_events(), 1);
    stripe.set_outage(false);
    deliver_all(server.payments(), "after the outage").await;
    assert_eq!(
        stripe.meter_total("api_call", &customer),
        4.0,
        "never lost, never twice"
    );
    let identifiers: std::collections::HashSet<_> = stripe
        .meter_events()
        .iter()
        .map(|e| e.identifier.clone())
        .collect();
    assert_eq!(identifiers.len(), 4);
    assert!(!payment_events(&server.db, "meter_event_retried").is_empty());
    assert_eq!(payment_events(&server.db, "meter_event_sent").len(), 4);
}

/// Two credits, twelve concurrent calls (some arriving while others settle): exactly two run,
/// the store ends with none left, and every other call is asked to pay.
#[tokio::test]
async fn concurrent_calls_never_spend_a_credit_twice() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let alice = server.client(Some("alice")).await;
    buy(
        &stripe,
        &alice,
        "generate_image",
        json!({"prompt": "a cat"}),
    )
    .await;
    let peer = alice.peer().clone();
    let calls = (0..12).map(|n| {
        let peer = peer.clone();
        async move {
            let arguments = json!({"prompt": format!("image {n}")});
            peer.call_tool(
                rmcp::model::CallToolRequestParams::new("generate_image")
                    .with_arguments(arguments.as_object().unwrap().clone()),
            )
            .await
            .unwrap()
        }
    });
    let results = futures::future::join_all(calls).await;
    let ran = results
        .iter()
        .filter(|result| result.is_error == Some(false))
        .count();
    assert_eq!(ran, 2, "{results:#?}");
    assert_eq!(server.runs(), 2);
    for refused in results
        .iter()
        .filter(|result| result.is_error == Some(true))
    {
        assert_eq!(structured(refused)["status"], "payment_required");
    }
    assert_eq!(credits(&server.db), 0);
}

/// A checkout too close to its end is not handed out again: it is expired at Stripe first (so
/// an old tab cannot buy the same thing twice) and a new one is offered.
#[tokio::test]
async fn a_checkout_near_its_end_is_expired_before_a_new_one_is_offered() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let carol = server.client(Some("carol")).await;
    let first = assert_payment_required(
        &call(&carol, "pro_report", json!({})).await.unwrap(),
        "pro_report",
    );
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    stripe.set_checkout_expires_at(&first, now_s + 60);
    let second = assert_payment_required(
        &call(&carol, "pro_report", json!({})).await.unwrap(),
        "pro_report",
    );
    assert_ne!(second, first);
    assert_eq!(
        stripe.count("POST", &format!("/v1/checkout/sessions/{first}/expire")),
        1
    );
    assert_eq!(stripe.checkout_session(&first).unwrap().status, "expired");
    assert_eq!(stripe.checkout_session(&second).unwrap().status, "open");
    // Paying the new one grants; the old one can no longer be paid.
    stripe.complete_checkout(&second).await;
    let ok = call(&carol, "pro_report", json!({})).await.unwrap();
    assert_eq!(text(&ok), "pro report");
    assert_eq!(stripe.subscriptions().len(), 1);
}

/// A one-time purchase refunded in full (here in two parts) is taken back: its remaining
/// credits go, revenue nets the refunds out, and redelivered refund events change nothing.
#[tokio::test]
async fn a_refunded_purchase_is_taken_back() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let alice = server.client(Some("alice")).await;
    let session = buy(
        &stripe,
        &alice,
        "generate_image",
        json!({"prompt": "a cat"}),
    )
    .await;
    let paid = call(&alice, "generate_image", json!({"prompt": "a dog"}))
        .await
        .unwrap();
    assert_eq!(paid.is_error, Some(false), "{paid:?}");
    let db = &server.db;
    assert_eq!((credits(db), revenue(db)), (1, (1000, 1)));

    // Part of it back: recorded, the purchase stands.
    let partial = stripe.refund_checkout(&session, Some(300)).await;
    assert_eq!(partial[0].status, Some(200), "{partial:?}");
    assert_eq!((credits(db), revenue(db)), (1, (700, 1)));
    // The rest: the remaining credit is taken back.
    let rest = stripe.refund_checkout(&session, Some(700)).await;
    assert_eq!(rest[0].status, Some(200));
    assert_eq!((credits(db), revenue(db)), (0, (0, 1)));
    let refused = call(&alice, "generate_image", json!({"prompt": "a cow"}))
        .await
        .unwrap();
    assert_payment_required(&refused, "generate_image");
    for delivery in partial.iter().chain(&rest) {
        assert_eq!(stripe.redeliver(&delivery.event_id).await.status, Some(200));
    }
    assert_eq!((credits(db), revenue(db)), (0, (0, 1)));
    assert_eq!(payment_events(&server.db, "refunded").len(), 2);
    assert_eq!(server.runs(), 1);
}

/// A disputed purchase (chargeback) is taken back at once; revenue drops by the disputed
/// amount. A won dispute returns the money and grants the purchase again, once.
#[tokio::test]
async fn a_disputed_purchase_is_taken_back_and_granted_again_when_the_dispute_is_won() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let erin = server.client(Some("erin")).await;
    let session = buy(&stripe, &erin, "generate_image", json!({"prompt": "a cat"})).await;
    let db = &server.db;
    assert_eq!(revenue(db).0, 1000);
    let opened = stripe.dispute_checkout(&session, "needs_response").await;
    assert_eq!(opened[0].status, Some(200), "{opened:?}");
    assert_eq!(revenue(db).0, 0);
    let refused = call(&erin, "generate_image", json!({"prompt": "a dog"}))
        .await
        .unwrap();
    assert_payment_required(&refused, "generate_image");
    let won = stripe.dispute_checkout(&session, "won").await;
    assert_eq!(won[0].status, Some(200));
    assert_eq!(revenue(db).0, 1000);
    assert_eq!(credits(db), 2, "the two credits it bought are back");
    let again = call(&erin, "generate_image", json!({"prompt": "a dog"}))
        .await
        .unwrap();
    assert_eq!(text(&again), "image of a dog");
    // Stripe also reports the funds reinstated, and redelivers: nothing is granted twice.
    let redelivered = stripe.redeliver(&won[0].event_id).await;
    assert_eq!(redelivered.status, Some(200));
    assert_eq!(credits(db), 1);
    assert_eq!(server.runs(), 1);
    assert_eq!(payment_events(&server.db, "disputed").len(), 1);
    assert_eq!(payment_events(&server.db, "dispute_won").len(), 1);
}

/// Usage still in the outbox when the server stops (Stripe was down) is delivered by the next
/// process on the same database, once, with the identifiers the first one assigned.
#[tokio::test]
async fn undelivered_usage_survives_a_restart() {
    let (stripe, mut server) = with_stripe(|payments| payments).await;
    let bob = server.client(Some("bob")).await;
    buy(&stripe, &bob, "api_call", json!({"url": "/x"})).await;
    stripe.set_outage(true);
    for n in 0..2 {
        let result = call(&bob, "api_call", json!({"url": format!("/ok/{n}")}))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(false), "{result:?}");
    }
    server.payments().flush().await;
    assert_eq!(server.payments().pending_meter_events(), 2);
    bob.cancel().await.unwrap();
    let dir = server.take_dir();
    let db = server.db.clone();
    drop(server);
    assert!(stripe.meter_events().is_empty(), "nothing reached Stripe");

    stripe.set_outage(false);
    let restarted = stripe_payments(&stripe, &db).build().unwrap();
    deliver_all(&restarted, "after the restart").await;
    let customer = stripe.customers()[0].id.clone();
    assert_eq!(stripe.meter_total("api_call", &customer), 2.0);
    let identifiers: std::collections::HashSet<_> = stripe
        .meter_events()
        .iter()
        .map(|event| event.identifier.clone())
        .collect();
    assert_eq!(identifiers.len(), 2);
    drop(dir);
}

/// With `MeterDurability::Committed` each call's usage is in the outbox before its result
/// returns (queued usage would reach it within 50 ms: five checks in a row would not all see it).
#[tokio::test]
async fn committed_usage_is_in_the_outbox_before_the_result_returns() {
    let (stripe, server) =
        with_stripe(|payments| payments.meter_durability(MeterDurability::Committed)).await;
    let bob = server.client(Some("bob")).await;
    buy(&stripe, &bob, "api_call", json!({"url": "/x"})).await;
    let outbox = rusqlite::Connection::open(&server.db).unwrap();
    let stored = || -> i64 {
        outbox
            .query_row("SELECT count(*) FROM meter_outbox", [], |row| row.get(0))
            .unwrap()
    };
    for n in 1..=5 {
        let result = call(&bob, "api_call", json!({"url": format!("/ok/{n}")}))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(false), "{result:?}");
        assert_eq!(
            stored(),
            n,
            "call {n}'s usage is stored when its result arrives"
        );
    }
    let failed = call(&bob, "api_call", json!({"url": "/down", "fail": true}))
        .await
        .unwrap();
    assert_eq!(failed.is_error, Some(true));
    assert_eq!(stored(), 5, "a failing call is not billed");
    server.payments().flush().await;
    let customer = stripe.customers()[0].id.clone();
    assert_eq!(stripe.meter_total("api_call", &customer), 5.0);
}

#[tokio::test]
async fn a_base_fee_plus_usage_plan_sends_quantities_only_for_the_licensed_price() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let kim = server.client(Some("kim")).await;
    // The fake rejects a quantity on a metered price and a licensed price without one, as
    // Stripe does: the checkout is only created with the right quantities.
    let session = assert_payment_required(
        &call(&kim, "api_plan", json!({"url": "/a"})).await.unwrap(),
        "api_plan",
    );
    let created = stripe
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/v1/checkout/sessions")
        .unwrap();
    assert_eq!(
        created.form["line_items"][0]["quantity"], "1",
        "{}",
        created.form
    );
    assert!(
        created.form["line_items"][1].get("quantity").is_none(),
        "{}",
        created.form
    );
    stripe.complete_checkout(&session).await;
    let ok = call(&kim, "api_plan", json!({"url": "/a"})).await.unwrap();
    assert_eq!(text(&ok), "planned call to /a");
    server.payments().flush().await;
    let customer = stripe.customers()[0].id.clone();
    assert_eq!(stripe.meter_total("api_call", &customer), 1.0);
}

#[tokio::test]
async fn a_cancelled_subscription_revokes_access() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let carol = server.client(Some("carol")).await;

    let session = assert_payment_required(
        &call(&carol, "pro_report", json!({})).await.unwrap(),
        "pro_report",
    );
    stripe.complete_checkout(&session).await;
    let ok = call(&carol, "pro_report", json!({})).await.unwrap();
    assert_eq!(text(&ok), "pro report");
    // Stripe delivers at least once: every event again changes nothing.
    for event in stripe.events() {
        assert_eq!(stripe.redeliver(&event.id).await.status, Some(200));
    }
    assert_eq!(
        payment_events(&server.db, "invoice_paid"),
        [(Some("carol".into()), Some("pro_report".into()), Some(2000))]
    );
    assert_eq!(payment_events(&server.db, "subscription_started").len(), 1);
    let subscription = stripe.subscriptions()[0].id.clone();
    // Stripe retries failed deliveries in any order: a late event from before the payment
    // (`incomplete`) does not take access away ...
    let late = |status: &str, kind: &str| {
        let mut object = stripe.subscription_json(&subscription).unwrap();
        object["status"] = json!(status);
        stripe.signed_event(kind, object)
    };
    let (body, signature) = late("incomplete", "customer.subscription.created");
    assert_eq!(
        stripe.post_webhook(&body, &signature).await.status,
        Some(200)
    );
    let still = call(&carol, "pro_report", json!({})).await.unwrap();
    assert_eq!(text(&still), "pro report");
    stripe.cancel_subscription(&subscription).await;
    let revoked = call(&carol, "pro_report", json!({})).await.unwrap();
    assert_payment_required(&revoked, "pro_report");
    // ... and one from before the cancellation (`active`) does not bring it back.
    let (body, signature) = late("active", "customer.subscription.updated");
    assert_eq!(
        stripe.post_webhook(&body, &signature).await.status,
        Some(200)
    );
    let revoked = call(&carol, "pro_report", json!({})).await.unwrap();
    assert_payment_required(&revoked, "pro_report");
    assert_eq!(server.runs(), 2);
    assert_eq!(
        payment_events(&server.db, "subscription_cancelled").len(),
        1
    );
}

#[tokio::test]
async fn forged_and_stale_webhooks_are_rejected_and_grant_nothing() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let dave = server.client(Some("dave")).await;
    let session = assert_payment_required(
        &call(&dave, "generate_image", json!({"prompt": "x"}))
            .await
            .unwrap(),
        "generate_image",
    );

    // A "completed" copy of the session, signed with the wrong secret or too long ago.
    let mut object = stripe.checkout_session_json(&session).unwrap();
    object["status"] = json!("complete");
    object["payment_status"] = json!("paid");
    let (body, _) = stripe.signed_event("checkout.session.completed", object);
    let url = format!("http://{}/stripe/webhook", server.addr);
    let http = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for signature in [
        stripe.sign_with(&body, "whsec_forged", now),
        stripe.sign_with(&body, stripe.webhook_secret(), now - 3600),
        "t=1,v1=00".to_owned(),
    ] {
        let response = http
            .post(&url)
            .header("stripe-signature", signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }
    let still = call(&dave, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_payment_required(&still, "generate_image");
    assert_eq!(server.runs(), 0);

    // The genuine, fresh event is accepted once; a redelivery changes nothing more.
    let signature = stripe.sign_with(&body, stripe.webhook_secret(), now);
    for _ in 0..2 {
        let response = http
            .post(&url)
            .header("stripe-signature", &signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(payment_events(&server.db, "checkout_completed").len(), 1);

    // Signed but unreadable: an event that changes access is not dropped (500, Stripe retries
    // and shows the failure); one we do not handle is acknowledged.
    for (kind, status) in [
        ("customer.subscription.deleted", 500),
        ("invoice.paid", 500),
        ("charge.refunded", 200),
    ] {
        let (body, signature) = stripe.signed_event(kind, json!({"id": "x", "object": 7}));
        let delivery = stripe.post_webhook(&body, &signature).await;
        assert_eq!(delivery.status, Some(status), "{kind}: {delivery:?}");
    }
}

#[tokio::test]
async fn stripe_down_fails_closed_and_anonymous_callers_must_sign_in() {
    let (stripe, server) =
        with_stripe(|payments| payments.environment(Environment::Production)).await;
    let erin = server.client(Some("erin")).await;
    stripe.set_outage(true);
    let down = call(&erin, "api_call", json!({"url": "/x"})).await.unwrap();
    assert_eq!(down.is_error, Some(true));
    assert_eq!(structured(&down)["status"], "payment_unavailable");
    assert!(text(&down).contains("did not run"), "{}", text(&down));
    stripe.set_outage(false);

    let anonymous = server.client(None).await;
    let refused = call(&anonymous, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_eq!(structured(&refused)["status"], "sign_in_required");
    let free = call(&anonymous, "add", json!({"a": 1, "b": 2}))
        .await
        .unwrap();
    assert_eq!(text(&free), "3");
    assert_eq!(server.runs(), 0);
    server.analytics.flush().await;
    let statuses: Vec<Status> = server.sink.events().iter().map(|e| e.status).collect();
    assert!(
        statuses.contains(&Status::PaymentUnavailable)
            && statuses.contains(&Status::PaymentRequired),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn concurrent_first_calls_create_one_customer_and_one_checkout() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let frank = Arc::new(server.client(Some("frank")).await);
    let calls = (0..8).map(|_| {
        let frank = frank.clone();
        tokio::spawn(async move {
            call(&frank, "generate_image", json!({"prompt": "x"}))
                .await
                .unwrap()
        })
    });
    let mut sessions = std::collections::HashSet::new();
    for result in futures::future::join_all(calls).await {
        sessions.insert(assert_payment_required(&result.unwrap(), "generate_image"));
    }
    assert_eq!(sessions.len(), 1);
    assert_eq!(stripe.customers().len(), 1);
    assert_eq!(stripe.count("POST", "/v1/checkout/sessions"), 1);
}

#[tokio::test]
async fn rate_limits_and_timeouts_are_retried_with_the_same_key_then_fail_closed() {
    use mcp_analytics_tests::fake_stripe::Fault;

    let (stripe, server) =
        with_stripe(|payments| payments.timeout(Duration::from_millis(500))).await;
    let judy = server.client(Some("judy")).await;
    // Two 429s on the customer POST: retried with the same idempotency key, then it works.
    stripe.fail_next(Fault::Status(429), 2);
    let asked = call(&judy, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_payment_required(&asked, "generate_image");
    let posts: Vec<_> = stripe
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/customers")
        .collect();
    assert_eq!(posts.len(), 3, "{posts:?}");
    assert!(
        posts
            .iter()
            .all(|r| r.idempotency_key.is_some() && r.idempotency_key == posts[0].idempotency_key)
    );
    assert_eq!(stripe.customers().len(), 1);

    // Stripe hangs past the client timeout on every request: the call fails closed.
    stripe.fail_next(Fault::Delay(Duration::from_secs(2)), 10);
    let started = std::time::Instant::now();
    let hung = call(&judy, "pro_report", json!({})).await.unwrap();
    assert_eq!(
        structured(&hung)["status"],
        "payment_unavailable",
        "{hung:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded: {:?}",
        started.elapsed()
    );
    assert_eq!(server.runs(), 0);
}

#[tokio::test]
async fn bad_pricing_stops_the_server_at_startup() {
    let stripe = FakeStripe::start().await;
    stripe.add_price("price_image", 500, "usd", PriceKind::OneTime);
    // price_usage and price_pro are unknown to Stripe.
    let error = try_start(|db| stripe_payments(&stripe, db))
        .await
        .err()
        .expect("startup fails");
    assert!(error.to_string().contains("price_usage"), "{error}");
    let missing_key = Payments::builder()
        .environment(Environment::Production)
        .build()
        .unwrap_err();
    assert!(
        missing_key.to_string().contains("STRIPE_SECRET_KEY"),
        "{missing_key}"
    );
}

#[tokio::test]
async fn local_test_provider_takes_a_test_payment() {
    let server = start(|db| {
        Payments::builder()
            .database(db)
            .local_price("price_image", 500, "usd")
            .env(|var| (var == "TEST_PRICE_USAGE").then(|| "price_usage".to_owned()))
    })
    .await;
    let grace = server.client(Some("grace")).await;
    let unpaid = call(&grace, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_payment_required(&unpaid, "generate_image");
    let url = structured(&unpaid)["checkout_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with(&format!("http://{}/pay/", server.addr)),
        "{url}"
    );
    let http = reqwest::Client::new();
    let page = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("TEST PAYMENT")
            && page.contains("High-quality AI image generation")
            && page.contains("10.00 USD"),
        "{page}"
    );
    let done = http.post(&url).send().await.unwrap().text().await.unwrap();
    assert!(done.contains("complete"), "{done}");
    let paid = call(&grace, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_eq!(text(&paid), "image of x");
}

#[tokio::test]
async fn clients_with_url_elicitation_get_the_checkout_link_as_input_required() {
    use rmcp::model::{
        CallToolRequestParams, CallToolResponse, ClientCapabilities, ElicitRequestParams,
        ElicitationCapability, Implementation, InputRequest, ProtocolVersion,
        UrlElicitationCapability,
    };
    use rmcp::{ClientLifecycleMode, ClientServiceExt};

    let server = start(|db| {
        Payments::builder()
            .database(db)
            .local_price("price_image", 500, "usd")
            .env(|var| (var == "TEST_PRICE_USAGE").then(|| "price_usage".to_owned()))
    })
    .await;
    let mut capabilities = ClientCapabilities::default();
    capabilities.elicitation =
        Some(ElicitationCapability::new().with_url(UrlElicitationCapability::new()));
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let heidi = ClientConfig::new(capabilities, Implementation::new("elicit-client", "1.0.0"))
        .serve_with_lifecycle(server.transport(Some("heidi")), lifecycle)
        .await
        .unwrap();
    let request = || {
        CallToolRequestParams::new("generate_image")
            .with_arguments(json!({"prompt": "x"}).as_object().unwrap().clone())
    };
    let CallToolResponse::InputRequired(asked) = heidi.call_tool_once(request()).await.unwrap()
    else {
        panic!("expected input_required")
    };
    let Some(InputRequest::Elicitation(elicit)) =
        asked.input_requests.as_ref().and_then(|r| r.get("payment"))
    else {
        panic!("expected a payment elicitation: {asked:?}")
    };
    let ElicitRequestParams::UrlElicitationParams {
        url,
        elicitation_id,
        message,
        ..
    } = &elicit.params
    else {
        panic!("expected URL elicitation")
    };
    assert!(
        elicitation_id.starts_with("cs_local_") && message.contains("High-quality"),
        "{message}"
    );
    // Answering "accept" proves nothing: the retry is still refused until the purchase is made.
    let CallToolResponse::InputRequired(_) = heidi.call_tool_once(request()).await.unwrap() else {
        panic!("still unpaid")
    };
    reqwest::Client::new().post(url).send().await.unwrap();
    let CallToolResponse::Complete(done) = heidi.call_tool_once(request()).await.unwrap() else {
        panic!("expected the tool to run")
    };
    assert_eq!(text(&done), "image of x");
    server.analytics.flush().await;
    let statuses: Vec<Status> = server.sink.events().iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [Status::PaymentRequired, Status::PaymentRequired, Status::Ok]
    );
}

/// A legacy (2025) client that takes URL elicitation: it "opens" the checkout link by paying on
/// the local test page, then accepts.
#[derive(Clone)]
struct PayingClient;

impl rmcp::ClientHandler for PayingClient {
    async fn create_elicitation(
        &self,
        request: rmcp::model::ElicitRequestParams,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        let rmcp::model::ElicitRequestParams::UrlElicitationParams { url, .. } = request else {
            return Ok(rmcp::model::ElicitResult::new(
                rmcp::model::ElicitationAction::Decline,
            ));
        };
        reqwest::Client::new().post(url).send().await.unwrap();
        Ok(rmcp::model::ElicitResult::new(
            rmcp::model::ElicitationAction::Accept,
        ))
    }

    fn get_info(&self) -> ClientConfig {
        let mut capabilities = rmcp::model::ClientCapabilities::default();
        capabilities.elicitation = Some(
            rmcp::model::ElicitationCapability::new()
                .with_url(rmcp::model::UrlElicitationCapability::new()),
        );
        ClientConfig::new(
            capabilities,
            rmcp::model::Implementation::new("paying-client", "1.0.0"),
        )
    }
}

#[tokio::test]
async fn legacy_clients_with_url_elicitation_pay_within_the_call() {
    let server = start(|db| {
        Payments::builder()
            .database(db)
            .local_price("price_image", 500, "usd")
            .env(|var| (var == "TEST_PRICE_USAGE").then(|| "price_usage".to_owned()))
    })
    .await;
    let ivan = PayingClient
        .serve(server.transport(Some("ivan")))
        .await
        .unwrap();
    let arguments = json!({"prompt": "y"}).as_object().unwrap().clone();
    let result = ivan
        .call_tool(
            rmcp::model::CallToolRequestParams::new("generate_image").with_arguments(arguments),
        )
        .await
        .unwrap();
    assert_eq!(
        text(&result),
        "image of y",
        "paid during the call, then it ran"
    );
    assert_eq!(server.runs(), 1);
    assert_eq!(payment_events(&server.db, "checkout_completed").len(), 1);
}
