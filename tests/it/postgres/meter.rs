//! Meter events survive the replica that claimed them: two replicas share the outbox, and
//! `kill -9` of the one holding claims while its meter requests are in flight leaves the claims
//! to run out; the other replica, running all along, takes them over and delivers every event,
//! each identifier once.
//!
//! Deterministic by construction: the fake Stripe holds every meter request for ten minutes
//! (`Fault::Delay`, longer than the test) until the replica is killed, so nothing sent before
//! the kill ever reaches Stripe's state: every meter event the fake accepts was delivered by the
//! surviving replica afterwards.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use mcp_analytics_tests::fake_stripe::{FakeStripe, Fault, FaultRule};
use serde_json::json;

use super::{
    DEADLINE, IdentityProvider, Paid, add_the_paid_example_s_prices, checkout, database, paid_call,
    replicas, scalar, sql, until_it_runs_everywhere,
};

/// How long the surviving replica may take to notice the dead replica's claims and deliver them.
const TAKEOVER: Duration = Duration::from_secs(180);

const METER_EVENTS: &str = "/v1/billing/meter_events";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meter_events_claimed_by_a_replica_killed_mid_delivery_are_delivered_by_another_once_each()
{
    let stripe = FakeStripe::start().await;
    add_the_paid_example_s_prices(&stripe);
    let url = database("meter_takeover");
    let idp = IdentityProvider::start().await;
    let mut vars = idp.vars();
    vars.extend([
        ("MCP_ANALYTICS_DB", url.clone()),
        ("STRIPE_SECRET_KEY", stripe.secret_key().to_owned()),
        ("STRIPE_WEBHOOK_SECRET", stripe.webhook_secret().to_owned()),
        ("STRIPE_API_BASE", stripe.base_url().to_owned()),
    ]);
    let mut replicas = replicas(2, "paid", &vars);
    stripe.set_webhook_url(&replicas[0].url("/stripe/webhook"));
    let dave = [
        replicas[0].client(Some("dave")).await,
        replicas[1].client(Some("dave")).await,
    ];
    let endpoint = json!({"endpoint": "https://api.example.com/v1"});
    let session = checkout(&dave[0], "api_call", endpoint.clone()).await;
    let deliveries = stripe.complete_checkout(&session).await;
    assert!(deliveries.iter().all(|d| d.is_success()), "{deliveries:?}");

    // Stripe holds every meter request from now on; six metered calls run, three per replica.
    stripe.inject(FaultRule::new(Fault::Delay(Duration::from_secs(600))).on("POST", METER_EVENTS));
    until_it_runs_everywhere(
        &[&dave[0], &dave[1]],
        "api_call",
        endpoint.clone(),
        DEADLINE,
    )
    .await;
    for client in [&dave[0], &dave[1]].repeat(2) {
        assert_eq!(
            paid_call(client, "api_call", endpoint.clone()).await,
            Paid::Ran
        );
    }
    let db = sql(&url).await;
    let end = Instant::now() + DEADLINE;
    loop {
        let claimed = "SELECT count(*) FROM meter_outbox WHERE claimed_by IS NOT NULL";
        let (rows, claimed) = (
            scalar(&db, "SELECT count(*) FROM meter_outbox").await,
            scalar(&db, claimed).await,
        );
        if rows == 6 && claimed == 6 {
            break;
        }
        assert!(
            Instant::now() < end,
            "{rows} of 6 meter events stored, {claimed} claimed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The victim: the replica holding the most claims (a claim id starts with its pid).
    let claims: Vec<(Option<String>, String)> = db
        .query(
            "SELECT split_part(claimed_by, '-', 1), identifier FROM meter_outbox",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let held_by = |index: usize| -> BTreeSet<&str> {
        let pid = replicas[index].pid().to_string();
        claims
            .iter()
            .filter(|(claimer, _)| claimer.as_deref() == Some(pid.as_str()))
            .map(|(_, identifier)| identifier.as_str())
            .collect()
    };
    let (victim, survivor) = if held_by(0).len() >= held_by(1).len() {
        (0, 1)
    } else {
        (1, 0)
    };
    let taken_over: BTreeSet<String> = held_by(victim).into_iter().map(str::to_owned).collect();
    assert!(!taken_over.is_empty(), "claims by pid: {claims:?}");
    replicas[victim].kill9();
    stripe.clear_faults();
    assert!(
        stripe.meter_events().is_empty(),
        "Stripe accepted nothing from before the kill"
    );

    let end = Instant::now() + TAKEOVER;
    while stripe.meter_events().len() < 6 {
        assert!(
            Instant::now() < end,
            "{} of 6 meter events delivered after {TAKEOVER:?}\n{}",
            stripe.meter_events().len(),
            replicas[survivor].log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Anything still claimed would be sent again: give a duplicate time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let events = stripe.meter_events();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for event in &events {
        *seen.entry(event.identifier.as_str()).or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    let stored: BTreeSet<String> = claims
        .into_iter()
        .map(|(_, identifier)| identifier)
        .collect();
    let delivered: BTreeSet<String> = seen.keys().map(|id| (*id).to_owned()).collect();
    assert_eq!(
        delivered, stored,
        "every stored meter event, and nothing else"
    );
    assert!(
        taken_over.is_subset(&delivered),
        "the killed replica's claims were taken over"
    );
    assert!(
        events.iter().all(|event| event.event_name == "api_call"),
        "{events:?}"
    );
    let accepted = stripe
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == METER_EVENTS && r.status == 200 && !r.replayed)
        .count();
    assert_eq!(accepted, 6, "one accepted request per event");
}
