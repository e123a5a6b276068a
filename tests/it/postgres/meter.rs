//! Meter events survive the replica that claimed them: `kill -9` of a replica while its meter
//! requests are in flight leaves its claims to run out, and another replica delivers every
//! event, each identifier once.
//!
//! Deterministic by construction: the fake Stripe holds every meter request for ten minutes
//! (`Fault::Delay`, longer than the test) until the first replica is killed, so nothing that
//! replica sent ever reaches Stripe's state; only then does the second replica start, so every
//! meter event the fake accepts was delivered by the second replica after taking the claims over.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use mcp_analytics_tests::fake_stripe::{FakeStripe, Fault, FaultRule, PriceKind};
use serde_json::json;

use super::{
    DEADLINE, IdentityProvider, Paid, Replica, checkout, database, paid_call, scalar, sql,
    until_it_runs_everywhere,
};

/// How long another replica may take to notice a dead replica's claims and deliver them.
const TAKEOVER: Duration = Duration::from_secs(180);

const METER_EVENTS: &str = "/v1/billing/meter_events";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meter_events_claimed_by_a_replica_killed_mid_delivery_are_delivered_by_another_once_each()
{
    let stripe = FakeStripe::start().await;
    stripe.add_price("price_image_hd", 500, "usd", PriceKind::OneTime);
    stripe.add_price(
        "price_api_usage",
        2,
        "usd",
        PriceKind::Metered {
            meter: "api_call".into(),
        },
    );
    let url = database("meter_takeover");
    let idp = IdentityProvider::start().await;
    let mut vars = idp.vars();
    vars.extend([
        ("MCP_ANALYTICS_DB", url.clone()),
        ("STRIPE_SECRET_KEY", stripe.secret_key().to_owned()),
        ("STRIPE_WEBHOOK_SECRET", stripe.webhook_secret().to_owned()),
        ("STRIPE_API_BASE", stripe.base_url().to_owned()),
    ]);
    let mut first = Replica::start("paid", &vars);
    stripe.set_webhook_url(&first.url("/stripe/webhook"));
    let dave = first.client(Some("dave")).await;
    let endpoint = json!({"endpoint": "https://api.example.com/v1"});
    let session = checkout(&dave, "api_call", endpoint.clone()).await;
    let deliveries = stripe.complete_checkout(&session).await;
    assert!(deliveries.iter().all(|d| d.is_success()), "{deliveries:?}");

    // Stripe holds every meter request from now on; six metered calls run.
    stripe.inject(FaultRule::new(Fault::Delay(Duration::from_secs(600))).on("POST", METER_EVENTS));
    until_it_runs_everywhere(&[&dave], "api_call", endpoint.clone(), DEADLINE).await;
    for _ in 0..5 {
        assert_eq!(
            paid_call(&dave, "api_call", endpoint.clone()).await,
            Paid::Ran
        );
    }
    let db = sql(&url).await;
    let end = Instant::now() + DEADLINE;
    loop {
        let rows = scalar(&db, "SELECT count(*) FROM meter_outbox").await;
        let claimed = scalar(
            &db,
            "SELECT count(*) FROM meter_outbox WHERE claimed_by IS NOT NULL",
        )
        .await;
        if rows == 6 && claimed > 0 {
            break;
        }
        assert!(
            Instant::now() < end,
            "{rows} of 6 meter events stored, {claimed} claimed\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill9();
    stripe.clear_faults();
    assert!(
        stripe.meter_events().is_empty(),
        "Stripe accepted nothing from the killed replica"
    );

    let second = Replica::start("paid", &vars);
    let end = Instant::now() + TAKEOVER;
    while stripe.meter_events().len() < 6 {
        assert!(
            Instant::now() < end,
            "{} of 6 meter events delivered after {TAKEOVER:?}\n{}",
            stripe.meter_events().len(),
            second.log()
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
    let stored: BTreeSet<String> = db
        .query("SELECT identifier FROM meter_outbox", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let delivered: BTreeSet<String> = seen.keys().map(|id| (*id).to_owned()).collect();
    assert_eq!(
        delivered, stored,
        "every stored meter event, and nothing else"
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
