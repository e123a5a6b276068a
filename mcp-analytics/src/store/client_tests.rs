//! The per-client views, the missing tools and the context cost of the SQLite store's report.

use super::{ClientReport, MissingToolClient, SqliteStore};
use crate::{
    catalog::{ToolCatalog, ToolCost},
    event::{Status, ToolCallEvent, Transport},
};

const HOUR_MS: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A call of `tool` by `client` (`(name, version, protocol)`) in `session`.
fn call(
    id: usize,
    ts_ms: i64,
    tool: &str,
    client: (&str, &str, &str),
    session: &str,
    status: Status,
    duration_ms: u64,
) -> ToolCallEvent {
    ToolCallEvent {
        id: format!("call-{id}"),
        ts_ms,
        server_name: "s".into(),
        server_version: "1".into(),
        tool: tool.into(),
        user_id: None,
        user_email: None,
        user_name: None,
        session_id: Some(session.into()),
        client_name: Some(client.0.into()).filter(|name: &String| !name.is_empty()),
        client_version: Some(client.1.into()).filter(|version: &String| !version.is_empty()),
        protocol_version: Some(client.2.into()),
        transport: Transport::Stdio,
        request_id: None,
        duration_us: duration_ms * 1000,
        status,
        error_type: None,
        error_message: None,
        params: None,
        result: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }
}

const CLAUDE: (&str, &str, &str) = ("claude-code", "1.2.0", "2025-11-25");
const INSPECTOR: (&str, &str, &str) = ("inspector", "0.9.0", "2026-07-28");
const ANONYMOUS: (&str, &str, &str) = ("", "", "2026-07-28");

/// Twelve calls: claude-code 8 (2 failed, 2 sessions), the inspector 3 (1 unknown tool, 1
/// session), a client without a name 1 (an unknown tool).
fn calls(ts_ms: i64) -> Vec<ToolCallEvent> {
    let mut calls = Vec::new();
    for n in 0..8 {
        let status = if n < 2 { Status::ToolError } else { Status::Ok };
        let session = if n % 2 == 0 { "a" } else { "b" };
        calls.push(call(
            n,
            ts_ms,
            "search",
            CLAUDE,
            session,
            status,
            10 * (n as u64 + 1),
        ));
    }
    calls.push(call(8, ts_ms, "search", INSPECTOR, "c", Status::Ok, 5));
    calls.push(call(9, ts_ms, "search", INSPECTOR, "c", Status::Ok, 5));
    calls.push(call(
        10,
        ts_ms,
        "delete_all",
        INSPECTOR,
        "c",
        Status::UnknownTool,
        1,
    ));
    calls.push(call(
        11,
        ts_ms,
        "delete_all",
        ANONYMOUS,
        "d",
        Status::UnknownTool,
        1,
    ));
    calls
}

#[test]
fn calls_are_broken_down_by_client_name_version_and_protocol_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("a.db")).unwrap();
    let now = now_ms();
    store.append(&calls(now - 60_000)).unwrap();
    let report = store.report(now - HOUR_MS, None).unwrap();
    type Figures<'r> = (
        Option<&'r str>,
        Option<&'r str>,
        Option<&'r str>,
        u64,
        u64,
        u64,
    );
    let figures: Vec<Figures<'_>> = report
        .clients
        .iter()
        .map(|client| {
            (
                client.client_name.as_deref(),
                client.client_version.as_deref(),
                client.protocol_version.as_deref(),
                client.calls,
                client.errors,
                client.sessions,
            )
        })
        .collect();
    assert_eq!(
        figures,
        [
            (
                Some("claude-code"),
                Some("1.2.0"),
                Some("2025-11-25"),
                8,
                2,
                2
            ),
            (
                Some("inspector"),
                Some("0.9.0"),
                Some("2026-07-28"),
                3,
                1,
                1
            ),
            (None, None, Some("2026-07-28"), 1, 1, 1),
        ]
    );
    let claude: &ClientReport = &report.clients[0];
    assert!(
        (35.0..=50.0).contains(&claude.p50_ms) && (75.0..=85.0).contains(&claude.p95_ms),
        "latency of 10..80 ms: {claude:?}"
    );
    let protocols: Vec<(Option<&str>, u64, u64, u64)> = report
        .protocol_versions
        .iter()
        .map(|protocol| {
            (
                protocol.protocol_version.as_deref(),
                protocol.calls,
                protocol.errors,
                protocol.sessions,
            )
        })
        .collect();
    assert_eq!(
        protocols,
        [(Some("2025-11-25"), 8, 2, 2), (Some("2026-07-28"), 4, 2, 2)]
    );
    // A report of one tool counts that tool's calls only.
    let search = store.report(now - HOUR_MS, Some("search")).unwrap();
    assert_eq!(
        search
            .clients
            .iter()
            .map(|client| client.calls)
            .collect::<Vec<_>>(),
        [8, 2]
    );
    assert!(search.missing_tools.is_empty());
}

#[test]
fn missing_tools_are_the_unknown_names_called_with_their_clients_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("a.db")).unwrap();
    let now = now_ms();
    store.append(&calls(now - 60_000)).unwrap();
    let report = store.report(now - HOUR_MS, None).unwrap();
    assert_eq!(report.missing_tools.len(), 1, "{:?}", report.missing_tools);
    let missing = &report.missing_tools[0];
    assert_eq!(
        (missing.tool.as_str(), missing.calls, missing.sessions),
        ("delete_all", 2, 2)
    );
    assert_eq!(
        missing.clients,
        [
            MissingToolClient {
                client_name: None,
                client_version: None,
                calls: 1
            },
            MissingToolClient {
                client_name: Some("inspector".into()),
                client_version: Some("0.9.0".into()),
                calls: 1
            },
        ]
    );
    // Another server's report has none of them.
    assert!(
        store
            .server_report(now - HOUR_MS, None, "other")
            .unwrap()
            .missing_tools
            .is_empty()
    );
}

/// Hours stored before the client rollup existed are rebuilt from their rows by the next
/// writer's start, so the per-client views cover them too.
#[test]
fn hours_stored_before_the_client_rollup_are_rebuilt_when_a_writer_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let now = now_ms();
    let hour = now - now % HOUR_MS - 2 * HOUR_MS;
    let mut store = SqliteStore::open(&path).unwrap();
    store.append(&calls(hour + 60_000)).unwrap();
    let before = store.report(hour, None).unwrap();
    // As an older version left it: no client rows (nor the tables of later migrations), and
    // its hours not listed as dirty.
    let older = crate::schema::MIGRATIONS
        .iter()
        .position(|migration| migration.contains("CREATE TABLE client_calls_1h"))
        .unwrap();
    store
        .connection()
        .execute_batch(&format!(
            "DROP TABLE client_calls_1h; DROP TABLE tool_catalog; DROP INDEX tool_calls_invalid_params; DROP TABLE tool_loops_1m; DROP TABLE alert_state; DELETE FROM rollup_dirty; PRAGMA user_version = {older};"
        ))
        .unwrap();
    drop(store);
    let mut store = SqliteStore::open(&path).unwrap();
    assert!(store.report(hour, None).unwrap().clients.is_empty());
    assert_eq!(store.repair_rollups().unwrap(), 1);
    assert_eq!(store.report(hour, None).unwrap(), before);
    assert_eq!(before.clients.len(), 3);
}

#[test]
fn a_caller_inventing_a_client_per_call_keeps_an_hour_to_its_first_hundred_clients_and_the_rest_as_other()
 {
    use crate::store::{CLIENTS_PER_HOUR, OTHER_CLIENTS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let now = now_ms();
    let hour = now - now % HOUR_MS - HOUR_MS;
    let invented: Vec<ToolCallEvent> = (0..250)
        .map(|n| {
            let name = format!("client-{n}");
            call(
                n,
                hour + n as i64,
                "search",
                (&name, "1.0", "2026-07-28"),
                "s",
                Status::Ok,
                1,
            )
        })
        .collect();
    // Written in batches by two writers one after the other: the second admits no new client.
    let mut store = SqliteStore::open(&path).unwrap();
    for batch in invented[..120].chunks(40) {
        store.append(batch).unwrap();
    }
    drop(store);
    let mut store = SqliteStore::open(&path).unwrap();
    for batch in invented[120..].chunks(40) {
        store.append(batch).unwrap();
    }
    let report = store.report(hour, None).unwrap();
    let named: Vec<&str> = report
        .clients
        .iter()
        .filter_map(|client| client.client_name.as_deref())
        .filter(|name| *name != OTHER_CLIENTS)
        .collect();
    assert_eq!(named.len(), CLIENTS_PER_HOUR);
    assert!(named.iter().all(|name| {
        name.strip_prefix("client-")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            < CLIENTS_PER_HOUR
    }));
    let other: u64 = report
        .clients
        .iter()
        .filter(|client| client.client_name.as_deref() == Some(OTHER_CLIENTS))
        .map(|client| client.calls)
        .sum();
    assert_eq!(other, 250 - CLIENTS_PER_HOUR as u64);
    let rows: i64 = store
        .connection()
        .query_row(
            "SELECT count(DISTINCT client_name) FROM tool_calls",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(rows, 250, "raw rows keep every client");
}

fn catalog(server: &str, version: &str, recorded_ms: i64, tools: &[(&str, u64)]) -> ToolCatalog {
    ToolCatalog {
        server_name: server.into(),
        server_version: version.into(),
        recorded_ms,
        list_bytes: tools.iter().map(|(_, bytes)| bytes).sum::<u64>() + 12,
        list_tokens: 0,
        tools: tools
            .iter()
            .map(|(tool, bytes)| ToolCost {
                tool: (*tool).into(),
                bytes: *bytes,
                tokens: bytes.div_ceil(4),
            })
            .collect(),
    }
}

#[test]
fn the_report_shows_each_servers_latest_tool_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("a.db")).unwrap();
    let old = catalog("s", "1", 1_000, &[("search", 300)]);
    let new = catalog("s", "2", 2_000, &[("search", 500), ("fetch", 120)]);
    let other = catalog("t", "1", 1_500, &[("ping", 40)]);
    for written in [&new, &old, &other] {
        store.write_catalog(written).unwrap();
    }
    // A restart of version 1 makes it the latest again.
    let restarted = ToolCatalog {
        recorded_ms: 3_000,
        ..old.clone()
    };
    let report = |store: &SqliteStore, tool| store.report(0, tool).unwrap().context_cost;
    assert_eq!(report(&store, None), [new.clone(), other.clone()]);
    store.write_catalog(&restarted).unwrap();
    assert_eq!(report(&store, None), [restarted.clone(), other.clone()]);
    // A report of one tool keeps its entry and the whole list's size.
    let without_tools = ToolCatalog {
        tools: Vec::new(),
        ..other.clone()
    };
    assert_eq!(report(&store, Some("search")), [restarted, without_tools]);
    assert_eq!(
        store.server_report(0, None, "t").unwrap().context_cost,
        [other]
    );
}
