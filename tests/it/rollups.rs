//! Rollups never lag behind the rows they summarize: after a burst and silence every dashboard
//! range shows the burst (the writer's timer writes the hourly rollups and `recorder_stats`), a
//! `kill -9` loses no rollup (the next start rebuilds the hours that disagree with their rows),
//! and unknown tool names past 100 distinct ones an hour fold into one rollup bucket.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use mcp_analytics::{Analytics, Sink, Status, ToolCallEvent, Transport, store::SqliteStore};
use mcp_analytics_tests::{
    client::{call, client_info, connect_demo},
    server::{TestServer, bearer_identity},
};
use rmcp::ServiceExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The rollup name of unknown tools past the per-hour limit (documented in `mcp_analytics::store`'s reference).
const OTHER_UNKNOWN_TOOLS: &str = "(other unknown tools)";

/// `(calls, sessions, users)` of one dashboard range, read from its JSON API.
async fn dashboard_figures(http: &reqwest::Client, dashboard: &str, range: &str) -> [u64; 3] {
    let overview: Value = http
        .get(format!("{dashboard}/api/overview?range={range}"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let figure = |pointer: &str| overview.pointer(pointer).and_then(Value::as_u64).unwrap();
    [
        figure("/report/calls"),
        figure("/report/sessions/count"),
        figure("/users"),
    ]
}

/// `written` of this process's `recorder_stats` row, if there is one.
fn recorded_written(db: &Path) -> Option<i64> {
    let connection = rusqlite::Connection::open(db).unwrap();
    connection
        .query_row(
            "SELECT written FROM recorder_stats WHERE pid = ?1",
            [std::process::id()],
            |row| row.get(0),
        )
        .ok()
}

/// 30 calls from 3 sessions of 2 users, then nothing: within 2 s (no flush, no later call)
/// every range of the dashboard shows 30 calls, 3 sessions and 2 users, and `recorder_stats`
/// counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_then_silence_shows_in_every_dashboard_range_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("burst.db");
    let analytics = Analytics::builder().database(&db).build().unwrap();
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .identity(bearer_identity)
        .start()
        .await;
    let mut clients = Vec::new();
    for user in [Some("alice"), Some("bob"), None] {
        let client = client_info().serve(server.transport(user)).await.unwrap();
        for a in 0..10 {
            call(&client, "add", json!({"a": a, "b": 1})).await.unwrap();
        }
        clients.push(client);
    }
    let burst_ended = Instant::now();

    let http = reqwest::Client::new();
    let expected = [30, 3, 2];
    let mut seen = Vec::new();
    loop {
        seen.clear();
        for range in ["1h", "24h", "7d", "30d"] {
            seen.push((
                range,
                dashboard_figures(&http, &server.dashboard_url(), range).await,
            ));
        }
        let written = recorded_written(&db);
        // Thirty calls and three `initialize` requests.
        if seen.iter().all(|(_, figures)| *figures == expected) && written == Some(33) {
            break;
        }
        assert!(
            burst_ended.elapsed() < Duration::from_secs(2),
            "2 s after the burst the dashboard shows (calls, sessions, users) {seen:?} and recorder_stats written = {written:?}; expected {expected:?} in every range and 33"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for client in clients {
        client.cancel().await.unwrap();
    }
    drop(server);
}

/// Every rollup equals the same aggregate computed from the raw rows: per hour, per minute and
/// per quarter hour (calls, total and maximum duration per server, tool, status), per user and hour, and the
/// distinct sessions and users of the report.
fn assert_rollups_match_rows(db: &Path) {
    let connection = rusqlite::Connection::open(db).unwrap();
    let rows = |sql: &str| -> Vec<Vec<rusqlite::types::Value>> {
        let mut statement = connection.prepare(sql).unwrap();
        let columns = statement.column_count();
        statement
            .query_map([], |row| (0..columns).map(|index| row.get(index)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let pairs = [
        (
            "SELECT ts_ms - ts_ms % 3600000, server_name, tool, status, coalesce(error_type, ''), count(*), sum(duration_us), max(duration_us) FROM tool_calls GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
            "SELECT hour_ms, server_name, tool, status, error_type, calls, duration_us_sum, duration_us_max FROM tool_calls_1h ORDER BY 1, 2, 3, 4, 5",
        ),
        (
            "SELECT ts_ms - ts_ms % 60000, server_name, tool, status, count(*), sum(duration_us), max(duration_us) FROM tool_calls GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            "SELECT minute_ms, server_name, tool, status, calls, duration_us_sum, duration_us_max FROM tool_calls_1m ORDER BY 1, 2, 3, 4",
        ),
        (
            "SELECT ts_ms - ts_ms % 900000, server_name, tool, status, count(*), sum(duration_us), max(duration_us) FROM tool_calls GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            "SELECT quarter_ms, server_name, tool, status, calls, duration_us_sum, duration_us_max FROM tool_calls_15m ORDER BY 1, 2, 3, 4",
        ),
        (
            "SELECT ts_ms - ts_ms % 3600000, user_id, count(*), sum(status NOT IN ('ok', 'input_required', 'payment_required')) FROM tool_calls WHERE user_id IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
            "SELECT hour_ms, user_id, calls, errors FROM user_calls_1h ORDER BY 1, 2",
        ),
    ];
    assert!(!rows(pairs[0].0).is_empty(), "no rows in {db:?}");
    for (from_rows, rollup) in pairs {
        assert_eq!(rows(rollup), rows(from_rows), "{rollup}");
    }
    let distinct = |column: &str| -> u64 {
        connection
            .query_row(
                &format!("SELECT count(DISTINCT {column}) FROM tool_calls"),
                [],
                |row| row.get::<_, i64>(0),
            )
            .unwrap() as u64
    };
    let store = SqliteStore::open(db).unwrap();
    let report = store.report(0, None).unwrap();
    assert_eq!(report.sessions.count, distinct("session_id"));
    assert_eq!(store.users(0).unwrap(), distinct("user_id"));
}

/// A stdio demo server process on `db`, spoken to in raw JSON-RPC lines.
struct Process {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Process {
    /// Starts the server and completes the handshake (analytics is set up before it answers).
    async fn start(db: &Path) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stdio-demo"))
            .env("MCP_ANALYTICS_DB", db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut process = Self {
            child,
            stdin,
            stdout,
        };
        process
            .send(&[
                r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#.to_owned(),
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
            ])
            .await;
        process
    }

    /// Sends `messages` and waits for an answer to each request among them.
    async fn send(&mut self, messages: &[String]) {
        let requests = messages
            .iter()
            .filter(|message| message.contains(r#""id":"#))
            .count();
        for message in messages {
            self.stdin
                .write_all(format!("{message}\n").as_bytes())
                .await
                .unwrap();
        }
        let mut answered = 0;
        while answered < requests {
            let line = self
                .stdout
                .next_line()
                .await
                .unwrap()
                .expect("server answers");
            answered += usize::from(line.contains(r#""id":"#));
        }
    }
}

fn stored_count(db: &Path) -> usize {
    let connection = rusqlite::Connection::open(db).unwrap();
    connection
        .query_row("SELECT count(*) FROM tool_calls", [], |row| {
            row.get::<_, i64>(0)
        })
        .map_or(0, |count| count as usize)
}

/// `kill -9` of a real server process right after a burst is stored: once the server starts
/// again, every rollup equals the raw rows.
#[cfg(unix)]
#[tokio::test]
async fn after_kill_9_right_after_a_burst_a_restart_makes_the_rollups_equal_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("killed.db");
    let mut server = Process::start(&db).await;
    let calls: Vec<String> = (1..=40)
        .map(|id| {
            let (name, arguments) = match id % 4 {
                0 => ("divide", json!({"a": 1, "b": 0})),
                1 => ("no_such_tool", json!({})),
                _ => ("add", json!({"a": id, "b": 1})),
            };
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}}).to_string()
        })
        .collect();
    server.send(&calls).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored_count(&db) < 40 {
        assert!(Instant::now() < deadline, "the burst was not stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = server.child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    server.child.wait().await.unwrap();

    let restarted = Process::start(&db).await;
    assert_rollups_match_rows(&db);
    drop(restarted);
}

fn event(index: usize, tool: &str, status: Status) -> ToolCallEvent {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    ToolCallEvent {
        id: format!("0190a5c2-0000-7000-8000-{index:012x}"),
        ts_ms: now_ms - (index as i64 % 7) * 3_600_000,
        server_name: "s".into(),
        server_version: "1".into(),
        tool: tool.into(),
        user_id: Some(format!("user-{}", index % 5)),
        user_email: None,
        user_name: None,
        session_id: Some(format!("session-{}", index % 9)),
        client_name: None,
        client_version: None,
        protocol_version: None,
        transport: Transport::Http,
        request_id: None,
        duration_us: 100 + index as u64,
        status,
        error_type: status.is_error().then(|| status.as_str().to_owned()),
        error_message: None,
        params: None,
        result: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }
}

/// A store that stops (as under `kill -9`) with hourly rollups still in memory, over several
/// hours: starting analytics on the file rebuilds exactly those hours.
#[test]
fn hourly_rollups_lost_with_the_process_are_rebuilt_when_analytics_starts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lost.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let first: Vec<ToolCallEvent> = (0..50)
        .map(|index| event(index, "add", Status::Ok))
        .collect();
    store.append(&first).unwrap();
    let lost: Vec<ToolCallEvent> = (50..120)
        .map(|index| {
            let status = [Status::Ok, Status::ToolError][index % 2];
            event(index, ["add", "divide"][index % 3 % 2], status)
        })
        .collect();
    Sink::write(&mut store, &lost).unwrap();
    // Dropped without a flush: what a killed process leaves behind.
    drop(store);

    drop(Analytics::builder().database(&db).build().unwrap());
    assert_rollups_match_rows(&db);
}

/// 150 distinct unknown tool names in one hour from a real client: the raw rows keep every name;
/// the rollups keep the first 100 and count the other 50 calls under `(other unknown tools)`,
/// which the report and the dashboard's API show as one row.
#[tokio::test]
async fn past_100_distinct_unknown_tool_names_an_hour_rollups_count_the_rest_in_one_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unknown.db");
    // All 150 calls fall in one hour.
    let into_hour = now_ms().rem_euclid(3_600_000);
    if into_hour > 3_590_000 {
        tokio::time::sleep(Duration::from_millis((3_600_500 - into_hour) as u64)).await;
    }
    let analytics = Analytics::builder().database(&db).build().unwrap();
    let client = connect_demo(analytics.clone()).await;
    for index in 0..150 {
        let missing = call(&client, &format!("looked_for_{index:03}"), json!({})).await;
        assert!(missing.is_err(), "an unknown tool is an error");
    }
    call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    analytics.flush().await;
    client.cancel().await.unwrap();

    let connection = rusqlite::Connection::open(&db).unwrap();
    let names = |sql: &str| -> Vec<(String, i64)> {
        connection
            .prepare(sql)
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let raw = names(
        "SELECT tool, count(*) FROM tool_calls WHERE status = 'unknown_tool' GROUP BY tool ORDER BY tool",
    );
    assert_eq!(raw.len(), 150, "raw rows keep every name");
    let mut expected: Vec<(String, i64)> = raw[..100].to_vec();
    expected.push((OTHER_UNKNOWN_TOOLS.to_owned(), 50));
    expected.sort();
    for table in ["tool_calls_1m", "tool_calls_15m", "tool_calls_1h"] {
        let rolled = names(&format!(
            "SELECT tool, sum(calls) FROM {table} WHERE status = 'unknown_tool' GROUP BY tool ORDER BY tool"
        ));
        assert_eq!(rolled, expected, "{table}");
    }
    drop(connection);

    let store = SqliteStore::open(&db).unwrap();
    for since_ms in [0, now_ms() - 3_600_000] {
        let report = store.report(since_ms, None).unwrap();
        assert_eq!(report.calls, 151);
        assert_eq!(report.tools.len(), 102, "add, 100 names and the bucket");
        let bucket = report
            .tools
            .iter()
            .find(|tool| tool.tool == OTHER_UNKNOWN_TOOLS)
            .expect("the bucket is a row of the report");
        assert_eq!((bucket.calls, bucket.errors), (50, 50));
    }
    let bucket = store.report(0, Some(OTHER_UNKNOWN_TOOLS)).unwrap();
    assert_eq!((bucket.calls, bucket.tools.len()), (50, 1));

    // Calls of the next hour start a new allowance: an hour-old name is counted under itself.
    let later = ToolCallEvent {
        ts_ms: now_ms() + 3_600_000,
        server_name: "demo".into(),
        ..event(1_000, "looked_for_149", Status::UnknownTool)
    };
    let mut writer = SqliteStore::open(&db).unwrap();
    writer.append(&[later]).unwrap();
    let hour = (now_ms() + 3_600_000) / 3_600_000 * 3_600_000;
    let connection = rusqlite::Connection::open(&db).unwrap();
    let next_hour: Vec<String> = connection
        .prepare("SELECT tool FROM tool_calls_1h WHERE hour_ms = ?1")
        .unwrap()
        .query_map([hour], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(next_hour, ["looked_for_149"]);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
