//! The examples run unchanged against a PostgreSQL URL in `MCP_ANALYTICS_DB`: they answer
//! calls, and their dashboard shows them.

use mcp_analytics_tests::client::call;
use serde_json::json;

use super::{Paid, Replica, database, paid_call, until_the_dashboard_shows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_unchanged_against_a_postgres_url() {
    let replica = Replica::start(
        "quickstart",
        &[("MCP_ANALYTICS_DB", database("quickstart"))],
    );
    let client = replica.client(None).await;
    let sum = call(&client, "add", json!({"a": 2, "b": 3})).await.unwrap();
    assert_eq!(sum.is_error, Some(false), "{sum:?}");
    let page = reqwest::get(replica.url("/analytics")).await.unwrap();
    assert_eq!(page.status(), 200, "the dashboard is served");
    until_the_dashboard_shows(&replica, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paid_example_runs_unchanged_against_a_postgres_url() {
    let replica = Replica::start("paid", &[("MCP_ANALYTICS_DB", database("paid_example"))]);
    let client = replica.client(None).await;
    let sum = call(&client, "add", json!({"a": 2, "b": 3})).await.unwrap();
    assert_eq!(sum.is_error, Some(false), "{sum:?}");
    let prompt = json!({"prompt": "a harbour"});
    let Paid::PaymentRequired(session) = paid_call(&client, "generate_image", prompt.clone()).await
    else {
        panic!("generate_image ran unpaid");
    };
    super::pay_locally(&replica, &session).await;
    assert_eq!(
        paid_call(&client, "generate_image", prompt).await,
        Paid::Ran
    );
    let page = reqwest::get(replica.url("/analytics")).await.unwrap();
    assert_eq!(page.status(), 200, "the dashboard is served");
    until_the_dashboard_shows(&replica, 3).await;
}
