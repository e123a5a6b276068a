//! Many servers, one place: the HTTP exporter ships events to a collector over 127.0.0.1; the
//! collector may be down for a while (nothing is lost or duplicated), and refuses bad requests.

use std::{io::Write, net::SocketAddr, path::Path, time::Duration};

use mcp_analytics::{
    Analytics, Method, RequestEvent, RequestStatus, Status, ToolCallEvent, Transport,
    collector::{Collector, INGEST_PATH},
    export::{HttpExporter, HttpExporterConfig},
};
use mcp_analytics_tests::client::{call, connect_demo};
use serde_json::json;
use tokio::sync::oneshot;

const KEY: &str = "collector-key";

/// A collector on `addr` until the returned sender is dropped or fired.
async fn start_collector(
    addr: SocketAddr,
    database: &Path,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the collector's port is free");
    let (stop, stopped) = oneshot::channel::<()>();
    let collector = Collector::new(database).api_key(Some(KEY.into()));
    let done = tokio::spawn(async move {
        collector
            .serve_on(listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, done)
}

fn count(database: &Path, sql: &str) -> i64 {
    if !database.exists() {
        return 0;
    }
    rusqlite::Connection::open(database)
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap_or(0)
}

async fn wait_for(database: &Path, rows: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(database, "SELECT count(*) FROM tool_calls") < rows {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the collector never got {rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_duplicated_while_the_collector_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (local, collected) = (
        dir.path().join("server.db"),
        dir.path().join("collected.db"),
    );
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = HttpExporterConfig {
        api_key: Some(KEY.into()),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        flush_timeout: Duration::from_millis(100),
        ..HttpExporterConfig::new(format!("http://{addr}"))
    };
    let exporter = HttpExporter::new(config, Some(&local)).unwrap();
    let analytics = Analytics::builder()
        .database(&local)
        .sink(exporter)
        .build()
        .unwrap();
    let client = connect_demo(analytics.clone()).await;
    let calls = |range: std::ops::Range<i64>| {
        let client = &client;
        async move {
            for i in range {
                call(client, "add", json!({"a": i, "b": 1})).await.unwrap();
            }
        }
    };

    calls(0..30).await; // the collector is not running yet
    client.list_all_tools().await.unwrap();
    analytics.flush().await;
    assert!(
        count(&local, "SELECT count(*) FROM export_outbox") > 0,
        "undelivered batches wait in the outbox"
    );

    let (stop, done) = start_collector(addr, &collected).await;
    calls(30..60).await;
    wait_for(&collected, 60).await;
    let _ = stop.send(());
    done.await.unwrap();

    calls(60..80).await; // down again
    analytics.flush().await;
    let (stop, done) = start_collector(addr, &collected).await;
    wait_for(&collected, 80).await;
    analytics.flush().await;

    assert_eq!(count(&collected, "SELECT count(*) FROM tool_calls"), 80);
    assert_eq!(
        count(&collected, "SELECT count(DISTINCT id) FROM tool_calls"),
        80
    );
    assert_eq!(
        count(&collected, "SELECT sum(calls) FROM tool_calls_1m"),
        80,
        "the rollup counts each call once"
    );
    assert_eq!(
        count(
            &collected,
            "SELECT count(DISTINCT server_name) FROM tool_calls"
        ),
        1
    );
    assert_eq!(
        count(&local, "SELECT count(*) FROM tool_calls"),
        80,
        "the server keeps its own copy"
    );
    // The other requests (the connection's initialize, a tools/list) travel the same way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&collected, "SELECT count(*) FROM requests") < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the requests never reached the collector"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        count(
            &collected,
            "SELECT count(*) FROM requests WHERE method IN ('initialize', 'tools/list') AND id IN (SELECT id FROM requests)"
        ),
        2
    );
    assert_eq!(count(&collected, "SELECT sum(calls) FROM requests_1m"), 2);
    assert_eq!(count(&local, "SELECT count(*) FROM requests"), 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&local, "SELECT count(*) FROM export_outbox") > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox never drained"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    client.cancel().await.unwrap();
    let _ = stop.send(());
    done.await.unwrap();
}

fn events(ids: &[&str]) -> Vec<ToolCallEvent> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    ids.iter()
        .map(|id| ToolCallEvent {
            id: (*id).into(),
            ts_ms: now_ms - 60_000,
            server_name: "edge-1".into(),
            server_version: "1".into(),
            tool: "search".into(),
            user_id: None,
            user_email: None,
            user_name: None,
            session_id: Some("s".into()),
            client_name: None,
            client_version: None,
            protocol_version: None,
            transport: Transport::Http,
            request_id: None,
            duration_us: 1200,
            status: Status::Ok,
            error_type: None,
            error_message: None,
            params: Some("{}".into()),
            result: None,
            ts_ns: None,
            traceparent: None,
            tracestate: None,
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_refuses_bad_requests_and_deduplicates() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("collected.db");
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, done) = start_collector(addr, &database).await;
    let url = format!("http://{addr}{INGEST_PATH}");
    let http = reqwest::Client::new();
    let batch = serde_json::to_vec(&json!({"events": events(&["e-1", "e-2"])})).unwrap();
    let post = |body: Vec<u8>, key: Option<&str>, gzipped: bool| {
        let mut request = http.post(&url).body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if gzipped {
            request = request.header("content-encoding", "gzip");
        }
        request.send()
    };

    assert_eq!(
        post(batch.clone(), None, false).await.unwrap().status(),
        401
    );
    assert_eq!(
        post(batch.clone(), Some("wrong"), false)
            .await
            .unwrap()
            .status(),
        401
    );

    let malformed = post(b"{\"events\": [1, 2]".to_vec(), Some(KEY), false)
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(
        malformed
            .text()
            .await
            .unwrap()
            .contains("expected {\"events\": [...]}")
    );
    let too_many = format!("{{\"events\": [{}{{}}]}}", "{},".repeat(50_000));
    let too_many = post(too_many.into_bytes(), Some(KEY), false).await.unwrap();
    assert_eq!(too_many.status(), 413);
    assert!(
        too_many
            .text()
            .await
            .unwrap()
            .contains("at most 50000 events per request")
    );
    // Refused as soon as the limit is passed: a 413, or — when the collector answered and closed
    // while the upload was still being written — the upload cut off (the requests below show the
    // collector still serving).
    match post(vec![b' '; 9 * 1024 * 1024], Some(KEY), false).await {
        Ok(answer) => assert_eq!(answer.status(), 413),
        Err(error) => assert!(cut_off(&error), "{error:?}"),
    }
    assert_eq!(
        post(gzip(&vec![b' '; 65 * 1024 * 1024]), Some(KEY), true)
            .await
            .unwrap()
            .status(),
        413,
        "gzip bombs too"
    );

    let first: serde_json::Value = post(gzip(&batch), Some(KEY), true)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        first,
        json!({"accepted": 2, "duplicates": 0, "rejected": []})
    );
    let again: serde_json::Value = post(batch, Some(KEY), false)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        again,
        json!({"accepted": 0, "duplicates": 2, "rejected": []}),
        "a retried delivery is counted once"
    );
    assert_eq!(count(&database, "SELECT count(*) FROM tool_calls"), 2);
    assert_eq!(count(&database, "SELECT sum(calls) FROM tool_calls_1m"), 2);

    let dashboard = http
        .get(format!("http://{addr}/api/overview"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        dashboard.status(),
        401,
        "the collector's dashboard needs the key too"
    );
    let dashboard = http
        .get(format!("http://{addr}/api/overview"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), 200);
    let _ = stop.send(());
    done.await.unwrap();
}

/// An exporter to a collector at `addr`, retrying fast, with its outbox in `outbox`.
fn exporter_to(addr: SocketAddr, outbox: &Path) -> HttpExporter {
    let config = HttpExporterConfig {
        api_key: Some(KEY.into()),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(20),
        flush_timeout: Duration::from_millis(100),
        ..HttpExporterConfig::new(format!("http://{addr}"))
    };
    HttpExporter::new(config, Some(outbox)).unwrap()
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Waits until the exporter's outbox is empty.
async fn wait_drained(exporter: &HttpExporter) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while exporter.pending() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox never drained; (delivered, dropped) = {:?}",
            exporter.delivered_and_dropped()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `count` events of about `params_bytes` bytes each (highly compressible, as JSON often is).
fn big_events(count: usize, params_bytes: usize) -> Vec<ToolCallEvent> {
    let ids: Vec<String> = (0..count).map(|index| format!("big-{index}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut events = events(&ids);
    let params = format!("{{\"text\":\"{}\"}}", "x".repeat(params_bytes));
    for event in &mut events {
        event.params = Some(params.clone());
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_stores_the_good_events_of_a_batch_and_names_the_refused_ones() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("collected.db");
    let addr = free_addr();
    let (stop, done) = start_collector(addr, &database).await;
    let mut batch = events(&["good-1", "no-tool", "odd-status", "hostile", "good-2"]);
    batch[1].tool.clear();
    batch[3].tool = format!("\u{1b}]0;owned\u{7}{}", "t".repeat(4096));
    batch[3].client_name = Some("\u{1b}[31mclient\u{9b}".into());
    batch[3].session_id = Some(format!("s\r\n{}", "s".repeat(1000)));
    let mut body = json!({ "events": batch });
    body["events"][2]["status"] = json!("a status from the future");
    let response = reqwest::Client::new()
        .post(format!("http://{addr}{INGEST_PATH}"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(
        status, 200,
        "one bad event does not refuse the batch: {text}"
    );
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
        (Some(3), Some(0)),
        "{answer}"
    );
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{answer}");
    assert_eq!(
        (rejected[0]["index"].as_u64(), rejected[0]["id"].as_str()),
        (Some(1), Some("no-tool"))
    );
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("`tool` is empty")
    );
    assert_eq!(
        (rejected[1]["index"].as_u64(), rejected[1]["id"].as_str()),
        (Some(2), Some("odd-status"))
    );
    assert!(
        rejected[1]["reason"].as_str().unwrap().contains("status"),
        "{answer}"
    );

    assert_eq!(count(&database, "SELECT count(*) FROM tool_calls"), 3);
    let (tool, client, session): (String, String, String) = rusqlite::Connection::open(&database)
        .unwrap()
        .query_row(
            "SELECT tool, client_name, session_id FROM tool_calls WHERE id = 'hostile'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert!(
        tool.starts_with("]0;ownedttt") && tool.chars().count() <= 256,
        "{tool}"
    );
    assert_eq!(client, "[31mclient");
    assert!(session.starts_with("ssss") && session.chars().count() <= 256);
    let _ = stop.send(());
    done.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_before_the_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("collected.db");
    let addr = free_addr();
    let (stop, done) = start_collector(addr, &database).await;
    for (authorization, expected) in [("Bearer wrong", "401"), ("", "401")] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {INGEST_PATH} HTTP/1.1\r\nHost: {addr}\r\n{}Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{{\"events\": [",
            if authorization.is_empty() {
                String::new()
            } else {
                format!("Authorization: {authorization}\r\n")
            }
        );
        // The body is announced as 1 GB and never finished: only an answer from the headers can
        // come back.
        tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes())
            .await
            .unwrap();
        let mut answer = vec![0; 64];
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::AsyncReadExt::read(&mut stream, &mut answer),
        )
        .await
        .expect("the collector answers without waiting for the body")
        .unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {expected}")),
            "{answer}"
        );
    }
    let _ = stop.send(());
    done.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_event_costs_the_exporter_only_that_event() {
    let dir = tempfile::tempdir().unwrap();
    let (outbox, collected) = (
        dir.path().join("server.db"),
        dir.path().join("collected.db"),
    );
    let addr = free_addr();
    let (stop, done) = start_collector(addr, &collected).await;
    let mut exporter = exporter_to(addr, &outbox);
    let mut batch = events(&["e-1", "e-2", "e-3"]);
    batch[1].tool.clear();
    mcp_analytics::Sink::write(&mut exporter, &batch).unwrap();
    wait_drained(&exporter).await;
    assert_eq!(
        count(&collected, "SELECT count(*) FROM tool_calls"),
        2,
        "the good events arrive"
    );
    assert_eq!(
        exporter.delivered_and_dropped(),
        (2, 1),
        "only the refused event is dropped"
    );
    drop(exporter);
    let _ = stop.send(());
    done.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_the_collector_accepts_is_sent_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (outbox, collected) = (
        dir.path().join("server.db"),
        dir.path().join("collected.db"),
    );
    let addr = free_addr();
    let (stop, done) = start_collector(addr, &collected).await;
    let mut exporter = exporter_to(addr, &outbox);
    // 66 MiB of JSON: over the collector's decompressed-size cap, though it gzips to little.
    let batch = big_events(66, 1024 * 1024);
    mcp_analytics::Sink::write(&mut exporter, &batch).unwrap();
    drop(batch);
    wait_drained(&exporter).await;
    assert_eq!(count(&collected, "SELECT count(*) FROM tool_calls"), 66);
    assert_eq!(exporter.delivered_and_dropped(), (66, 0));
    drop(exporter);
    let _ = stop.send(());
    done.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_batch_the_collector_finds_too_large_is_split_until_it_fits() {
    let dir = tempfile::tempdir().unwrap();
    let (outbox, collected) = (
        dir.path().join("server.db"),
        dir.path().join("collected.db"),
    );
    // An outbox left by an earlier version, which wrote each writer batch as one row.
    let batch = serde_json::to_vec(&json!({"events": big_events(66, 1024 * 1024)})).unwrap();
    let connection = rusqlite::Connection::open(&outbox).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE export_outbox (id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL, \
             attempts INTEGER NOT NULL DEFAULT 0, next_at_ms INTEGER NOT NULL, \
             events INTEGER NOT NULL, payload BLOB NOT NULL)",
        )
        .unwrap();
    connection
        .execute(
            "INSERT INTO export_outbox (created_ms, next_at_ms, events, payload) VALUES (0, 0, 66, ?1)",
            [gzip(&batch)],
        )
        .unwrap();
    drop((connection, batch));
    let addr = free_addr();
    let (stop, done) = start_collector(addr, &collected).await;
    let exporter = exporter_to(addr, &outbox);
    wait_drained(&exporter).await;
    assert_eq!(count(&collected, "SELECT count(*) FROM tool_calls"), 66);
    assert_eq!(exporter.delivered_and_dropped(), (66, 0));
    drop(exporter);
    let _ = stop.send(());
    done.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_refuses_timestamps_no_clock_can_produce_and_keeps_working() {
    // Found by fuzz/ (target `ingest`): an event at `ts_ms = i64::MIN` overflowed the minute
    // rollup's arithmetic, the storing task panicked and the collector answered 500.
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("collected.db");
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, done) = start_collector(addr, &database).await;
    let url = format!("http://{addr}{INGEST_PATH}");
    let http = reqwest::Client::new();
    for (id, ts_ms) in [("min", i64::MIN), ("max", i64::MAX), ("before-1970", -1)] {
        let mut event = events(&[id]);
        event[0].ts_ms = ts_ms;
        let response = http
            .post(&url)
            .bearer_auth(KEY)
            .json(&json!({"events": event}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            !status.is_server_error(),
            "ts_ms = {ts_ms} answered {status}: {text}"
        );
        assert!(text.contains("ts_ms"), "the answer names the field: {text}");
    }
    assert_eq!(
        count(&database, "SELECT count(*) FROM tool_calls"),
        0,
        "nothing of those is stored"
    );
    let good = http
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({"events": events(&["good"])}))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200, "{}", good.text().await.unwrap());
    assert_eq!(count(&database, "SELECT count(*) FROM tool_calls"), 1);
    let _ = stop.send(());
    done.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_travel_with_the_calls_and_are_checked_and_cleaned_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("collected.db");
    let addr = free_addr();
    let (stop, done) = start_collector(addr, &database).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let request = |id: &str| RequestEvent {
        id: id.into(),
        ts_ms: now_ms - 60_000,
        server_name: "edge-1".into(),
        server_version: "1".into(),
        method: Method::ResourcesRead,
        target: Some("test://doc/1".into()),
        user_id: None,
        session_id: Some("s".into()),
        client_name: Some("client".into()),
        client_version: None,
        protocol_version: Some("2025-11-25".into()),
        transport: Transport::Http,
        request_id: None,
        duration_us: 800,
        status: RequestStatus::Ok,
        error_type: None,
        error_message: None,
        client_capabilities: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    };
    let mut hostile = request("hostile");
    hostile.target = Some(format!("test://\u{1b}]0;owned\u{7}{}", "x".repeat(4096)));
    let mut unnamed = request("unnamed");
    unnamed.server_name.clear();
    let mut body = json!({ "events": [
        events(&["call-1"])[0],
        request("read-1"),
        hostile,
        request("from-the-future"),
        unnamed,
    ]});
    body["events"][3]["method"] = json!("tools/teleport");
    let response = reqwest::Client::new()
        .post(format!("http://{addr}{INGEST_PATH}"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
        (Some(3), Some(0)),
        "{answer}"
    );
    let rejected: Vec<(u64, &str)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|refusal| {
            (
                refusal["index"].as_u64().unwrap(),
                refusal["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(rejected.len(), 2, "{answer}");
    assert_eq!(rejected[0].0, 3);
    assert!(rejected[0].1.contains("unknown method"), "{answer}");
    assert_eq!(rejected[1].0, 4);
    assert!(rejected[1].1.contains("`server_name` is empty"), "{answer}");
    assert_eq!(count(&database, "SELECT count(*) FROM tool_calls"), 1);
    assert_eq!(count(&database, "SELECT count(*) FROM requests"), 2);
    assert_eq!(count(&database, "SELECT sum(calls) FROM requests_1h"), 2);
    let target: String = rusqlite::Connection::open(&database)
        .unwrap()
        .query_row(
            "SELECT target FROM requests WHERE id = 'hostile'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        target.starts_with("test://]0;ownedxxx") && target.chars().count() <= 256,
        "{target}"
    );
    // Delivered again: duplicates, like calls.
    let response = reqwest::Client::new()
        .post(format!("http://{addr}{INGEST_PATH}"))
        .bearer_auth(KEY)
        .json(&json!({ "events": [request("read-1")] }))
        .send()
        .await
        .unwrap();
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["duplicates"].as_u64(), Some(1), "{answer}");
    let _ = stop.send(());
    done.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_splits_a_sessionless_caller_s_calls_by_its_idle_gap() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("collected.db");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let collector = Collector::new(&database)
        .api_key(Some(KEY.into()))
        .session_idle(Duration::from_secs(1));
    let done = tokio::spawn(async move {
        collector
            .serve_on(listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    // One sessionless caller's calls as a server's exporter ships them: its derived key.
    let mut batch = events(&["a", "b", "c"]);
    for (event, after_ms) in batch.iter_mut().zip([0, 800, 2_500]) {
        event.session_id = Some("d-0123456789abcdef".into());
        event.ts_ms += after_ms;
    }
    let response = reqwest::Client::new()
        .post(format!("http://{addr}{INGEST_PATH}"))
        .bearer_auth(KEY)
        .json(&json!({ "events": batch }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sessions = |id: &str| -> String {
        rusqlite::Connection::open(&database)
            .unwrap()
            .query_row(
                "SELECT session_id FROM tool_calls WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .unwrap()
    };
    assert_eq!(sessions("a"), sessions("b"), "800 ms apart: one session");
    assert_ne!(sessions("b"), sessions("c"), "1.7 s apart: two");
    stop.send(()).unwrap();
    done.await.unwrap();
}

/// Whether `error` is an upload the server stopped reading: the connection reset or closed
/// while the request body was being written.
fn cut_off(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            );
        }
        source = error.source();
    }
    false
}
