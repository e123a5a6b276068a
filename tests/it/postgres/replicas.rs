//! Three replicas of the paid example on one database: credits are consumed in the database, so
//! together they never run more calls than were bought, and a payment recorded by one replica
//! (its `/pay` page, or Stripe's webhook) unlocks the tool on every replica within a second.

use std::time::Duration;

use futures::future::join_all;
use mcp_analytics_tests::fake_stripe::{FakeStripe, PriceKind};
use serde_json::json;

use super::{
    IdentityProvider, Paid, checkout, database, paid_call, pay_locally, replicas, scalar, sql,
    until_it_runs_everywhere,
};

/// The bound: a change on one replica reaches every replica's cache within a second.
const PROPAGATION: Duration = Duration::from_secs(1);

/// The paid example sells `generate_image` one use per purchase, and a caller holding a credit
/// is never offered another checkout, so 50 credits cannot be held at once: they are bought one
/// at a time, and each purchase (paid on the replicas' pages in turn) is raced by four
/// concurrent calls spread over the three replicas — 50 purchases, 200 calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_exactly_as_many_of_two_hundred_concurrent_calls_as_the_fifty_credits_bought()
 {
    let db = database("replicas_credits");
    let idp = IdentityProvider::start().await;
    let mut vars = idp.vars();
    vars.push(("MCP_ANALYTICS_DB", db.clone()));
    let replicas = replicas(3, "paid", &vars);
    let mut clients = Vec::new();
    for replica in &replicas {
        clients.push(replica.client(Some("alice")).await);
    }
    let prompt = json!({"prompt": "a lighthouse"});

    let mut session = checkout(&clients[0], "generate_image", prompt.clone()).await;
    let (mut ran, mut payment_required) = (0, 0);
    for round in 0..50 {
        pay_locally(&replicas[round % 3], &session).await;
        let callers = [0, 1, 2, (round + 1) % 3].map(|index| &clients[index]);
        let outcomes =
            join_all(callers.map(|client| paid_call(client, "generate_image", prompt.clone())))
                .await;
        let runs = outcomes.iter().filter(|o| **o == Paid::Ran).count();
        assert!(runs <= 1, "round {round}: one credit ran {runs} calls");
        ran += runs;
        payment_required += outcomes.len() - runs;
        let paid = std::mem::take(&mut session);
        session = outcomes
            .into_iter()
            .find_map(|outcome| match outcome {
                Paid::PaymentRequired(offered) if offered != paid => Some(offered),
                _ => None,
            })
            .unwrap_or_else(|| panic!("round {round}: no new checkout was offered"));
    }
    assert_eq!((ran, payment_required), (50, 150));

    let db = sql(&db).await;
    let left = "SELECT sum(credits)::BIGINT FROM payment_entitlements";
    assert_eq!(scalar(&db, left).await, 0, "no credit left");
    let held = "SELECT count(*) FROM payment_reservations";
    assert_eq!(scalar(&db, held).await, 0, "no credit still reserved");
    let bought = "SELECT count(*) FROM payment_checkouts WHERE fulfilled";
    assert_eq!(scalar(&db, bought).await, 50, "50 purchases");
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
/// `checkout.session.completed` webhook goes to replica C only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_webhook_delivered_to_one_replica_unlocks_all_three_within_a_second() {
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
    let clients: Vec<_> = clients.iter().collect();
    until_it_runs_everywhere(&clients, "api_call", endpoint, PROPAGATION).await;
}
