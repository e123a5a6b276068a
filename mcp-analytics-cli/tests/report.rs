//! `mcp-analytics report` over a database with known calls.

use std::process::Command;

use mcp_analytics::{
    Database, Method, RequestEvent, RequestStatus, Status, ToolCallEvent, Transport,
    store::{PgStore, SqliteStore},
};

#[path = "../../mcp-analytics/src/postgres/test_cluster.rs"]
#[allow(dead_code)] // Not every part of the harness is used here.
mod postgres;

fn event(
    index: usize,
    tool: &str,
    user: Option<&str>,
    status: Status,
    duration_us: u64,
) -> ToolCallEvent {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    ToolCallEvent {
        id: format!("0190a5c2-0000-7000-8000-{index:012x}"),
        ts_ms: now_ms - 1000,
        server_name: "test".into(),
        server_version: "1".into(),
        tool: tool.into(),
        user_id: user.map(str::to_owned),
        user_email: (user == Some("ann")).then(|| "a***@example.com".to_owned()),
        user_name: (user == Some("ann")).then(|| "A*** N***".to_owned()),
        session_id: Some(format!("s-{}", index % 3)),
        client_name: None,
        client_version: None,
        protocol_version: None,
        transport: Transport::Http,
        request_id: Some(index.to_string()),
        duration_us,
        status,
        error_type: status.is_error().then(|| status.as_str().to_owned()),
        error_message: None,
        params: Some("{}".into()),
        result: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }
}

fn database() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.db");
    let mut store = SqliteStore::open(&path).unwrap();
    store.append(&events()).unwrap();
    store.append_requests(&requests()).unwrap();
    (dir, path)
}

/// The sessions' other requests: each `initialize` and `tools/list`, two sessions' prompts,
/// one resource read twice and a failed read.
fn requests() -> Vec<RequestEvent> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let request = |index: usize, method: Method, target: Option<&str>, session: usize| {
        let status = match target {
            Some("test://missing") => RequestStatus::ResourceNotFound,
            _ => RequestStatus::Ok,
        };
        RequestEvent {
            id: format!("0190a5c2-0000-7000-9000-{index:012x}"),
            ts_ms: now_ms - 2000,
            server_name: "test".into(),
            server_version: "1".into(),
            method,
            target: target.map(str::to_owned),
            user_id: None,
            session_id: Some(format!("s-{session}")),
            client_name: Some("client".into()),
            client_version: Some("1.0".into()),
            protocol_version: Some("2025-11-25".into()),
            transport: Transport::Http,
            request_id: Some(index.to_string()),
            duration_us: 1_000 * (index as u64 + 1),
            error_type: status.is_error().then(|| "-32002".to_owned()),
            error_message: None,
            status,
            client_capabilities: None,
            ts_ns: None,
            traceparent: None,
            tracestate: None,
        }
    };
    let mut requests = Vec::new();
    for session in 0..3 {
        requests.push(request(requests.len(), Method::Initialize, None, session));
    }
    for session in 0..2 {
        requests.push(request(requests.len(), Method::ToolsList, None, session));
    }
    for (target, session) in [("greeting", 0), ("greeting", 1), ("summary", 1)] {
        requests.push(request(
            requests.len(),
            Method::PromptsGet,
            Some(target),
            session,
        ));
    }
    for target in ["test://doc/1", "test://doc/1", "test://missing"] {
        requests.push(request(
            requests.len(),
            Method::ResourcesRead,
            Some(target),
            2,
        ));
    }
    requests
}

/// Twelve calls of two tools by two users (and one anonymous), three of them errors.
fn events() -> Vec<ToolCallEvent> {
    let mut events = Vec::new();
    for index in 0..10 {
        let status = if index < 2 {
            Status::ToolError
        } else {
            Status::Ok
        };
        events.push(event(
            index,
            "search",
            Some(["ann", "bob"][index % 2]),
            status,
            1_000 * (index as u64 + 1),
        ));
    }
    events.push(event(10, "add", Some("ann"), Status::Ok, 500));
    events.push(event(11, "add", None, Status::Panic, 700));
    events
}

fn report(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mcp-analytics"))
        .arg("report")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn json_report_has_the_right_numbers() {
    let (_dir, db) = database();
    let output = report(&["--db", db.to_str().unwrap(), "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (json["calls"].as_u64(), json["errors"].as_u64()),
        (Some(12), Some(3))
    );
    let search = &json["tools"][0];
    assert_eq!(search["tool"], "search");
    assert_eq!(
        (
            search["calls"].as_u64(),
            search["errors"].as_u64(),
            search["users"].as_u64()
        ),
        (Some(10), Some(2), Some(2))
    );
    assert!((search["success_rate"].as_f64().unwrap() - 0.8).abs() < 1e-9);
    let p50 = search["p50_ms"].as_f64().unwrap();
    let p99 = search["p99_ms"].as_f64().unwrap();
    assert!(
        (4.5..6.5).contains(&p50) && (9.0..11.0).contains(&p99),
        "p50 {p50} p99 {p99}"
    );
    assert_eq!(json["tools"][1]["tool"], "add");
    assert_eq!(
        json["error_kinds"][0],
        serde_json::json!({"status": "tool_error", "error_type": "tool_error", "count": 2})
    );
    assert_eq!(json["top_users"][0]["user_id"], "ann");
    assert_eq!(json["top_users"][0]["calls"], 6);
    assert_eq!(json["top_users"][0]["email"], "a***@example.com");
    assert_eq!(json["top_users"][0]["name"], "A*** N***");
    assert_eq!(json["top_users"][1]["email"], serde_json::Value::Null);
    assert_eq!(json["sessions"]["count"], 3);
}

#[test]
fn json_report_has_requests_prompts_resources_and_tools_listed_and_called() {
    let (_dir, db) = database();
    let output = report(&["--db", db.to_str().unwrap(), "--json"]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let methods: Vec<(&str, u64, u64, u64)> = json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|method| {
            (
                method["method"].as_str().unwrap(),
                method["calls"].as_u64().unwrap(),
                method["errors"].as_u64().unwrap(),
                method["sessions"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        methods,
        [
            ("initialize", 3, 0, 3),
            ("prompts/get", 3, 0, 2),
            ("resources/read", 3, 1, 1),
            ("tools/list", 2, 0, 2),
        ]
    );
    assert_eq!(
        json["prompts"][0],
        serde_json::json!({"name": "greeting", "calls": 2, "errors": 0, "p50_ms": json["prompts"][0]["p50_ms"], "p95_ms": json["prompts"][0]["p95_ms"], "p99_ms": json["prompts"][0]["p99_ms"]})
    );
    assert!(json["prompts"][0]["p95_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(json["prompts"][1]["name"], "summary");
    let resources: Vec<(&str, u64, u64)> = json["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|resource| {
            (
                resource["uri"].as_str().unwrap(),
                resource["calls"].as_u64().unwrap(),
                resource["errors"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        resources,
        [("test://doc/1", 2, 0), ("test://missing", 1, 1)]
    );
    for tool in json["tools"].as_array().unwrap() {
        assert_eq!(tool["listed_sessions"], 2, "{tool}");
    }
    assert_eq!(
        json["tools"][0]["sessions"], 3,
        "search was called in s-0, s-1, s-2"
    );

    let output = report(&["--db", db.to_str().unwrap()]);
    let text = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "Requests",
        "│ initialize ",
        "Prompts",
        "│ greeting ",
        "Resources",
        "│ test://missing ",
        "called in / listed in",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

#[test]
fn table_report_and_tool_filter() {
    let (_dir, db) = database();
    let output = report(&[
        "--db",
        db.to_str().unwrap(),
        "--since",
        "1h",
        "--tool",
        "add",
    ]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("Last 1h for `add`: 2 calls, 1 errors (50.0 %)"),
        "{text}"
    );
    assert!(
        text.contains("│ add ") && !text.contains("search"),
        "{text}"
    );
    assert!(text.contains("panic"), "{text}");
    assert!(
        text.contains("A*** N***") && text.contains("a***@example.com"),
        "top users show their masked details: {text}"
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let (_dir, db) = database();
    let output = report(&["--db", db.to_str().unwrap(), "--since", "yesterday"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("expected a number and a unit"));
    let missing = report(&["--db", "/nonexistent/analytics.db"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("no analytics database at /nonexistent/analytics.db")
    );
}

#[test]
fn a_since_too_long_to_compute_is_an_error_not_a_panic() {
    let (_dir, db) = database();
    let output = report(&["--db", db.to_str().unwrap(), "--since", "9999999999999999d"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("expected a number and a unit"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn payments_appear_in_the_report() {
    let (_dir, db) = database();
    drop(
        mcp_analytics::Payments::builder()
            .database(&db)
            .build()
            .unwrap(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency) VALUES
                 ({now}, 'checkout_created', 'ann', 'search', NULL, NULL),
                 ({now}, 'checkout_completed', 'ann', 'search', 500, 'usd'),
                 ({now}, 'invoice_paid', 'bob', 'search', 1250, 'usd');"
        ))
        .unwrap();
    let output = report(&["--db", db.to_str().unwrap(), "--since", "1h"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("Revenue by tool") && text.contains("17.50 USD"),
        "{text}"
    );
    assert!(text.contains("1 checkouts created"), "{text}");
    let output = report(&["--db", db.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["payments"]["by_tool"][0]["amount"], 1750);
    assert_eq!(json["payments"]["by_user"][0]["key"], "bob");
    assert_eq!(
        json["calls"], 12,
        "the analytics fields stay at the top level"
    );
}

/// Unknown tool names past 100 distinct ones an hour share one row, which the report explains.
#[test]
fn the_report_explains_the_row_of_other_unknown_tools() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unknown.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let events: Vec<ToolCallEvent> = (0..103)
        .map(|index| {
            event(
                index,
                &format!("guess_{index}"),
                None,
                Status::UnknownTool,
                100,
            )
        })
        .collect();
    store.append(&events).unwrap();
    let output = report(&["--db", path.to_str().unwrap()]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("(other unknown tools): calls to unknown tool names past the first 100 distinct ones per server and hour"),
        "{text}"
    );
    let bucket = text
        .lines()
        .find(|line| line.contains("(other unknown tools)") && line.contains('3'))
        .unwrap_or_else(|| panic!("a row with the bucket's 3 calls: {text}"));
    assert!(bucket.contains("0.0 %"), "{bucket}");
}

#[test]
fn the_report_explains_the_row_of_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clients.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let events: Vec<ToolCallEvent> = (0..103)
        .map(|index| ToolCallEvent {
            client_name: Some(format!("client-{index}")),
            ..event(index, "search", None, Status::Ok, 100)
        })
        .collect();
    store.append(&events).unwrap();
    let output = report(&["--db", path.to_str().unwrap()]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(
            "(other clients): calls of clients past the first 100 distinct ones per server and hour"
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line.contains("(other clients)") && line.contains(" 3 ")),
        "a row with the other clients' 3 calls: {text}"
    );
}

#[test]
fn tables_never_print_terminal_escapes_even_from_old_databases() {
    // Rows as an older version stored them: client-chosen strings unfiltered and unbounded.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let escape = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m";
    let mut hostile = event(
        0,
        &format!("{escape}tool{}", "t".repeat(10_000)),
        Some(escape),
        Status::UnknownTool,
        10,
    );
    hostile.error_type = Some(format!("{escape}type"));
    hostile.user_name = Some(format!("{escape}name"));
    hostile.user_email = Some(format!("{escape}email"));
    SqliteStore::open(&db).unwrap().append(&[hostile]).unwrap();
    drop(
        mcp_analytics::Payments::builder()
            .database(&db)
            .build()
            .unwrap(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            &format!(
                "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency) VALUES
                 ({now}, 'checkout_completed', ?1, ?1, 500, 'usd'),
                 ({now}, 'checkout_created', ?1, ?1, NULL, NULL)"
            ),
            [escape],
        )
        .unwrap();

    let tool = format!("{escape}x");
    let filtered = report(&[
        "--db",
        db.to_str().unwrap(),
        "--since",
        "1h",
        "--tool",
        &tool,
    ]);
    let output = report(&["--db", db.to_str().unwrap(), "--since", "1h"]);
    for output in [&filtered, &output] {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let controls: Vec<char> = text
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert!(
            controls.is_empty(),
            "the report prints {controls:?}:\n{text}"
        );
    }
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("tool") && text.contains("Revenue by tool"),
        "{text}"
    );
    assert!(
        text.lines().all(|line| line.chars().count() < 400),
        "a 10,000-character name is printed whole"
    );
}

#[test]
fn the_report_of_a_postgres_url_is_the_report_of_the_same_calls_in_sqlite() {
    let (_dir, sqlite) = database();
    let url = postgres::Cluster::shared().create_database("cli_report");
    let Database::Postgres(postgres_url) = Database::from(&url) else {
        unreachable!("a postgres URL")
    };
    let mut store = PgStore::open(&postgres_url).unwrap();
    store.append(&events()).unwrap();
    store.append_requests(&requests()).unwrap();
    for args in [
        &["--json", "--since", "all"][..],
        &["--since", "1h", "--tool", "add"],
        &["--since", "24h"],
    ] {
        let from_sqlite = report(&[&["--db", sqlite.to_str().unwrap()], args].concat());
        let from_postgres = report(&[&["--db", url.as_str()], args].concat());
        assert!(
            from_postgres.status.success(),
            "{}",
            String::from_utf8_lossy(&from_postgres.stderr)
        );
        assert_eq!(
            String::from_utf8(from_postgres.stdout).unwrap(),
            String::from_utf8(from_sqlite.stdout).unwrap(),
            "report {args:?}"
        );
    }
}

#[test]
fn an_unreachable_postgres_url_is_a_clear_error_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = report(&[
        "--db",
        &format!("postgres://app:hunter2@127.0.0.1:{port}/x"),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("postgres://app:***@127.0.0.1:{port}/x"))
            && !stderr.contains("hunter2"),
        "{stderr}"
    );
}

/// What `wrangler d1 export MCP_ANALYTICS_DB --local` wrote after the Worker example
/// (`examples/workers`) answered an `initialize`, `add` twice, `divide` by zero,
/// `connect_service` with a credential, `process_document`, an unpaid `generate_image`, a
/// `tools/list` and a call of the unknown tool `nope` (D1's migration, so no schema version).
const D1_EXPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/d1-export.sql");

#[test]
fn a_d1_export_is_reported_like_the_database_it_came_from() {
    let before = std::fs::read(D1_EXPORT).unwrap();
    let output = report(&["--db", D1_EXPORT, "--since", "all", "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (json["calls"].as_u64(), json["errors"].as_u64()),
        (Some(7), Some(3))
    );
    let tool = |name: &str| {
        json["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|tool| tool["tool"] == name)
            .unwrap_or_else(|| panic!("no {name} in {}", json["tools"]))
            .clone()
    };
    assert_eq!(
        (
            tool("add")["calls"].as_u64(),
            tool("add")["errors"].as_u64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(tool("divide")["errors"].as_u64(), Some(1));
    assert_eq!(json["missing_tools"][0]["tool"], "nope");
    let methods: Vec<&str> = json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|request| request["method"].as_str().unwrap())
        .collect();
    assert!(
        methods.contains(&"initialize") && methods.contains(&"tools/list"),
        "{methods:?}"
    );
    let table = report(&["--db", D1_EXPORT, "--since", "all"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("divide"));
    // The export is read into memory, never written.
    assert_eq!(std::fs::read(D1_EXPORT).unwrap(), before);
}

#[test]
fn a_sql_file_that_is_not_a_dump_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.sql");
    std::fs::write(&path, "this is not SQL").unwrap();
    let output = report(&["--db", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("loading the SQL dump"), "{error}");
}
