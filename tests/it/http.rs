//! Behaviour over real streamable HTTP on 127.0.0.1: stateful sessions (`Mcp-Session-Id`),
//! sessionless requests (stateless mode and MCP 2026-07-28), identity from request extensions.

use std::time::Duration;

use mcp_analytics::{Analytics, MemorySink, Status, Transport};
use mcp_analytics_tests::{
    client::{call, client_info, start_slow_call},
    records::{analytics, only, stored_rows},
    secrets::{assert_no_secrets, secret_arguments},
    server::{TestServer, bearer_identity, transport},
};
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt, model::ProtocolVersion};
use serde_json::json;

#[tokio::test]
async fn stateful_sessions_group_calls_and_users_are_recorded() {
    let server = TestServer::demo().identity(bearer_identity).start().await;

    let alice = client_info()
        .serve(server.transport(Some("alice")))
        .await
        .unwrap();
    let anonymous = client_info().serve(server.transport(None)).await.unwrap();
    call(&alice, "add", json!({"a": 1, "b": 2})).await.unwrap();
    call(&alice, "divide", json!({"a": 1, "b": 0}))
        .await
        .unwrap();
    let whoami = call(&alice, "whoami", json!({})).await.unwrap();
    call(&anonymous, "add", json!({"a": 5, "b": 5}))
        .await
        .unwrap();
    call(&anonymous, "connect_service", secret_arguments())
        .await
        .unwrap();
    server.analytics.flush().await;

    let events = server.sink.events();
    assert_eq!(events.len(), 5);
    let alice_events: Vec<_> = events
        .iter()
        .filter(|event| event.user_id.as_deref() == Some("alice"))
        .collect();
    assert_eq!(alice_events.len(), 3);
    let alice_session = alice_events[0]
        .session_id
        .clone()
        .expect("HTTP calls always have a session");
    assert!(
        alice_events
            .iter()
            .all(|event| event.session_id.as_deref() == Some(alice_session.as_str()))
    );
    let text = format!("{:?}", whoami.content);
    assert!(
        text.contains(&format!("alice|{alice_session}")),
        "the tool sees the same ids: {text}"
    );
    let anonymous_events: Vec<_> = events
        .iter()
        .filter(|event| event.user_id.is_none())
        .collect();
    assert_eq!(anonymous_events.len(), 2);
    assert_ne!(
        anonymous_events[0].session_id.as_deref(),
        Some(alice_session.as_str())
    );
    assert_eq!(
        anonymous_events[0].session_id,
        anonymous_events[1].session_id
    );
    for event in &events {
        assert_eq!(event.transport, Transport::Http);
        assert_eq!(event.client_name.as_deref(), Some("test-client"));
        assert!(
            uuid_like(event.session_id.as_deref().unwrap()),
            "Mcp-Session-Id is a UUID: {:?}",
            event.session_id
        );
    }
    assert_eq!(only(&events, "divide").status, Status::ToolError);
    for row in stored_rows(&server.db) {
        assert_no_secrets(&format!("{row:?}"));
    }
    alice.cancel().await.unwrap();
    anonymous.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn sessionless_requests_get_a_stable_derived_correlation_id() {
    let sink = MemorySink::new();
    let analytics = Analytics::builder().sink(sink.clone()).build().unwrap();
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .identity(bearer_identity)
        .stateless()
        .start()
        .await;

    // A legacy client against a stateless server: rmcp fabricates `rmcp/…` as the peer info.
    let legacy = client_info()
        .serve(server.transport(Some("bob")))
        .await
        .unwrap();
    call(&legacy, "add", json!({"a": 1, "b": 1})).await.unwrap();
    call(&legacy, "add", json!({"a": 2, "b": 2})).await.unwrap();
    // An MCP 2026-07-28 client: sessionless by design, client info in every request's `_meta`.
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let modern = client_info()
        .serve_with_lifecycle(server.transport(Some("carol")), lifecycle)
        .await
        .unwrap();
    call(&modern, "add", json!({"a": 3, "b": 3})).await.unwrap();
    call(&modern, "whoami", json!({})).await.unwrap();
    analytics.flush().await;

    let events = sink.events();
    assert_eq!(events.len(), 4);
    let (bob, carol): (Vec<_>, Vec<_>) = events
        .iter()
        .partition(|event| event.user_id.as_deref() == Some("bob"));
    assert_eq!(bob.len(), 2);
    assert!(
        carol
            .iter()
            .all(|event| event.user_id.as_deref() == Some("carol"))
    );
    for group in [&bob, &carol] {
        let session = group[0].session_id.clone().expect("never NULL on HTTP");
        assert!(
            session.starts_with("d-") && session.len() == 18,
            "{session}"
        );
        assert!(
            group
                .iter()
                .all(|event| event.session_id.as_deref() == Some(session.as_str()))
        );
    }
    assert_ne!(bob[0].session_id, carol[0].session_id);
    assert!(
        bob.iter().all(|event| event.client_name.is_none()),
        "fabricated rmcp peer info is not a client: {bob:?}"
    );
    assert!(
        carol
            .iter()
            .all(|event| event.client_name.as_deref() == Some("test-client"))
    );
    assert!(
        carol
            .iter()
            .all(|event| event.protocol_version.as_deref() == Some("2026-07-28"))
    );
    legacy.cancel().await.unwrap();
    modern.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn shutting_the_server_down_flushes_analytics_to_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let sink = MemorySink::new();
    let analytics = analytics(&sink, &db);
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .identity(bearer_identity)
        .start()
        .await;
    let client = client_info().serve(server.transport(None)).await.unwrap();
    for i in 0..20 {
        call(&client, "add", json!({"a": i, "b": 1})).await.unwrap();
    }
    client.cancel().await.unwrap();
    server.stop().await;
    assert_eq!(
        stored_rows(&db).len(),
        20,
        "every call is on disk after shutdown"
    );
    assert_eq!(analytics.stats().dropped, 0);
}

#[tokio::test]
async fn every_status_over_http() {
    let server = TestServer::demo().identity(bearer_identity).start().await;
    let client = client_info()
        .serve(server.transport(Some("dana")))
        .await
        .unwrap();

    call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    call(&client, "divide", json!({"a": 1, "b": 0}))
        .await
        .unwrap();
    call(&client, "add", json!({"a": "one"})).await.unwrap();
    call(&client, "missing", json!({})).await.unwrap_err();
    call(&client, "fail_protocol", json!({})).await.unwrap_err();
    call(&client, "explode", json!({})).await.unwrap();
    let handle = start_slow_call(&client).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    handle.cancel(Some("stop".into())).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !server
        .sink
        .events()
        .iter()
        .any(|event| event.tool == "slow")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cancelled call was not recorded"
        );
        server.analytics.flush().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let statuses: Vec<(String, Status)> = server
        .sink
        .events()
        .into_iter()
        .map(|event| (event.tool, event.status))
        .collect();
    let expected = [
        ("add", Status::Ok),
        ("divide", Status::ToolError),
        ("add", Status::InvalidParams),
        ("missing", Status::UnknownTool),
        ("fail_protocol", Status::ProtocolError),
        ("explode", Status::Panic),
        ("slow", Status::Cancelled),
    ];
    let expected: Vec<(String, Status)> = expected
        .iter()
        .map(|(tool, status)| ((*tool).to_owned(), *status))
        .collect();
    assert_eq!(statuses, expected);
    let rows = stored_rows(&server.db);
    assert_eq!(rows.len(), 7);
    assert!(
        rows.iter()
            .all(|row| row.3.as_deref() == Some("dana") && row.2.is_some())
    );
    client.cancel().await.unwrap();
    server.stop().await;
}

/// Many clients at once over HTTP: every call ends up on disk exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_lose_no_events() {
    const CLIENTS: usize = 8;
    const CALLS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("concurrent.db");
    let analytics = Analytics::builder().database(&db).build().unwrap();
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .identity(bearer_identity)
        .start()
        .await;
    let mut clients = Vec::new();
    for index in 0..CLIENTS {
        let addr = server.addr;
        clients.push(tokio::spawn(async move {
            let user = format!("user-{index}");
            let client = client_info()
                .serve(transport(addr, Some(&user)))
                .await
                .unwrap();
            for call_index in 0..CALLS {
                let sum = call(&client, "add", json!({"a": index, "b": call_index}))
                    .await
                    .unwrap();
                assert_eq!(
                    sum.structured_content,
                    Some(json!({"sum": index + call_index}))
                );
            }
            client.cancel().await.unwrap();
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    server.stop().await;
    let stats = analytics.stats();
    // Every call, and every client's `initialize`.
    let events = (CLIENTS * (CALLS + 1)) as u64;
    assert_eq!(
        (stats.recorded, stats.dropped, stats.written),
        (events, 0, events)
    );
    let connection = rusqlite::Connection::open(&db).unwrap();
    let (rows, ids, users, sessions): (i64, i64, i64, i64) = connection
        .query_row(
            "SELECT count(*), count(DISTINCT id), count(DISTINCT user_id), count(DISTINCT session_id) FROM tool_calls",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .unwrap();
    assert_eq!((rows, ids, users, sessions), (400, 400, 8, 8));
    let rollup: i64 = connection
        .query_row("SELECT sum(calls) FROM tool_calls_1m", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rollup, 400, "the rollup counts every call once");
    let hourly: i64 = connection
        .query_row("SELECT sum(calls) FROM tool_calls_1h", [], |row| row.get(0))
        .unwrap();
    let per_user: i64 = connection
        .query_row("SELECT sum(calls) FROM user_calls_1h", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        (hourly, per_user),
        (400, 400),
        "hourly aggregates are flushed on shutdown"
    );
    let (initializes, in_sessions): (i64, i64) = connection
        .query_row(
            "SELECT count(*), count(DISTINCT session_id) FROM requests WHERE method = 'initialize' AND session_id IN (SELECT session_id FROM tool_calls)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (initializes, in_sessions),
        (8, 8),
        "each client's initialize, in the session it opened"
    );
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36 && text.chars().filter(|c| *c == '-').count() == 4
}
