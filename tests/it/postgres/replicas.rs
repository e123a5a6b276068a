//! Three replicas of the paid example on one database: credits are consumed in the database, so
//! together they never run more calls than were bought, and a payment recorded by one replica
//! (its `/pay` page, or Stripe's webhook) unlocks the tool on every replica within a second.

use std::time::{Duration, Instant};

use futures::future::join_all;
use mcp_analytics_tests::fake_stripe::FakeStripe;
use serde_json::json;

use super::{
    DEADLINE, IdentityProvider, Paid, add_the_paid_example_s_prices, checkout, database, paid_call,
    pay_locally, replicas, scalar, sql, until_it_runs_everywhere,
};

/// The bound: a change on one replica reaches every replica's cache within a second.
const PROPAGATION: Duration = Duration::from_secs(1);

/// The paid example's tool sold in packs of 50 uses.
const PACK_TOOL: &str = "make_thumbnail";

/// One purchase of the 50-use pack (checkout on replica A, paid on B's page), then 200
/// concurrent calls of the same user spread over the three replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_exactly_fifty_of_two_hundred_concurrent_calls_of_one_user_holding_fifty_credits()
 {
    let url = database("replicas_credits");
    let idp = IdentityProvider::start().await;
    let mut vars = idp.vars();
    vars.push(("MCP_ANALYTICS_DB", url.clone()));
    let replicas = replicas(3, "paid", &vars);
    let mut clients = Vec::new();
    for replica in &replicas {
        clients.push(replica.client(Some("alice")).await);
    }
    let image = |n: usize| json!({ "url": format!("https://example.com/{n}.png") });
    let session = checkout(&clients[0], PACK_TOOL, image(0)).await;
    pay_locally(&replicas[1], &session).await;
    let db = sql(&url).await;
    let left = "SELECT sum(credits)::BIGINT FROM payment_entitlements WHERE user_id = 'alice'";
    assert_eq!(scalar(&db, left).await, 50, "one purchase, 50 credits");

    let calls = (1..=200).map(|n| paid_call(&clients[n % 3], PACK_TOOL, image(n)));
    let outcomes = join_all(calls).await;
    let ran = outcomes.iter().filter(|o| **o == Paid::Ran).count();
    assert_eq!(
        (ran, outcomes.len() - ran),
        (50, 150),
        "ran, payment_required"
    );

    assert_eq!(scalar(&db, left).await, 0, "no credit left");
    let held = "SELECT count(*) FROM payment_reservations";
    assert_eq!(scalar(&db, held).await, 0, "no credit still reserved");
    let bought = "SELECT count(*) FROM payment_checkouts WHERE fulfilled";
    assert_eq!(scalar(&db, bought).await, 1, "one purchase");
    // What the replicas recorded: the tool ran 50 times; it answered payment_required to the
    // first call and to 150 of the 200.
    let recorded = format!(
        "SELECT count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'payment_required'), count(*)
         FROM tool_calls WHERE tool = '{PACK_TOOL}' AND user_id = 'alice'"
    );
    let end = Instant::now() + DEADLINE;
    loop {
        let row = db.query_one(&recorded, &[]).await.unwrap();
        let (ok, refused, all): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        if all >= 201 {
            assert_eq!(
                (ok, refused, all),
                (50, 151, 201),
                "ok, payment_required, calls"
            );
            break;
        }
        assert!(Instant::now() < end, "{all} of 201 calls recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The subscription of `api_call`, bought through a checkout that replica A created and replica
/// B's test payment page completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_made_on_one_replica_and_paid_on_another_s_page_unlocks_all_three_within_a_second()
 {
    let db = database("replicas_local_unlock");
    let idp = IdentityProvider::start().await;
    let mut vars = idp.vars();
    vars.push(("MCP_ANALYTICS_DB", db));
    let replicas = replicas(3, "paid", &vars);
    let mut clients = Vec::new();
    for replica in &replicas {
        clients.push(replica.client(Some("bob")).await);
    }
    let endpoint = json!({"endpoint": "https://api.example.com/v1"});
    for client in &clients {
        assert_ne!(
            paid_call(client, "api_call", endpoint.clone()).await,
            Paid::Ran
        );
    }

    let session = checkout(&clients[0], "api_call", endpoint.clone()).await;
    pay_locally(&replicas[1], &session).await;
    let clients: Vec<_> = clients.iter().collect();
    until_it_runs_everywhere(&clients, "api_call", endpoint, PROPAGATION).await;
}

/// On the fake Stripe: the checkout is created on replica A (through Stripe's API) and Stripe's
/// `checkout.session.completed` webhook goes to replica C only. A and B learn it from the
/// database, not by asking Stripe: between the webhook and the unlock Stripe is sent nothing but
/// the metered calls' usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_webhook_delivered_to_one_replica_unlocks_all_three_within_a_second() {
    let stripe = FakeStripe::start().await;
    add_the_paid_example_s_prices(&stripe);
    let db = database("replicas_webhook_unlock");
    let idp = IdentityProvider::start().await;
    let mut vars = idp.vars();
    vars.extend([
        ("MCP_ANALYTICS_DB", db),
        ("STRIPE_SECRET_KEY", stripe.secret_key().to_owned()),
        ("STRIPE_WEBHOOK_SECRET", stripe.webhook_secret().to_owned()),
        ("STRIPE_API_BASE", stripe.base_url().to_owned()),
    ]);
    let replicas = replicas(3, "paid", &vars);
    stripe.set_webhook_url(&replicas[2].url("/stripe/webhook"));
    let mut clients = Vec::new();
    for replica in &replicas {
        clients.push(replica.client(Some("carol")).await);
    }
    let endpoint = json!({"endpoint": "https://api.example.com/v1"});

    let session = checkout(&clients[0], "api_call", endpoint.clone()).await;
    let deliveries = stripe.complete_checkout(&session).await;
    assert!(
        !deliveries.is_empty() && deliveries.iter().all(|d| d.is_success()),
        "replica C accepts the webhook: {deliveries:?}\n{}",
        replicas[2].log()
    );
    let asked_before = stripe.requests().len();
    let clients: Vec<_> = clients.iter().collect();
    until_it_runs_everywhere(&clients, "api_call", endpoint, PROPAGATION).await;
    let asked: Vec<_> = stripe.requests()[asked_before..]
        .iter()
        .filter(|r| !(r.method == "POST" && r.path == "/v1/billing/meter_events"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(asked.is_empty(), "the replicas asked Stripe: {asked:?}");
}
