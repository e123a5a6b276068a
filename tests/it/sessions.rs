//! Sessions of sessionless callers through real MCP 2026-07-28 clients over stateless
//! streamable HTTP: split by the idle gap (`MCP_ANALYTICS_SESSION_IDLE`, the builder's
//! `session_idle`), stitched by the W3C trace id in `params._meta.traceparent` across separate
//! connections, and the same with two replicas writing to one PostgreSQL database.

use std::time::Duration;

use mcp_analytics::{Analytics, Config, store::SqliteStore};
use mcp_analytics_tests::{
    client::{call, call_traced, client_info},
    postgres::Cluster,
    server::TestServer,
};
use rmcp::{
    ClientLifecycleMode, ClientServiceExt, RoleClient,
    model::{ClientConfig, ProtocolVersion},
    service::RunningService,
};
use serde_json::json;

/// The idle gap of these tests; pauses are a little longer.
const IDLE: Duration = Duration::from_secs(1);
const PAUSE: Duration = Duration::from_millis(1_500);

/// One trace, as a client's two spans in it would send it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traceparent(span: u32) -> String {
    format!("00-{TRACE_ID}-{span:016x}-01")
}

/// A new connection of an MCP 2026-07-28 client (sessionless by design) to `server`, sending
/// `Authorization: Bearer <token>`.
async fn modern(server: &TestServer, token: &str) -> RunningService<RoleClient, ClientConfig> {
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    client_info()
        .serve_with_lifecycle(server.transport(Some(token)), lifecycle)
        .await
        .expect("the client connects")
}

/// Every stored call's session, in call order.
fn sessions(db: &std::path::Path) -> Vec<String> {
    mcp_analytics_tests::records::stored_rows(db)
        .into_iter()
        .map(|row| row.2.expect("every HTTP call has a session"))
        .collect()
}

#[tokio::test]
async fn sessionless_calls_further_apart_than_the_idle_gap_from_the_environment_are_two_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gap.db");
    let config =
        Config::from_lookup(|name| (name == "MCP_ANALYTICS_SESSION_IDLE").then(|| "1s".into()))
            .unwrap();
    let analytics = Analytics::builder()
        .config(config)
        .database(&db)
        .build()
        .unwrap();
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .stateless()
        .start()
        .await;

    let client = modern(&server, "token").await;
    call(&client, "add", json!({"a": 1, "b": 1})).await.unwrap();
    call(&client, "add", json!({"a": 2, "b": 2})).await.unwrap();
    tokio::time::sleep(PAUSE).await;
    call(&client, "whoami", json!({})).await.unwrap();
    analytics.flush().await;

    let found = sessions(&db);
    assert_eq!(found.len(), 3);
    assert_eq!(
        found[0], found[1],
        "calls right after each other: one session"
    );
    assert_ne!(
        found[1], found[2],
        "a pause past the gap starts a new session"
    );
    for session in &found {
        assert!(
            session.starts_with("d-") && session.len() > 19,
            "the caller's key and the session's start: {session}"
        );
    }
    let store = SqliteStore::open(&db).unwrap();
    let first = store.session(&found[0], 100).unwrap();
    assert_eq!(first.calls, 2, "{first:?}");
    assert!(first.duration_ms < PAUSE.as_millis() as i64, "{first:?}");
    let second = store.session(&found[2], 100).unwrap();
    assert_eq!(second.calls, 1, "{second:?}");
    assert!(second.start_ms > first.end_ms, "{first:?} {second:?}");
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn calls_carrying_one_trace_id_over_two_connections_are_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("trace.db");
    let analytics = Analytics::builder()
        .database(&db)
        .session_idle(IDLE)
        .build()
        .unwrap();
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .stateless()
        .start()
        .await;

    // The client's first connection, then, after a pause past the gap, a new connection with a
    // refreshed token (another caller key) in the same trace, and an untraced call on it.
    let first = modern(&server, "token-1").await;
    call_traced(
        &first,
        "add",
        json!({"a": 1, "b": 1}),
        &traceparent(1),
        None,
    )
    .await
    .unwrap();
    first.cancel().await.unwrap();
    tokio::time::sleep(PAUSE).await;
    let second = modern(&server, "token-2").await;
    call_traced(
        &second,
        "add",
        json!({"a": 2, "b": 2}),
        &traceparent(2),
        None,
    )
    .await
    .unwrap();
    call(&second, "whoami", json!({})).await.unwrap();
    second.cancel().await.unwrap();
    // Another caller, without the trace.
    let other = modern(&server, "token-3").await;
    call(&other, "whoami", json!({})).await.unwrap();
    other.cancel().await.unwrap();
    analytics.flush().await;

    let found = sessions(&db);
    assert_eq!(found.len(), 4);
    assert_eq!(found[1], found[0], "the same trace on a new connection");
    assert_eq!(
        found[2], found[0],
        "the new connection continues the session"
    );
    assert_ne!(found[3], found[0], "another caller without the trace");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_database_continue_split_and_stitch_the_same_sessions() {
    let url = Cluster::shared().create_database("sessionless_replicas");
    let replica = async || {
        let analytics = Analytics::builder()
            .database(url.as_str())
            .session_idle(IDLE)
            .build()
            .unwrap();
        let server = TestServer::demo()
            .analytics(analytics.clone())
            .stateless()
            .start()
            .await;
        (analytics, server)
    };
    let (analytics_a, a) = replica().await;
    let (analytics_b, b) = replica().await;
    // One caller whose calls a load balancer spreads over both replicas.
    let on_a = modern(&a, "token-1").await;
    let on_b = modern(&b, "token-1").await;
    call(&on_a, "add", json!({"a": 1, "b": 1})).await.unwrap();
    analytics_a.flush().await;
    call(&on_b, "add", json!({"a": 2, "b": 2})).await.unwrap();
    analytics_b.flush().await;
    // After a pause past the gap: a new session, continued by a new connection to the other
    // replica in the same trace with a refreshed token.
    tokio::time::sleep(PAUSE).await;
    call_traced(&on_a, "add", json!({"a": 3, "b": 3}), &traceparent(1), None)
        .await
        .unwrap();
    analytics_a.flush().await;
    tokio::time::sleep(PAUSE).await;
    let refreshed = modern(&b, "token-2").await;
    call_traced(&refreshed, "whoami", json!({}), &traceparent(2), None)
        .await
        .unwrap();
    analytics_b.flush().await;

    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let found: Vec<String> = db
        .query("SELECT session_id FROM tool_calls ORDER BY ts_ms, id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(
        found[1], found[0],
        "replica B continues replica A's session"
    );
    assert_ne!(
        found[2], found[1],
        "a pause past the gap starts a new session"
    );
    assert_eq!(
        found[3], found[2],
        "the trace joins a new connection to the other replica after a pause"
    );
    for client in [on_a, on_b, refreshed] {
        client.cancel().await.unwrap();
    }
    a.stop().await;
    b.stop().await;
}
