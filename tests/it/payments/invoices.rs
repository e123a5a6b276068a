//! Invoices count once: an `invoice.paid` is recorded in the transaction that marks its
//! webhook event applied, so a delivery that failed after recording it and is then delivered
//! again — several times at once, to any replica — adds its revenue once.

use mcp_analytics_tests::{fake_stripe::WebhookDelivery, postgres::Cluster};

use super::*;

/// The subscription `carol` bought for `pro_report` through `server`.
async fn subscribed(stripe: &FakeStripe, server: &TestServer) -> String {
    let carol = server.client(Some("carol")).await;
    buy(stripe, &carol, "pro_report", json!({})).await;
    stripe.subscriptions().pop().expect("the subscription").id
}

/// A renewal whose webhook fails after it was recorded: marking the event applied is refused
/// (as a full disk or a lost connection would). Its only delivery, answered 500.
async fn failed_renewal(stripe: &FakeStripe, subscription: &str) -> WebhookDelivery {
    let mut deliveries = stripe.renew_subscription(subscription).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let delivery = deliveries.remove(0);
    assert_eq!(delivery.event_type, "invoice.paid");
    assert_eq!(delivery.status, Some(500), "Stripe keeps it: {delivery:?}");
    delivery
}

/// Posts one delivery's body and signature to the webhook of the server at `addr`; its answer.
async fn post(addr: std::net::SocketAddr, delivery: &WebhookDelivery) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/stripe/webhook"))
        .header("Stripe-Signature", &delivery.signature)
        .body(delivery.body.clone())
        .send()
        .await
        .expect("the webhook answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renewal_whose_delivery_failed_after_recording_counts_once_when_delivered_again() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let subscription = subscribed(&stripe, &server).await;
    let before = payment_events(&server.db, "invoice_paid");
    let (amount, payments) = revenue(&server.db);

    let db = rusqlite::Connection::open(&server.db).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_marks BEFORE INSERT ON stripe_webhook_events
         BEGIN SELECT RAISE(ABORT, 'cannot mark the event applied'); END",
    )
    .unwrap();
    let failed = failed_renewal(&stripe, &subscription).await;
    db.execute_batch("DROP TRIGGER refuse_marks").unwrap();
    let again = futures::future::join_all((0..4).map(|_| post(server.addr, &failed))).await;
    assert!(again.iter().all(|(status, _)| *status == 200), "{again:?}");
    assert_eq!(
        again.iter().filter(|(_, body)| body == "ok").count(),
        1,
        "applied by one delivery: {again:?}"
    );

    let after = payment_events(&server.db, "invoice_paid");
    assert_eq!(
        after.len(),
        before.len() + 1,
        "one row for the renewal: {after:?}"
    );
    assert_eq!(
        revenue(&server.db),
        (amount + 2000, payments + 1),
        "its 20.00 USD counted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_renewal_whose_claim_failed_to_commit_counts_once_when_two_replicas_receive_it_again()
 {
    let url = Cluster::shared().create_database("invoice_counted_once");
    let stripe = FakeStripe::start().await;
    fake_prices(&stripe);
    let replica = || start(|db| stripe_payments(&stripe, db).database(url.as_str()));
    let (a, b) = (replica().await, replica().await);
    stripe.set_webhook_url(&a.url("/stripe/webhook"));
    let subscription = subscribed(&stripe, &a).await;

    let (sql, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let revenue = || async {
        let row = sql
            .query_one(
                "SELECT count(*), coalesce(sum(amount), 0)::BIGINT FROM payment_events WHERE kind = 'invoice_paid'",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0), row.get::<_, i64>(1))
    };
    let (invoices, amount) = revenue().await;
    // The claim of every event fails as its transaction commits.
    sql.batch_execute(
        "CREATE FUNCTION refuse_claim() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'the claim cannot commit'; END $$;
         CREATE CONSTRAINT TRIGGER refuse_claims AFTER INSERT ON stripe_webhook_events
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_claim();",
    )
    .await
    .unwrap();
    let failed = failed_renewal(&stripe, &subscription).await;
    sql.batch_execute("DROP TRIGGER refuse_claims ON stripe_webhook_events")
        .await
        .unwrap();

    let again = futures::future::join_all(
        (0..8).map(|i| post(if i % 2 == 0 { a.addr } else { b.addr }, &failed)),
    )
    .await;
    assert!(again.iter().all(|(status, _)| *status == 200), "{again:?}");
    assert_eq!(
        again.iter().filter(|(_, body)| body == "ok").count(),
        1,
        "applied by one delivery: {again:?}"
    );
    assert_eq!(
        revenue().await,
        (invoices + 1, amount + 2000),
        "the renewal's 20.00 USD counted once"
    );
}
