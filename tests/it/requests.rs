//! Every request a server answers is recorded, not just `tools/call`: the lifecycle and utility
//! requests the generated handler answers (`initialize`, `server/discover`, `tools/list`,
//! `ping`, `logging/setLevel`) over a duplex pipe, a stdio child process and streamable HTTP —
//! legacy sessions and the MCP 2026-07-28 lifecycle — each with its method, status, client,
//! protocol version and session.

#![allow(deprecated)] // rmcp marks logging deprecated (SEP-2577); MCP still defines it.

use std::time::Duration;

use mcp_analytics::{Method, RequestStatus, Transport};
use mcp_analytics_tests::{
    client::{call, client_info, connect_demo, ping},
    records::{analytics, only, only_request, stored_requests},
    server::{TestServer, bearer_identity},
};
use rmcp::{
    ClientLifecycleMode, ClientServiceExt, ServiceExt,
    model::{LoggingLevel, ProtocolVersion, SetLevelRequestParams},
    transport::TokioChildProcess,
};
use serde_json::json;

#[tokio::test]
async fn the_lifecycle_and_utility_requests_of_a_connection_are_recorded_in_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("requests.db");
    let sink = mcp_analytics::MemorySink::new();
    let analytics = analytics(&sink, &db);
    let client = connect_demo(analytics.clone()).await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 8, "answered as before");
    ping(&client).await.unwrap();
    assert!(
        client.peer_info().unwrap().capabilities.logging.is_some(),
        "every generated server takes logging/setLevel (its tools may log)"
    );
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .unwrap();
    call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    analytics.flush().await;

    let requests = sink.requests();
    let methods: Vec<Method> = requests.iter().map(|request| request.method).collect();
    assert_eq!(
        methods,
        [
            Method::Initialize,
            Method::ToolsList,
            Method::Ping,
            Method::LoggingSetLevel
        ]
    );
    let session = only(&sink.events(), "add").session_id.clone();
    for request in &requests {
        assert_eq!(request.session_id, session, "one connection, one session");
        assert_eq!(request.client_name.as_deref(), Some("test-client"));
        assert_eq!(request.client_version.as_deref(), Some("1.2.3"));
        assert_eq!(request.protocol_version.as_deref(), Some("2025-11-25"));
        assert_eq!(request.transport, Transport::Stdio);
        assert_eq!(request.server_name, "demo");
    }
    let initialize = only_request(&requests, Method::Initialize);
    assert_eq!(initialize.status, RequestStatus::Ok);
    let capabilities: serde_json::Value =
        serde_json::from_str(initialize.client_capabilities.as_deref().unwrap()).unwrap();
    assert!(capabilities.is_object(), "{capabilities}");
    let set_level = only_request(&requests, Method::LoggingSetLevel);
    assert_eq!(set_level.status, RequestStatus::Ok);
    assert_eq!(set_level.target.as_deref(), Some("warning"));

    let rows = stored_requests(&db);
    let stored: Vec<(&str, &str)> = rows
        .iter()
        .map(|row| (row.method.as_str(), row.status.as_str()))
        .collect();
    assert_eq!(
        stored,
        [
            ("initialize", "ok"),
            ("tools/list", "ok"),
            ("ping", "ok"),
            ("logging/setLevel", "ok"),
        ]
    );
    assert!(rows.iter().all(|row| row.transport == "stdio"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_stdio_server_records_its_requests_into_the_configured_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stdio.db");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stdio-demo"));
    command.env("MCP_ANALYTICS_DB", &db).current_dir(dir.path());
    let client = client_info()
        .serve(TokioChildProcess::new(command).unwrap())
        .await
        .unwrap();
    client.list_all_tools().await.unwrap();
    ping(&client).await.unwrap();
    // Closing stdin ends the server, which flushes before exiting.
    client.cancel().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = if db.exists() {
            stored_requests(&db)
        } else {
            Vec::new()
        };
        if rows.len() >= 3 {
            break rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server did not flush its requests: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let methods: Vec<&str> = rows.iter().map(|row| row.method.as_str()).collect();
    assert_eq!(methods, ["initialize", "tools/list", "ping"]);
    for row in &rows {
        assert_eq!(row.status, "ok");
        assert_eq!(row.transport, "stdio");
        assert_eq!(row.client_name.as_deref(), Some("test-client"));
        assert_eq!(row.protocol_version.as_deref(), Some("2025-11-25"));
        assert_eq!(row.session_id, rows[0].session_id);
    }
}

#[tokio::test]
async fn legacy_sessions_and_the_2026_lifecycle_over_http_are_recorded_with_their_own_protocol() {
    let server = TestServer::demo().identity(bearer_identity).start().await;
    let legacy = client_info()
        .serve(server.transport(Some("alice")))
        .await
        .unwrap();
    legacy.list_all_tools().await.unwrap();
    call(&legacy, "add", json!({"a": 1, "b": 2})).await.unwrap();
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let modern = client_info()
        .serve_with_lifecycle(server.transport(Some("carol")), lifecycle)
        .await
        .unwrap();
    modern.list_all_tools().await.unwrap();
    call(&modern, "add", json!({"a": 3, "b": 4})).await.unwrap();
    server.analytics.flush().await;

    let requests = server.sink.requests();
    let calls = server.sink.events();
    let (alice, carol): (Vec<_>, Vec<_>) = requests
        .iter()
        .partition(|request| request.user_id.as_deref() == Some("alice"));
    let methods = |requests: &[&mcp_analytics::RequestEvent]| {
        requests
            .iter()
            .map(|request| request.method)
            .collect::<Vec<_>>()
    };
    assert_eq!(methods(&alice), [Method::Initialize, Method::ToolsList]);
    assert_eq!(methods(&carol), [Method::Discover, Method::ToolsList]);
    for request in &requests {
        assert_eq!(request.status, RequestStatus::Ok);
        assert_eq!(request.transport, Transport::Http);
        assert_eq!(request.client_name.as_deref(), Some("test-client"));
    }
    for request in &alice {
        assert_eq!(request.protocol_version.as_deref(), Some("2025-11-25"));
    }
    for request in &carol {
        assert_eq!(request.protocol_version.as_deref(), Some("2026-07-28"));
    }
    // Listing and calling share the session: the `Mcp-Session-Id` of a legacy session, the
    // derived correlation id of a sessionless 2026-07-28 client.
    let session_of = |user: &str| {
        calls
            .iter()
            .find(|call| call.user_id.as_deref() == Some(user))
            .and_then(|call| call.session_id.clone())
    };
    // The `initialize` that opens a legacy session is recorded in it (the server names it).
    assert_eq!(alice[0].session_id, session_of("alice"));
    assert_eq!(alice[1].session_id, session_of("alice"));
    assert_eq!(carol[0].session_id, session_of("carol"));
    assert_eq!(carol[1].session_id, session_of("carol"));
    let discover = only_request(&requests, Method::Discover);
    assert!(
        discover.client_capabilities.is_some(),
        "2026-07-28 clients declare their capabilities in every request"
    );

    let rows = stored_requests(&server.db);
    let stored: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|row| (row.method.as_str(), row.protocol_version.as_deref()))
        .collect();
    for expected in [
        ("initialize", Some("2025-11-25")),
        ("server/discover", Some("2026-07-28")),
    ] {
        assert!(stored.contains(&expected), "{stored:?}");
    }
    assert_eq!(rows.len(), 4);
    legacy.cancel().await.unwrap();
    modern.cancel().await.unwrap();
    server.stop().await;
}
