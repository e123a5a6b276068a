//! Strings a client chooses (unknown tool names, `clientInfo`, JSON-RPC ids, protocol versions,
//! session headers) are stored capped and without control characters, whatever the transport.

use mcp_analytics::{Analytics, MAX_CLIENT_TEXT_CHARS, MemorySink, ToolCallEvent};
use mcp_analytics_tests::{Demo, records::analytics, server::TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Terminal escapes (colour, window title, clear screen, C1 CSI), line breaks, a bidi override.
const HOSTILE: &str = "\u{1b}[31mred\u{1b}]0;owned\u{7}\r\n\t\u{9b}2J\u{7f}\u{202e}gnp.exe";

/// `HOSTILE` followed by a megabyte.
fn hostile_and_huge() -> String {
    format!("{HOSTILE}{}", "x".repeat(1024 * 1024))
}

fn assert_printable_and_capped(field: &str, value: Option<&str>) {
    let value = value.unwrap_or_else(|| panic!("`{field}` is recorded"));
    assert!(
        value.chars().count() <= MAX_CLIENT_TEXT_CHARS,
        "`{field}` keeps {} characters",
        value.chars().count()
    );
    assert!(
        !value.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "`{field}` keeps control characters: {:?}",
        value.chars().take(40).collect::<String>()
    );
}

fn assert_client_strings_are_clean(event: &ToolCallEvent) {
    assert_printable_and_capped("tool", Some(&event.tool));
    assert_printable_and_capped("client_name", event.client_name.as_deref());
    assert_printable_and_capped("client_version", event.client_version.as_deref());
    assert_printable_and_capped("protocol_version", event.protocol_version.as_deref());
    assert_printable_and_capped("request_id", event.request_id.as_deref());
    assert_printable_and_capped("session_id", event.session_id.as_deref());
    let message = event.error_message.as_deref().unwrap_or_default();
    assert!(
        !message.contains('\u{1b}') && message.len() < 2 * 1024,
        "the unknown-tool message repeats the raw name: {:?}",
        message.chars().take(60).collect::<String>()
    );
}

/// Sends one JSON-RPC message as a line and, for requests, reads lines up to its answer.
async fn exchange(
    writer: &mut (impl AsyncWriteExt + Unpin),
    reader: &mut (impl AsyncBufReadExt + Unpin),
    message: Value,
) -> Option<Value> {
    let mut line = serde_json::to_vec(&message).unwrap();
    line.push(b'\n');
    writer.write_all(&line).await.unwrap();
    writer.flush().await.unwrap();
    let id = message.get("id")?;
    loop {
        let mut answer = String::new();
        assert!(
            reader.read_line(&mut answer).await.unwrap() > 0,
            "the server hung up"
        );
        let answer: Value = serde_json::from_str(&answer).unwrap();
        if answer.get("id") == Some(id) {
            return Some(answer);
        }
    }
}

#[tokio::test]
async fn hostile_client_strings_over_a_byte_stream_are_stored_capped_and_printable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostile.db");
    let sink = MemorySink::new();
    let analytics = analytics(&sink, &db);
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let server = Demo {
        analytics: analytics.clone(),
    };
    tokio::spawn(async move {
        let running = rmcp::ServiceExt::serve(server, server_io).await.unwrap();
        let _ = running.waiting().await;
    });
    let (read, mut write) = tokio::io::split(client_io);
    let mut read = BufReader::new(read);
    let huge = hostile_and_huge();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": format!("2025-06-18{huge}"),
            "capabilities": {},
            "clientInfo": {"name": huge, "version": huge},
        }
    });
    let answer = exchange(&mut write, &mut read, initialize).await.unwrap();
    assert!(answer.get("result").is_some(), "{answer}");
    exchange(
        &mut write,
        &mut read,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    let call = json!({
        "jsonrpc": "2.0", "id": huge, "method": "tools/call",
        "params": {"name": huge, "arguments": {}}
    });
    let answer = exchange(&mut write, &mut read, call).await.unwrap();
    assert!(answer.get("error").is_some(), "an unknown tool: {answer}");
    analytics.flush().await;

    let events = sink.events();
    assert_eq!(events.len(), 1);
    assert_client_strings_are_clean(&events[0]);
    assert!(
        events[0].tool.starts_with("[31mred]0;owned2Jgnp.exe"),
        "{}",
        events[0].tool
    );
    let stored: (String, String, String, String, String) = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT tool, client_name, client_version, protocol_version, request_id FROM tool_calls",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
        )
        .unwrap();
    for (field, value) in [
        ("tool", &stored.0),
        ("client_name", &stored.1),
        ("client_version", &stored.2),
        ("protocol_version", &stored.3),
        ("request_id", &stored.4),
    ] {
        assert_printable_and_capped(field, Some(value));
    }
}

#[tokio::test]
async fn a_long_session_header_over_http_is_stored_capped_and_printable() {
    let sink = MemorySink::new();
    let analytics = Analytics::builder().sink(sink.clone()).build().unwrap();
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .stateless()
        .start()
        .await;
    let addr = server.addr;

    // Header values may carry tabs and up to hyper's header limit.
    let session = format!("s\t{}", "0123456789".repeat(1_000));
    let huge_name = "\u{1b}[2J".to_owned() + &"n".repeat(10_000);
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-session-id", &session)
        .json(&json!({
            "jsonrpc": "2.0", "id": "r\u{1b}[1m", "method": "tools/call",
            "params": {"name": huge_name, "arguments": {}}
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    analytics.flush().await;

    let events = sink.events();
    assert_eq!(events.len(), 1, "{body}");
    let event = &events[0];
    assert_printable_and_capped("session_id", event.session_id.as_deref());
    assert_printable_and_capped("request_id", event.request_id.as_deref());
    assert_printable_and_capped("tool", Some(&event.tool));
    assert!(
        event
            .session_id
            .as_deref()
            .unwrap()
            .starts_with("s0123456789")
    );
    server.stop().await;
}
