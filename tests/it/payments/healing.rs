//! Healing what the provider no longer knows, and retries that keep their parameters.

use mcp_analytics_tests::fake_stripe::{Fault, FaultRule};

use super::*;

/// Seconds since the Unix epoch.
fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits, if needed, until at least `seconds` remain in the current 10-minute window: checkouts
/// created within one window share their parameters, so a test of a replay must not straddle
/// two.
async fn room_in_the_checkout_window(seconds: i64) {
    let left = 600 - now_s().rem_euclid(600);
    if left < seconds {
        tokio::time::sleep(Duration::from_secs(left as u64 + 1)).await;
    }
}

/// A server paying through `stripe` on the database `db` (another process of the same
/// deployment); `stripe`'s webhooks go to it.
async fn restart_on(stripe: &FakeStripe, db: &std::path::Path) -> TestServer {
    let server = start(|_| stripe_payments(stripe, db)).await;
    stripe.set_webhook_url(&format!("http://{}/stripe/webhook", server.addr));
    server
}

/// Payments through the local test provider (no Stripe key) on `db`.
fn local_payments(db: &std::path::Path) -> mcp_analytics::PaymentsBuilder {
    Payments::builder()
        .database(db)
        .local_price("price_image", 500, "usd")
        .env(|var| (var == "TEST_PRICE_USAGE").then(|| "price_usage".to_owned()))
}

#[tokio::test]
async fn a_checkout_that_timed_out_is_replayed_by_the_next_call() {
    room_in_the_checkout_window(30).await;
    let (stripe, server) =
        with_stripe(|payments| payments.timeout(Duration::from_millis(500))).await;
    let judy = server.client(Some("judy")).await;
    // Stripe is slow to create checkouts: every attempt of this call times out, yet Stripe
    // creates the session (once: the retries carry the same idempotency key).
    stripe.inject(
        FaultRule::new(Fault::Delay(Duration::from_secs(3)))
            .on("POST", "/v1/checkout/sessions")
            .times(3),
    );
    let timed_out = call(&judy, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_eq!(
        structured(&timed_out)["status"],
        "payment_unavailable",
        "{timed_out:?}"
    );
    for _ in 0..100 {
        if stripe.checkout_sessions().len() == 1
            && stripe
                .requests()
                .iter()
                .filter(|r| r.method == "POST" && r.path == "/v1/checkout/sessions")
                .count()
                == 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the slow attempts finish and a second boundary pass: a retry that moved
    // `expires_at` would now be refused by Stripe (same key, other parameters).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(stripe.checkout_sessions().len(), 1);

    let retried = call(&judy, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    let creations: Vec<_> = stripe
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/checkout/sessions")
        .collect();
    let last = creations.last().unwrap();
    assert_eq!(
        (last.status, last.replayed, &last.idempotency_key),
        (200, true, &creations[0].idempotency_key),
        "the same request again, replayed"
    );
    let session = assert_payment_required(&retried, "generate_image");
    let sessions = stripe.checkout_sessions();
    assert_eq!(sessions.len(), 1, "the retry replayed the one session");
    assert_eq!(session, sessions[0].id);
    stripe.complete_checkout(&session).await;
    let paid = call(&judy, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_eq!(text(&paid), "image of x", "{paid:?}");
}

#[tokio::test]
async fn a_deleted_stripe_customer_is_replaced_at_the_next_checkout() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let alice = server.client(Some("alice")).await;
    let first = buy(&stripe, &alice, "generate_image", json!({"prompt": "a"})).await;
    for _ in 0..2 {
        let ran = call(&alice, "generate_image", json!({"prompt": "a"}))
            .await
            .unwrap();
        assert_eq!(text(&ran), "image of a", "{ran:?}");
    }
    let deleted = stripe.customers()[0].id.clone();
    stripe.delete_customer(&deleted).await;

    let unpaid = call(&alice, "generate_image", json!({"prompt": "b"}))
        .await
        .unwrap();
    let session = assert_payment_required(&unpaid, "generate_image");
    assert_ne!(session, first);
    let customers = stripe.customers();
    assert_eq!(customers.len(), 2, "{customers:?}");
    let replacement = &customers[1];
    assert!(!replacement.deleted);
    assert_eq!(
        stripe
            .checkout_session(&session)
            .unwrap()
            .customer
            .as_deref(),
        Some(replacement.id.as_str())
    );
    stripe.complete_checkout(&session).await;
    let paid = call(&alice, "generate_image", json!({"prompt": "b"}))
        .await
        .unwrap();
    assert_eq!(text(&paid), "image of b", "{paid:?}");
    assert_eq!(server.runs(), 3);
}

/// Deleting a customer in the Dashboard also cancels their subscriptions: the subscriber can
/// subscribe again, as a new customer.
#[tokio::test]
async fn a_subscriber_whose_customer_was_deleted_can_subscribe_again() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let carol = server.client(Some("carol")).await;
    buy(&stripe, &carol, "pro_report", json!({})).await;
    let ran = call(&carol, "pro_report", json!({})).await.unwrap();
    assert_eq!(text(&ran), "pro report", "{ran:?}");
    let deleted = stripe.customers()[0].id.clone();
    let deliveries = stripe.delete_customer(&deleted).await;
    assert!(
        deliveries.iter().all(|d| d.status == Some(200)),
        "{deliveries:?}"
    );

    let unpaid = call(&carol, "pro_report", json!({})).await.unwrap();
    let session = assert_payment_required(&unpaid, "pro_report");
    let customer = stripe.checkout_session(&session).unwrap().customer.unwrap();
    assert_ne!(customer, deleted);
    stripe.complete_checkout(&session).await;
    let ran = call(&carol, "pro_report", json!({})).await.unwrap();
    assert_eq!(text(&ran), "pro report", "{ran:?}");
    assert_eq!(server.runs(), 2);
}

#[tokio::test]
async fn a_key_switched_to_another_account_gets_a_new_customer_and_checkout() {
    let (stripe, mut first) = with_stripe(|payments| payments).await;
    let alice = first.client(Some("alice")).await;
    let old = assert_payment_required(
        &call(&alice, "generate_image", json!({"prompt": "a"}))
            .await
            .unwrap(),
        "generate_image",
    );
    assert_eq!(stripe.customers().len(), 1);
    let _dir = first.take_dir();
    let db = first.db.clone();
    drop(alice);
    drop(first);

    // The same database, now with the key of another Stripe account: it knows neither the
    // stored customer nor the stored checkout.
    let other = FakeStripe::start_with("sk_test_other_account_51OtherKey", "whsec_other").await;
    fake_prices(&other);
    // Ids are counters per fake: move this account's past the first one's.
    for n in 0..5 {
        other.add_meter(&format!("other_meter_{n}"));
    }
    let second = restart_on(&other, &db).await;
    let alice = second.client(Some("alice")).await;
    let unpaid = call(&alice, "generate_image", json!({"prompt": "a"}))
        .await
        .unwrap();
    let session = assert_payment_required(&unpaid, "generate_image");
    assert_ne!(session, old);
    let customer = other
        .checkout_session(&session)
        .expect("created at the account in use")
        .customer
        .unwrap();
    let customer = other
        .customers()
        .into_iter()
        .find(|c| c.id == customer)
        .unwrap();
    assert_eq!(customer.metadata["mcp_user_id"], "alice");
    other.complete_checkout(&session).await;
    let paid = call(&alice, "generate_image", json!({"prompt": "a"}))
        .await
        .unwrap();
    assert_eq!(text(&paid), "image of a", "{paid:?}");
}

#[tokio::test]
async fn a_stored_open_checkout_past_its_expiry_is_ignored() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let alice = server.client(Some("alice")).await;
    let stale = assert_payment_required(
        &call(&alice, "generate_image", json!({"prompt": "a"}))
            .await
            .unwrap(),
        "generate_image",
    );
    // Its end has passed (the row stays `open`: no `checkout.session.expired` arrived).
    let past = now_s() - 60;
    stripe.set_checkout_expires_at(&stale, past);
    let changed = rusqlite::Connection::open(&server.db)
        .unwrap()
        .execute(
            "UPDATE payment_checkouts SET expires_ms = ?1 WHERE session_id = ?2",
            rusqlite::params![past * 1000, stale],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let asked_before = stripe
        .requests()
        .iter()
        .filter(|r| r.path.contains(&stale))
        .count();

    let fresh = call(&alice, "generate_image", json!({"prompt": "a"}))
        .await
        .unwrap();
    let session = assert_payment_required(&fresh, "generate_image");
    assert_ne!(session, stale, "a fresh link");
    let asked = stripe
        .requests()
        .iter()
        .filter(|r| r.path.contains(&stale))
        .count();
    assert_eq!(
        asked, asked_before,
        "the expired checkout is not asked about"
    );
    stripe.complete_checkout(&session).await;
    let paid = call(&alice, "generate_image", json!({"prompt": "a"}))
        .await
        .unwrap();
    assert_eq!(text(&paid), "image of a", "{paid:?}");
}

#[tokio::test]
async fn a_restarted_local_provider_offers_a_new_working_link() {
    let mut first = start(local_payments).await;
    let grace = first.client(Some("grace")).await;
    let unpaid = call(&grace, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    let old = assert_payment_required(&unpaid, "generate_image");
    let _dir = first.take_dir();
    let db = first.db.clone();
    drop(grace);
    drop(first);

    // The local provider kept its sessions in memory: the new process does not know `old`.
    let second = start(|_| local_payments(&db)).await;
    let grace = second.client(Some("grace")).await;
    let unpaid = call(&grace, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    let session = assert_payment_required(&unpaid, "generate_image");
    assert_ne!(session, old);
    let url = structured(&unpaid)["checkout_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with(&format!("http://{}/pay/", second.addr)),
        "{url}"
    );
    let done = reqwest::Client::new()
        .post(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.contains("complete"), "{done}");
    let paid = call(&grace, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_eq!(text(&paid), "image of x", "{paid:?}");
}
