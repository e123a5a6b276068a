//! Metered usage that Stripe refuses is kept and retried; a meter name that does not match is a startup error.

use mcp_analytics_tests::fake_stripe::{Fault, FaultRule};

use super::*;

/// Meter events in the outbox given up for good.
fn failed_meter_events(db: &std::path::Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM meter_outbox WHERE state = 'failed'",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

/// A subscriber of the metered `api_call`; returns the client and its Stripe customer.
async fn subscriber(
    stripe: &FakeStripe,
    server: &TestServer,
    user: &str,
) -> (RunningService<RoleClient, ClientConfig>, String) {
    let caller = server.client(Some(user)).await;
    let session = buy(stripe, &caller, "api_call", json!({"url": "/x"})).await;
    let customer = stripe
        .checkout_session(&session)
        .and_then(|session| session.customer)
        .unwrap();
    (caller, customer)
}

/// Makes `calls` successful metered calls, then lets the sender try them (twice) while
/// Stripe refuses them: every one stays pending, none is given up, none reached Stripe.
async fn calls_kept_while_refused(
    stripe: &FakeStripe,
    server: &TestServer,
    caller: &RunningService<RoleClient, ClientConfig>,
    calls: usize,
    why: &str,
) {
    let accepted = stripe.meter_events().len();
    for n in 0..calls {
        let result = call(caller, "api_call", json!({"url": format!("/{why}/{n}")}))
            .await
            .unwrap();
        assert_eq!(
            result.is_error,
            Some(false),
            "{why}: the call runs: {result:?}"
        );
    }
    for _ in 0..2 {
        server.payments().flush().await;
    }
    assert!(
        stripe.count("POST", "/v1/billing/meter_events") > 0,
        "{why}: delivery was tried"
    );
    assert_eq!(
        server.payments().pending_meter_events(),
        calls as u64,
        "{why}: refused usage is kept"
    );
    assert_eq!(
        failed_meter_events(&server.db),
        0,
        "{why}: nothing given up"
    );
    assert!(
        payment_events(&server.db, "meter_event_failed").is_empty(),
        "{why}"
    );
    assert_eq!(
        stripe.meter_events().len(),
        accepted,
        "{why}: nothing accepted"
    );
}

/// Every accepted meter event has its own identifier, and there is one per successful call.
fn assert_billed_once_each(stripe: &FakeStripe, customer: &str, successes: usize) {
    assert_eq!(
        stripe.meter_total("api_call", customer),
        successes as f64,
        "each successful call billed once"
    );
    let identifiers: std::collections::HashSet<_> = stripe
        .meter_events()
        .iter()
        .map(|event| event.identifier.clone())
        .collect();
    assert_eq!(identifiers.len(), stripe.meter_events().len());
}

/// A rotated (401) or restricted (403) key refuses meter events: the usage is not given up
/// but kept and retried, and delivered exactly once when the key works again.
#[tokio::test]
async fn metered_usage_refused_for_the_key_is_kept_and_delivered_once_the_key_works_again() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let (bob, customer) = subscriber(&stripe, &server, "bob").await;
    let mut successes = 0;
    for status in [401, 403] {
        stripe.inject(FaultRule::new(Fault::Status(status)).path("/v1/billing/meter_events"));
        calls_kept_while_refused(&stripe, &server, &bob, 2, &status.to_string()).await;
        successes += 2;
        stripe.clear_faults();
        deliver_all(server.payments(), &format!("after the {status}")).await;
        assert_billed_once_each(&stripe, &customer, successes);
    }
    assert_eq!(payment_events(&server.db, "meter_event_sent").len(), 4);
    assert!(!payment_events(&server.db, "meter_event_retried").is_empty());
}

/// A meter renamed at Stripe refuses the tool's events: they are kept, and delivered exactly
/// once when the name is restored.
#[tokio::test]
async fn usage_for_a_renamed_meter_is_kept_and_delivered_once_the_name_is_restored() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let (bob, customer) = subscriber(&stripe, &server, "bob").await;
    let meter = stripe
        .meters()
        .into_iter()
        .find(|meter| meter.event_name == "api_call")
        .unwrap()
        .id;
    stripe.rename_meter(&meter, "api_request");
    calls_kept_while_refused(&stripe, &server, &bob, 3, "renamed meter").await;
    stripe.rename_meter(&meter, "api_call");
    deliver_all(server.payments(), "after the name was restored").await;
    assert_billed_once_each(&stripe, &customer, 3);
    assert_eq!(failed_meter_events(&server.db), 0);
}

/// A metered price whose meter counts another event name than the tool's `meter` would have
/// every usage event refused: the server does not start, and the error names both.
#[tokio::test]
async fn a_metered_price_billing_another_meter_stops_the_server_at_startup() {
    let stripe = FakeStripe::start().await;
    fake_prices(&stripe);
    stripe.add_price(
        "price_usage",
        2,
        "usd",
        PriceKind::Metered {
            meter: "api_request".into(),
        },
    );
    let error = try_start(|db| stripe_payments(&stripe, db))
        .await
        .err()
        .expect("startup fails");
    let message = error.to_string();
    assert!(
        message.contains("price_usage")
            && message.contains("\"api_request\"")
            && message.contains("\"api_call\""),
        "{message}"
    );
}

/// While Stripe is down the sender pauses after the first failed event (as long as that event
/// backs off) instead of sending every waiting event in turn: an outage costs one request per
/// pause, not one per event.
#[tokio::test]
async fn an_outage_pauses_the_sender_instead_of_trying_every_event() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let (caller, _) = subscriber(&stripe, &server, "pat").await;
    let before = stripe.count("POST", "/v1/billing/meter_events");
    stripe.set_outage(true);
    for n in 0..12 {
        let result = call(&caller, "api_call", json!({"url": format!("/down/{n}")}))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(false), "{result:?}");
    }
    for _ in 0..3 {
        server.payments().flush().await;
    }
    let tried = stripe.count("POST", "/v1/billing/meter_events") - before;
    assert!(
        (1..=4).contains(&tried),
        "one attempt, then a pause (not one per event): {tried} requests"
    );
    assert_eq!(server.payments().pending_meter_events(), 12);
    stripe.set_outage(false);
    deliver_all(server.payments(), "after the outage").await;
    assert_eq!(stripe.meter_events().len(), 12, "each delivered once");
}
