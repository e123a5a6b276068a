//! The meter on a real PostgreSQL (the harness's throwaway cluster), delivering over real HTTP
//! to a Stripe double on 127.0.0.1 that records every meter event it is sent.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, routing::post};

use super::*;
use crate::payments::{
    meter::{Meter, MeterDurability, MeterStore},
    provider::{Provider, stripe::StripeProvider},
    store::{Delivery, MeterRow, pg::PgPayments},
};
use crate::postgres::test_cluster::Cluster;

/// A generous deadline for deliveries.
const DEADLINE: Duration = Duration::from_secs(30);

/// Stripe's meter-event endpoint, recording the identifier of every request it answers
/// (repeats included), each after `delay`.
#[derive(Clone, Default)]
struct StripeDouble {
    sent: Arc<Mutex<Vec<String>>>,
    /// Requests received, answered or not yet.
    received: Arc<AtomicUsize>,
    delay: Duration,
}

impl StripeDouble {
    /// Serves the double on 127.0.0.1; returns its base URL.
    async fn serve(&self) -> String {
        let router = Router::new()
            .route("/v1/billing/meter_events", post(meter_event))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}/")
    }

    /// Every identifier sent, in order, repeats included.
    fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }

    /// Waits until a request has arrived (and is being answered).
    async fn until_a_request_arrives(&self) {
        let start = Instant::now();
        while self.received.load(Ordering::SeqCst) == 0 {
            assert!(start.elapsed() < DEADLINE, "no meter event was sent");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn meter_event(State(stripe): State<StripeDouble>, body: String) -> Json<serde_json::Value> {
    stripe.received.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(stripe.delay).await;
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
    let identifier = form.get("identifier").cloned().unwrap_or_default();
    stripe.sent.lock().unwrap().push(identifier.clone());
    Json(serde_json::json!({
        "object": "billing.meter_event",
        "created": 1_800_000_000,
        "event_name": form.get("event_name"),
        "identifier": identifier,
        "livemode": false,
        "payload": {
            "stripe_customer_id": form.get("payload[stripe_customer_id]"),
            "value": form.get("payload[value]"),
        },
        "timestamp": form.get("timestamp").and_then(|t| t.parse::<i64>().ok()),
    }))
}

/// A fresh database `name` on the shared test cluster, with the payment tables, and a client.
async fn database(name: &str) -> (PgPayments, Client) {
    let url = PostgresUrl::parse(&Cluster::shared().create_database(name)).unwrap();
    let pg = tokio::task::spawn_blocking({
        let url = url.clone();
        move || PgPayments::open(&url)
    })
    .await
    .unwrap()
    .unwrap();
    let client = crate::postgres::connect(&url).await.unwrap();
    (pg, client)
}

/// One replica's meter: claim id `replica`, claims lasting `lease`, sending to `stripe`.
fn replica(
    pg: &PgPayments,
    replica: &str,
    lease: Duration,
    stripe: &str,
    durability: MeterDurability,
) -> Arc<Meter> {
    replica_with_timeout(
        pg,
        replica,
        lease,
        stripe,
        durability,
        Duration::from_secs(5),
    )
}

/// [`replica`] whose requests to Stripe give up after `timeout`.
fn replica_with_timeout(
    pg: &PgPayments,
    replica: &str,
    lease: Duration,
    stripe: &str,
    durability: MeterDurability,
    timeout: Duration,
) -> Arc<Meter> {
    let provider = StripeProvider::new("sk_test_meter", Some(stripe), timeout).unwrap();
    let store = PgMeter::new(pg.url.clone(), pg.pool.clone(), timeout).with_claims(replica, lease);
    Meter::start_on(
        MeterStore::Postgres(store),
        Provider::Stripe(Box::new(provider)),
        durability,
    )
    .unwrap()
}

/// Flushes `meters` (together) until the outbox holds nothing pending.
async fn deliver_all(meters: &[&Arc<Meter>]) {
    let start = Instant::now();
    loop {
        futures::future::join_all(meters.iter().map(|meter| meter.flush())).await;
        if meters.iter().all(|meter| meter.pending() == 0) {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "meter events still pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Outbox rows by state, and `meter_event_sent` rows with their distinct references.
async fn outbox(client: &Client) -> (i64, i64, i64, i64) {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM meter_outbox WHERE state = 'sent'),
                    (SELECT count(*) FROM meter_outbox WHERE state <> 'sent'),
                    (SELECT count(*) FROM payment_events WHERE kind = 'meter_event_sent'),
                    (SELECT count(DISTINCT reference) FROM payment_events WHERE kind = 'meter_event_sent')",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

fn row(identifier: &str) -> MeterRow {
    MeterRow {
        identifier: identifier.to_owned(),
        event_name: "api_call".into(),
        customer_id: "cus_1".into(),
        user_id: Some("u1".into()),
        tool: Some("search".into()),
        value: 1,
        ts_s: now_ms() / 1000,
        attempts: 0,
    }
}

/// Asserts that Stripe was sent each of `identifiers` exactly once and nothing else.
fn each_once(sent: &[String], identifiers: &[String]) {
    let mut times: std::collections::BTreeMap<&str, usize> =
        identifiers.iter().map(|id| (id.as_str(), 0)).collect();
    let mut unknown = Vec::new();
    for id in sent {
        match times.get_mut(id.as_str()) {
            Some(n) => *n += 1,
            None => unknown.push(id.as_str()),
        }
    }
    let repeated: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    let missing: Vec<_> = times
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| id)
        .collect();
    assert!(
        repeated.is_empty() && missing.is_empty() && unknown.is_empty(),
        "{} requests for {} events: {} sent more than once (first: {:?}), {} never sent (first: {:?}), {} unknown",
        sent.len(),
        identifiers.len(),
        repeated.len(),
        repeated.iter().take(3).collect::<Vec<_>>(),
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>(),
        unknown.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_over_one_outbox_deliver_each_metered_call_once() {
    let (pg, client) = database("meter_two_replicas").await;
    client
        .execute(
            "INSERT INTO payment_customers VALUES ('u1', 'cus_1', 0), ('u2', 'cus_2', 0)",
            &[],
        )
        .await
        .unwrap();
    let stripe = StripeDouble {
        delay: Duration::from_millis(5),
        ..StripeDouble::default()
    };
    let url = stripe.serve().await;
    let lease = Duration::from_secs(60);
    let a = replica(&pg, "replica-a", lease, &url, MeterDurability::Committed);
    let b = replica(&pg, "replica-b", lease, &url, MeterDurability::Queued);

    // Both replicas record calls at once (one writes the outbox on the call path, the other
    // from its sender) while both senders deliver.
    let record = |meter: Arc<Meter>, user: &'static str| async move {
        for _ in 0..60 {
            meter.record(user, "search", "api_call").await;
        }
    };
    tokio::join!(record(a.clone(), "u1"), record(b.clone(), "u2"));
    // A user without a customer: the usage is not billable, and left out.
    a.record("u3", "search", "api_call").await;
    b.record("u3", "search", "api_call").await;
    deliver_all(&[&a, &b]).await;

    let identifiers: Vec<String> = client
        .query("SELECT identifier FROM meter_outbox", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(identifiers.len(), 120, "every call is in the outbox");
    each_once(&stripe.sent(), &identifiers);
    assert_eq!(
        outbox(&client).await,
        (120, 0, 120, 120),
        "sent, not sent, meter_event_sent rows, their distinct identifiers"
    );
    let claimed: i64 = client
        .query_one(
            "SELECT count(*) FROM meter_outbox WHERE claimed_by IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(claimed, 0, "delivered rows are no longer claimed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_racing_over_a_full_outbox_never_send_one_event_twice() {
    let (pg, client) = database("meter_racing_senders").await;
    let identifiers: Vec<String> = (0..80).map(|n| format!("mcpa_race_{n:03}")).collect();
    let rows: Vec<MeterRow> = identifiers.iter().map(|id| row(id)).collect();
    pg_outbox::enqueue_rows(&client, &rows, now_ms())
        .await
        .unwrap();
    // A slow Stripe keeps both senders busy at once over the same due rows.
    let stripe = StripeDouble {
        delay: Duration::from_millis(10),
        ..StripeDouble::default()
    };
    let url = stripe.serve().await;
    let lease = Duration::from_secs(60);
    let a = replica(&pg, "replica-a", lease, &url, MeterDurability::Queued);
    let b = replica(&pg, "replica-b", lease, &url, MeterDurability::Queued);
    deliver_all(&[&a, &b]).await;

    each_once(&stripe.sent(), &identifiers);
    assert_eq!(outbox(&client).await, (80, 0, 80, 80));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replicas_claims_are_taken_over_once_their_lease_ran_out() {
    let (pg, client) = database("meter_dead_replica").await;
    let identifiers: Vec<String> = (0..6).map(|n| format!("mcpa_dead_{n}")).collect();
    let rows: Vec<MeterRow> = identifiers.iter().map(|id| row(id)).collect();
    pg_outbox::enqueue_rows(&client, &rows, now_ms())
        .await
        .unwrap();
    // A replica claimed them, then died before sending (its lease still runs).
    let claimed = pg_outbox::claim(&client, "dead", now_ms(), now_ms() + 3_600_000, 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 6);

    let stripe = StripeDouble::default();
    let url = stripe.serve().await;
    let live = replica(
        &pg,
        "live",
        Duration::from_secs(60),
        &url,
        MeterDurability::Queued,
    );
    live.flush().await;
    live.flush().await;
    assert!(stripe.sent().is_empty(), "a live claim is left alone");
    assert_eq!(live.pending(), 6);

    // The dead replica's lease runs out.
    client
        .execute(
            "UPDATE meter_outbox SET claim_until_ms = $1",
            &[&(now_ms() - 1)],
        )
        .await
        .unwrap();
    deliver_all(&[&live]).await;
    each_once(&stripe.sent(), &identifiers);
    assert_eq!(outbox(&client).await, (6, 0, 6, 6));

    // The dead replica's late outcome (had it been only slow) changes nothing.
    let late = pg_outbox::settle(
        &client,
        "dead",
        &[pg_outbox::Outcome {
            identifier: &identifiers[0],
            state: Delivery::Pending,
            next_attempt_ms: 0,
            error: Some("late"),
            kind: crate::payments::store::PaymentEventKind::MeterEventRetried,
        }],
        now_ms(),
    )
    .await
    .unwrap();
    assert!(
        late.is_empty(),
        "a claim taken over is no longer the dead replica's to settle"
    );
    assert_eq!(outbox(&client).await, (6, 0, 6, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_meter_event_is_never_sent_again() {
    let (pg, client) = database("meter_never_again").await;
    client
        .execute(
            "INSERT INTO payment_customers VALUES ('u1', 'cus_1', 0)",
            &[],
        )
        .await
        .unwrap();
    let stripe = StripeDouble::default();
    let url = stripe.serve().await;
    let lease = Duration::from_secs(60);
    let first = replica(&pg, "first", lease, &url, MeterDurability::Committed);
    for _ in 0..5 {
        first.record("u1", "search", "api_call").await;
    }
    deliver_all(&[&first]).await;
    assert_eq!(stripe.sent().len(), 5);

    // Later rounds, and a replica started afterwards, find nothing to send; neither does a
    // claim attempt with every lease long gone.
    let second = replica(&pg, "second", lease, &url, MeterDurability::Queued);
    for _ in 0..3 {
        first.flush().await;
        second.flush().await;
    }
    let late = now_ms() + 10 * 3_600_000;
    let claimed = pg_outbox::claim(&client, "third", late, late + 1000, 100)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "sent rows are never claimed");
    assert_eq!(stripe.sent().len(), 5, "nothing sent twice");
    assert_eq!(outbox(&client).await, (5, 0, 5, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_queued_when_a_replica_stops_reaches_the_outbox() {
    let (pg, client) = database("meter_queued_at_stop").await;
    client
        .execute(
            "INSERT INTO payment_customers VALUES ('u1', 'cus_1', 0)",
            &[],
        )
        .await
        .unwrap();
    let stripe = StripeDouble::default();
    let url = stripe.serve().await;
    let meter = replica(
        &pg,
        "stopping",
        Duration::from_secs(60),
        &url,
        MeterDurability::Queued,
    );
    for _ in 0..3 {
        meter.record("u1", "search", "api_call").await;
    }
    drop(meter);
    let start = Instant::now();
    loop {
        let rows: i64 = client
            .query_one("SELECT count(*) FROM meter_outbox", &[])
            .await
            .unwrap()
            .get(0);
        if rows == 3 {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{rows} of 3 queued events written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Drops the last handle of `meter` off the runtime (dropping waits for the sender thread);
/// whether the thread let go of the meter's state by then, and how long the drop took.
async fn stop(meter: Arc<Meter>) -> (bool, Duration) {
    let state = meter.state();
    let start = Instant::now();
    tokio::task::spawn_blocking(move || drop(meter))
        .await
        .unwrap();
    (state.upgrade().is_none(), start.elapsed())
}

/// Outbox rows sent, and rows still claimed by some replica.
async fn sent_and_claimed(client: &Client) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE claimed_by IS NOT NULL) FROM meter_outbox",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopping_mid_send_finishes_the_request_hands_its_other_claims_back_and_ends_its_thread()
 {
    let (pg, client) = database("meter_stopping_mid_send").await;
    let identifiers: Vec<String> = (0..CLAIM_BATCH).map(|n| format!("mcpa_stop_{n}")).collect();
    let rows: Vec<MeterRow> = identifiers.iter().map(|id| row(id)).collect();
    pg_outbox::enqueue_rows(&client, &rows, now_ms())
        .await
        .unwrap();
    let stripe = StripeDouble {
        delay: Duration::from_millis(300),
        ..StripeDouble::default()
    };
    let url = stripe.serve().await;
    let lease = Duration::from_secs(3600);
    let stopping = replica(&pg, "stopping", lease, &url, MeterDurability::Queued);
    // It claimed the batch and its first request is in flight.
    stripe.until_a_request_arrives().await;

    let (ended, _) = stop(stopping).await;
    assert!(ended, "the sender thread ended before the drop returned");
    assert_eq!(
        stripe.sent().len(),
        1,
        "the request in flight was answered, and nothing sent after it"
    );
    assert_eq!(
        sent_and_claimed(&client).await,
        (1, 0),
        "its outcome is recorded and no event is left claimed for the lease to run out"
    );

    // Another replica sends the rest at once.
    let next = replica(&pg, "next", lease, &url, MeterDurability::Queued);
    deliver_all(&[&next]).await;
    each_once(&stripe.sent(), &identifiers);
    assert_eq!(outbox(&client).await, (4, 0, 4, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopping_while_stripe_does_not_answer_stops_within_a_request_timeout() {
    let (pg, client) = database("meter_stopping_stripe_silent").await;
    let rows: Vec<MeterRow> = (0..2).map(|n| row(&format!("mcpa_silent_{n}"))).collect();
    pg_outbox::enqueue_rows(&client, &rows, now_ms())
        .await
        .unwrap();
    let stripe = StripeDouble {
        delay: Duration::from_secs(600),
        ..StripeDouble::default()
    };
    let url = stripe.serve().await;
    let stopping = replica_with_timeout(
        &pg,
        "stopping",
        Duration::from_secs(3600),
        &url,
        MeterDurability::Queued,
        Duration::from_secs(1),
    );
    stripe.until_a_request_arrives().await;

    let (ended, took) = stop(stopping).await;
    assert!(ended, "the sender thread ended before the drop returned");
    assert!(
        took < DEADLINE,
        "stopped after the request timed out, not when Stripe answers: {took:?}"
    );
    assert_eq!(
        sent_and_claimed(&client).await,
        (0, 0),
        "both events wait, unclaimed, to be sent again"
    );
}

#[test]
fn a_claim_outlasts_a_batch_of_requests() {
    let lease = claim_lease(Duration::from_secs(5), CLAIM_BATCH);
    assert!(lease > Duration::from_secs(5) * u32::try_from(CLAIM_BATCH).unwrap());
    assert_eq!(claim_lease(Duration::ZERO, CLAIM_BATCH), MIN_LEASE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_in_progress_on_another_replica_is_skipped_not_waited_for() {
    let (_pg, mut first) = database("meter_claim_skips_locked").await;
    let url = PostgresUrl::parse(&Cluster::shared().url("meter_claim_skips_locked")).unwrap();
    let second = crate::postgres::connect(&url).await.unwrap();
    let rows: Vec<MeterRow> = (0..6).map(|n| row(&format!("mcpa_lock_{n}"))).collect();
    pg_outbox::enqueue_rows(&first, &rows, now_ms())
        .await
        .unwrap();

    // One replica's claim has not committed yet when another replica claims.
    let claiming = first.transaction().await.unwrap();
    let now = now_ms();
    let mine = pg_outbox::claim(&claiming, "first", now, now + 60_000, 2)
        .await
        .unwrap();
    assert_eq!(mine.len(), 2);
    let theirs = tokio::time::timeout(
        DEADLINE,
        pg_outbox::claim(&second, "second", now, now + 60_000, 100),
    )
    .await
    .expect("the second claim does not wait for the first")
    .unwrap();
    claiming.commit().await.unwrap();

    let ids = |rows: &[MeterRow]| -> Vec<String> {
        rows.iter().map(|row| row.identifier.clone()).collect()
    };
    let mut all = [ids(&mine), ids(&theirs)].concat();
    all.sort();
    assert_eq!(
        all,
        ids(&rows),
        "each row claimed by exactly one replica: {mine:?} / {theirs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_usage_holds_a_call_up_only_briefly_when_the_database_does_not_answer() {
    // A server that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().collect();
        drop(held);
    });
    let url = PostgresUrl::parse(&format!("postgres://postgres@{addr}/meter")).unwrap();
    let pool = crate::postgres::pool(&url, 2).unwrap();
    let meter = Meter::start_on(
        MeterStore::Postgres(PgMeter::new(url, pool, Duration::from_secs(5))),
        Provider::Local(crate::payments::provider::local::LocalProvider::new(
            Default::default(),
        )),
        MeterDurability::Committed,
    )
    .unwrap();
    tokio::time::timeout(DEADLINE, meter.record("u1", "search", "api_call"))
        .await
        .expect("the call returns (its usage queued) although the database is silent");
}
