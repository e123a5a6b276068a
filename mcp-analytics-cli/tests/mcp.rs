//! `mcp-analytics mcp`: the analytics as a read-only MCP server, driven by rmcp's client over
//! stdio (and streamable HTTP) against a database with known calls, clients and payments.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use mcp_analytics::{
    Database, Method, RequestEvent, RequestStatus, Status, ToolCallEvent, Transport,
    store::{PgStore, SqliteStore},
};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

#[path = "../../mcp-analytics/src/postgres/test_cluster.rs"]
#[allow(dead_code)] // Not every part of the harness is used here.
mod postgres;

/// Seeded values no tool may ever return: a user's full email and name (stored in
/// `user_details` and `tool_calls`) and a token inside a stored tool result.
const SECRETS: [&str; 3] = [
    "ann.canary@example.com",
    "Canary-Surname",
    "tok_CANARY_5f3a9",
];

const TOOLS: [&str; 7] = [
    "analytics_overview",
    "tool_stats",
    "recent_errors",
    "session_timeline",
    "clients",
    "missing_tools",
    "revenue",
];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One session's calls: `(tool, status)` each, by one client and user, a second apart.
struct Session {
    id: &'static str,
    client: (&'static str, &'static str, &'static str),
    user: &'static str,
    /// When its first call started, ms before now.
    ago_ms: i64,
    calls: Vec<(&'static str, Status)>,
}

fn sessions() -> [Session; 2] {
    use Status::{Ok, Panic, ToolError, UnknownTool};
    [
        // claude-code: search ×6 (2 failing), add, and a tool the server does not have, twice.
        Session {
            id: "s-claude",
            client: ("claude-code", "2.0.1", "2025-11-25"),
            user: "ann",
            ago_ms: 600_000,
            calls: vec![
                ("search", ToolError),
                ("search", Ok),
                ("search", ToolError),
                ("search", Ok),
                ("search", Ok),
                ("search", Ok),
                ("add", Ok),
                ("weather_forecast", UnknownTool),
                ("weather_forecast", UnknownTool),
            ],
        },
        // cursor, later: search ×4, add panicking, the missing tool once.
        Session {
            id: "s-cursor",
            client: ("cursor", "1.4", "2025-06-18"),
            user: "bob",
            ago_ms: 300_000,
            calls: vec![
                ("search", Ok),
                ("search", Ok),
                ("search", Ok),
                ("search", Ok),
                ("add", Panic),
                ("weather_forecast", UnknownTool),
            ],
        },
    ]
}

/// The seeded calls and requests (`initialize`, `tools/list` opening each session).
fn recorded() -> (Vec<ToolCallEvent>, Vec<RequestEvent>) {
    let now = now_ms();
    let (mut calls, mut requests) = (Vec::new(), Vec::new());
    for session in sessions() {
        let start = now - session.ago_ms;
        let (client, version, protocol) = session.client;
        for (index, method) in [Method::Initialize, Method::ToolsList]
            .into_iter()
            .enumerate()
        {
            requests.push(RequestEvent {
                id: format!("0190a5c2-0000-7000-9000-{:012x}", requests.len()),
                ts_ms: start + index as i64,
                server_name: "shop".into(),
                server_version: "1.0.0".into(),
                method,
                target: None,
                user_id: Some(session.user.into()),
                session_id: Some(session.id.into()),
                client_name: Some(client.into()),
                client_version: Some(version.into()),
                protocol_version: Some(protocol.into()),
                transport: Transport::Stdio,
                request_id: Some(requests.len().to_string()),
                duration_us: 300,
                status: RequestStatus::Ok,
                error_type: None,
                error_message: None,
                client_capabilities: None,
                ts_ns: None,
                traceparent: None,
                tracestate: None,
            });
        }
        for (index, (tool, status)) in session.calls.iter().enumerate() {
            let ann = session.user == "ann";
            calls.push(ToolCallEvent {
                id: format!("0190a5c2-0000-7000-8000-{:012x}", calls.len()),
                ts_ms: start + 1000 * (index as i64 + 1),
                server_name: "shop".into(),
                server_version: "1.0.0".into(),
                tool: (*tool).into(),
                user_id: Some(session.user.into()),
                user_email: ann.then(|| SECRETS[0].to_owned()),
                user_name: ann.then(|| format!("Ann {}", SECRETS[1])),
                session_id: Some(session.id.into()),
                client_name: Some(client.into()),
                client_version: Some(version.into()),
                protocol_version: Some(protocol.into()),
                transport: Transport::Stdio,
                request_id: Some(calls.len().to_string()),
                duration_us: 2_000 * (index as u64 + 1),
                status: *status,
                error_type: status.is_error().then(|| status.as_str().to_owned()),
                error_message: (*status == Status::ToolError)
                    .then(|| "search backend timed out".to_owned()),
                params: Some(r#"{"query":"boots"}"#.into()),
                result: Some(format!(r#"{{"access_token":"{}"}}"#, SECRETS[2])),
                ts_ns: None,
                traceparent: None,
                tracestate: None,
            });
        }
    }
    (calls, requests)
}

/// A SQLite database with the seeded calls and requests, and three payment events.
fn database() -> (tempfile::TempDir, PathBuf) {
    database_of(&recorded())
}

/// A SQLite database with `rows`, and three payment events.
fn database_of(
    (calls, requests): &(Vec<ToolCallEvent>, Vec<RequestEvent>),
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("analytics.db");
    let mut store = SqliteStore::open(&path).unwrap();
    store.append(calls).unwrap();
    store.append_requests(requests).unwrap();
    drop(store);
    drop(
        mcp_analytics::Payments::builder()
            .database(&path)
            .build()
            .unwrap(),
    );
    let now = now_ms();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!(
            "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency) VALUES
                 ({now}, 'checkout_created', 'ann', 'search', NULL, NULL),
                 ({now}, 'checkout_completed', 'ann', 'search', 500, 'usd'),
                 ({now}, 'invoice_paid', 'bob', 'search', 1250, 'usd');"
        ))
        .unwrap();
    (dir, path)
}

type Client = RunningService<RoleClient, ()>;

/// `mcp-analytics mcp --db <db>` as a child process, connected over stdio.
async fn connect(db: &str) -> Client {
    connect_with(db, None).await
}

/// `mcp-analytics mcp --db <db>` with `MCP_ANALYTICS_DB` set to `analytics_db`, if given (where
/// a server recording its own calls would record them).
async fn connect_with(db: &str, analytics_db: Option<&str>) -> Client {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-analytics"));
    command
        .args(["mcp", "--db", db])
        .env_remove("MCP_ANALYTICS_DB")
        .env_remove("RUST_LOG");
    if let Some(analytics_db) = analytics_db {
        command.env("MCP_ANALYTICS_DB", analytics_db);
    }
    ().serve(TokioChildProcess::new(command).unwrap())
        .await
        .unwrap()
}

async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    client
        .call_tool(
            CallToolRequestParams::new(tool.to_owned())
                .with_arguments(arguments.as_object().cloned().unwrap_or_default()),
        )
        .await
        .unwrap_or_else(|error| panic!("{tool}: {error}"))
}

/// A successful call's structured content.
async fn structured(client: &Client, tool: &str, arguments: Value) -> Value {
    let result = call(client, tool, arguments).await;
    assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
    result.structured_content.expect("structured content")
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn an_agent_lists_the_seven_read_only_tools_each_taking_since() {
    let (_dir, db) = database();
    let client = connect(db.to_str().unwrap()).await;
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    names.sort_unstable();
    let mut expected = TOOLS;
    expected.sort_unstable();
    assert_eq!(names, expected);
    for tool in &tools {
        assert!(
            tool.input_schema["properties"]["since"]["description"]
                .as_str()
                .is_some_and(|doc| doc.contains("`24h`")),
            "{}: {:?}",
            tool.name,
            tool.input_schema
        );
        let annotations = tool.annotations.as_ref().expect("annotations");
        assert_eq!(annotations.read_only_hint, Some(true), "{}", tool.name);
        assert!(tool.description.as_ref().is_some_and(|doc| doc.len() > 40));
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn each_tool_answers_with_the_seeded_figures() {
    let (_dir, db) = database();
    let client = connect(db.to_str().unwrap()).await;

    let overview = structured(&client, "analytics_overview", json!({"since": "24h"})).await;
    assert_eq!(overview["calls"], 15, "{overview}");
    assert_eq!(overview["errors"], 6, "{overview}");
    assert_eq!(overview["users"], 2);
    assert_eq!(overview["sessions"]["count"], 2);
    assert_eq!(
        overview["most_failing_tools"][0]["tool"],
        "weather_forecast"
    );
    assert_eq!(overview["most_failing_tools"][0]["errors"], 3);
    assert_eq!(overview["most_failing_tools"][1]["tool"], "search");
    assert_eq!(overview["most_failing_tools"][1]["errors"], 2);
    assert_eq!(overview["missing_tools"], 1);
    assert_eq!(overview["clients"], 2);
    let result = call(&client, "analytics_overview", json!({})).await;
    assert!(
        text(&result).starts_with("last 24h: 15 calls, 6 errors (40.0 %)"),
        "the default range is 24h and the text leads with a summary: {}",
        text(&result)
    );

    let stats = structured(
        &client,
        "tool_stats",
        json!({"since": "7d", "tool": "search"}),
    )
    .await;
    assert_eq!(stats["tools"].as_array().unwrap().len(), 1, "{stats}");
    let search = &stats["tools"][0];
    assert_eq!(
        (
            search["tool"].as_str(),
            search["calls"].as_u64(),
            search["errors"].as_u64()
        ),
        (Some("search"), Some(10), Some(2))
    );
    assert_eq!(search["users"], 2);
    let all = structured(&client, "tool_stats", json!({"limit": 1})).await;
    assert_eq!(
        all["tools"].as_array().unwrap().len(),
        1,
        "limit is honoured"
    );
    assert_eq!(all["tools"][0]["tool"], "search", "busiest first");

    let errors = structured(&client, "recent_errors", json!({"tool": "search"})).await;
    let errors = errors["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|row| row["tool"] == "search"
        && row["status"] == "tool_error"
        && row["error_message"] == "search backend timed out"
        && row["session_id"] == "s-claude"));
    let errors = structured(&client, "recent_errors", json!({"since": "all"})).await;
    assert_eq!(errors["errors"].as_array().unwrap().len(), 6);
    assert_eq!(
        errors["errors"][0]["tool"], "weather_forecast",
        "newest first"
    );
    assert_eq!(errors["errors"][1]["tool"], "add");
    assert_eq!(errors["errors"][1]["status"], "panic");
    let latest = structured(&client, "recent_errors", json!({"since": "7m"})).await;
    assert_eq!(
        latest["errors"].as_array().unwrap().len(),
        2,
        "since narrows the rows to the cursor session's errors: {latest}"
    );

    let listed = structured(&client, "session_timeline", json!({"since": "1h"})).await;
    let listed = listed["sessions"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["session_id"], "s-cursor", "latest first");
    assert_eq!(
        (
            listed[0]["calls"].as_u64(),
            listed[0]["errors"].as_u64(),
            listed[0]["requests"].as_u64()
        ),
        (Some(6), Some(2), Some(2))
    );
    assert_eq!(listed[1]["session_id"], "s-claude");
    assert_eq!(
        (listed[1]["calls"].as_u64(), listed[1]["errors"].as_u64()),
        (Some(9), Some(4))
    );
    let recent = structured(&client, "session_timeline", json!({"since": "7m"})).await;
    assert_eq!(recent["sessions"].as_array().unwrap().len(), 1, "{recent}");
    assert_eq!(recent["sessions"][0]["session_id"], "s-cursor");
    let timeline = structured(&client, "session_timeline", json!({"session": "s-claude"})).await;
    assert_eq!(
        (timeline["calls"].as_u64(), timeline["requests"].as_u64()),
        (Some(9), Some(2))
    );
    let steps: Vec<&str> = timeline["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["tool"].as_str().unwrap())
        .collect();
    assert_eq!(steps[2..5], ["search", "search", "search"], "{steps:?}");
    assert_eq!(timeline["timeline"][0]["method"], "initialize");
    let unknown = call(&client, "session_timeline", json!({"session": "s-nobody"})).await;
    assert_eq!(
        unknown.is_error,
        Some(true),
        "an unknown session is a tool error"
    );
    assert!(
        text(&unknown).contains("without `session`"),
        "{}",
        text(&unknown)
    );

    let clients = structured(&client, "clients", json!({"since": "24h"})).await;
    let claude = &clients["clients"][0];
    assert_eq!(
        (
            claude["client_name"].as_str(),
            claude["client_version"].as_str(),
            claude["protocol_version"].as_str()
        ),
        (Some("claude-code"), Some("2.0.1"), Some("2025-11-25")),
        "{clients}"
    );
    assert_eq!(
        (
            claude["calls"].as_u64(),
            claude["errors"].as_u64(),
            claude["sessions"].as_u64()
        ),
        (Some(9), Some(4), Some(1))
    );
    let cursor = &clients["clients"][1];
    assert_eq!(
        (
            cursor["client_name"].as_str(),
            cursor["calls"].as_u64(),
            cursor["errors"].as_u64()
        ),
        (Some("cursor"), Some(6), Some(2))
    );
    assert_eq!(clients["protocol_versions"].as_array().unwrap().len(), 2);

    let missing = structured(&client, "missing_tools", json!({"since": "24h"})).await;
    let forecast = &missing["missing_tools"][0];
    assert_eq!(
        (
            forecast["tool"].as_str(),
            forecast["calls"].as_u64(),
            forecast["sessions"].as_u64()
        ),
        (Some("weather_forecast"), Some(3), Some(2)),
        "{missing}"
    );
    assert_eq!(forecast["clients"].as_array().unwrap().len(), 2);
    assert_eq!(missing["missing_tools"].as_array().unwrap().len(), 1);

    let revenue = call(&client, "revenue", json!({"since": "7d"})).await;
    let payments = revenue.structured_content.clone().unwrap();
    assert_eq!(payments["by_tool"][0]["key"], "search", "{payments}");
    assert_eq!(payments["by_tool"][0]["amount"], 1750);
    assert_eq!(payments["by_tool"][0]["currency"], "usd");
    assert_eq!(payments["by_user"][0]["key"], "bob");
    assert_eq!(payments["checkouts_created"], 1);
    assert!(
        text(&revenue).contains("revenue 17.50 USD"),
        "{}",
        text(&revenue)
    );

    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_bad_since_is_a_tool_error_naming_the_accepted_forms_and_the_server_goes_on() {
    let (_dir, db) = database();
    let client = connect(db.to_str().unwrap()).await;
    for tool in TOOLS {
        for since in ["yesterday", "2 weeks", "9999999999999999d", ""] {
            let result = call(&client, tool, json!({"since": since})).await;
            assert_eq!(result.is_error, Some(true), "{tool} since {since:?}");
            let message = text(&result);
            assert!(
                message.contains("`30m`") && message.contains("`7d`") && message.contains("`all`"),
                "{tool}: {message}"
            );
        }
    }
    let after = structured(&client, "analytics_overview", json!({"since": "all"})).await;
    assert_eq!(after["calls"], 15, "still serving");
    client.cancel().await.unwrap();
}

/// Every tool's answers (text and structured), over every range and argument that selects rows.
async fn every_answer(client: &Client) -> String {
    let mut answers = String::new();
    for tool in TOOLS {
        for arguments in [
            json!({"since": "all", "limit": 200}),
            json!({"since": "all", "tool": "search"}),
            json!({"since": "all", "session": "s-claude"}),
            json!({"since": "all", "session": "s-cursor"}),
        ] {
            let result = call(client, tool, arguments).await;
            answers.push_str(&serde_json::to_string(&result).unwrap());
        }
    }
    answers
}

#[tokio::test]
async fn no_tool_returns_emails_names_or_stored_results() {
    let (_dir, db) = database();
    let stored = |sql: &str| -> String {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(sql, [], |row| row.get(0))
            .unwrap()
    };
    // The secrets are in the database, where a careless tool could find them.
    assert_eq!(
        stored("SELECT email FROM user_details WHERE user_id = 'ann'"),
        SECRETS[0]
    );
    assert!(stored("SELECT name FROM user_details WHERE user_id = 'ann'").contains(SECRETS[1]));
    assert!(stored("SELECT result FROM tool_calls LIMIT 1").contains(SECRETS[2]));
    let client = connect(db.to_str().unwrap()).await;
    let answers = every_answer(&client).await;
    assert!(
        answers.contains("s-claude") && answers.contains("ann"),
        "the answers are about the seeded data"
    );
    for secret in SECRETS {
        assert!(!answers.contains(secret), "{secret} leaked: {answers}");
    }
    client.cancel().await.unwrap();
}

/// The database file and its WAL, byte for byte.
fn snapshot(db: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().starts_with(&*db.to_string_lossy()))
        .filter(|path| !path.to_string_lossy().ends_with("-shm"))
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .filter(|(_, bytes)| !bytes.is_empty())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn a_session_of_calls_leaves_the_database_unchanged() {
    let (_dir, db) = database();
    let before = snapshot(&db);
    assert_eq!(
        before.len(),
        1,
        "the seeded database is checkpointed: {:?}",
        before.iter().map(|file| &file.0).collect::<Vec<_>>()
    );
    let db_text = db.to_str().unwrap();
    let client = connect_with(db_text, Some(db_text)).await;
    client.list_all_tools().await.unwrap();
    every_answer(&client).await;
    client.cancel().await.unwrap();
    // The child exits once its stdin closes; give it a moment to be gone.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        snapshot(&db) == before,
        "the server wrote to the database it reads"
    );
    let calls: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM tool_calls", [], |row| row.get(0))
        .unwrap();
    assert_eq!(calls, 15, "the server's own calls are not recorded");
}

#[test]
fn a_missing_database_is_a_clear_error_at_startup() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-analytics"))
        .args(["mcp", "--db", "/nonexistent/analytics.db"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("no analytics database at /nonexistent/analytics.db"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `mcp-analytics mcp --http <addr>` in `dir`, with `key` as MCP_ANALYTICS_API_KEY.
struct HttpAgent {
    child: std::process::Child,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl HttpAgent {
    fn start(db: &Path, addr: &str, key: Option<&str>) -> Self {
        Self::start_with(db, addr, key, &[])
    }

    /// As `start`, with `args` added.
    fn start_with_args(db: &Path, addr: &str, key: Option<&str>, args: &[&str]) -> Self {
        Self::spawn(db, addr, key, &[], args)
    }

    /// As `start`, with `env` set too.
    fn start_with(db: &Path, addr: &str, key: Option<&str>, env: &[(&str, &str)]) -> Self {
        Self::spawn(db, addr, key, env, &[])
    }

    fn spawn(
        db: &Path,
        addr: &str,
        key: Option<&str>,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-analytics"));
        command
            .args(["mcp", "--db", db.to_str().unwrap(), "--http", addr])
            .args(args)
            .current_dir(db.parent().unwrap())
            .env_remove("MCP_ANALYTICS_API_KEY")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("MCP_OAUTH_")) {
            command.env_remove(name);
        }
        if let Some(key) = key {
            command.env("MCP_ANALYTICS_API_KEY", key);
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().unwrap();
        let lines = BufReader::new(child.stderr.take().unwrap());
        let (send, stderr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Self { child, stderr }
    }

    /// Its stderr until it prints where MCP is (or exits), and that address.
    fn address(&self) -> (Option<SocketAddr>, String) {
        let mut seen = String::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(30)) {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.split("MCP at http://").nth(1) {
                let addr: String = rest.chars().take_while(|c| *c != '/').collect();
                return (Some(addr.parse().unwrap()), seen);
            }
        }
        (None, seen)
    }
}

impl Drop for HttpAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of an MCP `initialize` POSTed to `/mcp` with `headers`.
fn initialize_status(addr: SocketAddr, headers: &str) -> u16 {
    initialize_status_for(addr, &addr.to_string(), headers)
}

/// The status of an MCP `initialize` POSTed to `/mcp` naming `host`, with `headers`.
fn initialize_status_for(addr: SocketAddr, host: &str, headers: &str) -> u16 {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
}

#[tokio::test]
async fn over_http_the_api_key_is_required_and_opens_it() {
    let (_dir, db) = database();
    let agent = HttpAgent::start(&db, "127.0.0.1:0", Some("agent-key"));
    let (addr, stderr) = agent.address();
    let addr = addr.unwrap_or_else(|| panic!("no address: {stderr}"));
    assert_eq!(initialize_status(addr, ""), 401, "no key");
    assert_eq!(
        initialize_status(addr, "Authorization: Bearer wrong\r\n"),
        401,
        "a wrong key"
    );
    let mut config = StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"));
    config.auth_header = Some("agent-key".into());
    let client =
        ().serve(StreamableHttpClientTransport::<reqwest::Client>::from_config(config))
            .await
            .unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 7);
    let overview = structured(&client, "analytics_overview", json!({"since": "all"})).await;
    assert_eq!(overview["calls"], 15);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn over_http_without_a_key_it_serves_loopback_only() {
    let (_dir, db) = database();
    let open = HttpAgent::start(&db, "127.0.0.1:0", None);
    let (addr, stderr) = open.address();
    let addr = addr.unwrap_or_else(|| panic!("no address: {stderr}"));
    assert_eq!(initialize_status(addr, ""), 200, "loopback needs no key");
    let public = HttpAgent::start(&db, "0.0.0.0:0", None);
    let (addr, stderr) = public.address();
    assert_eq!(addr, None, "{stderr}");
    assert!(
        stderr.contains("refusing to serve MCP on 0.0.0.0:0 without a key")
            && stderr.contains("MCP_ANALYTICS_API_KEY"),
        "{stderr}"
    );
}

#[test]
fn over_http_it_answers_only_loopback_and_allowed_host_names() {
    let (_dir, db) = database();
    let key = "Authorization: Bearer agent-key\r\n";
    let plain = HttpAgent::start(&db, "127.0.0.1:0", Some("agent-key"));
    let (addr, stderr) = plain.address();
    let addr = addr.unwrap_or_else(|| panic!("no address: {stderr}"));
    assert_eq!(
        initialize_status_for(addr, "analytics.example.com", key),
        403
    );
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-analytics"));
    let output = command
        .args([
            "mcp",
            "--db",
            db.to_str().unwrap(),
            "--allowed-host",
            "analytics.example.com",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "--allowed-host needs --http");
    let allowed = HttpAgent::start_with_args(
        &db,
        "127.0.0.1:0",
        Some("agent-key"),
        &["--allowed-host", "analytics.example.com"],
    );
    let (addr, stderr) = allowed.address();
    let addr = addr.unwrap_or_else(|| panic!("no address: {stderr}"));
    assert_eq!(
        initialize_status_for(addr, "analytics.example.com", key),
        200
    );
    assert_eq!(initialize_status_for(addr, "other.example.com", key), 403);
}

/// An OAuth issuer on loopback that never answers (nothing is fetched before a token arrives).
const OAUTH: [(&str, &str); 2] = [
    ("MCP_OAUTH_ISSUER", "http://127.0.0.1:9/"),
    ("MCP_OAUTH_AUDIENCE", "mcp-analytics"),
];

#[test]
fn over_http_oauth_protects_it_and_does_not_combine_with_a_key() {
    let (_dir, db) = database();
    let oauth = HttpAgent::start_with(&db, "127.0.0.1:0", None, &OAUTH);
    let (addr, stderr) = oauth.address();
    let addr = addr.unwrap_or_else(|| panic!("no address: {stderr}"));
    assert_eq!(initialize_status(addr, ""), 401, "no token");
    let both = HttpAgent::start_with(&db, "127.0.0.1:0", Some("agent-key"), &OAUTH);
    let (addr, stderr) = both.address();
    assert_eq!(addr, None, "{stderr}");
    assert!(
        stderr.contains("both an API key and OAuth would protect /mcp"),
        "{stderr}"
    );
}

#[test]
fn over_postgres_the_tools_answer_as_over_sqlite() {
    let rows = recorded();
    let (_dir, sqlite) = database_of(&rows);
    let url = postgres::Cluster::shared().create_database("cli_mcp");
    let Database::Postgres(postgres_url) = Database::from(&url) else {
        unreachable!("a postgres URL")
    };
    // The same rows as the SQLite file (the payment events aside).
    let mut store = PgStore::open(&postgres_url).unwrap();
    store.append(&rows.0).unwrap();
    store.append_requests(&rows.1).unwrap();
    drop(store);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let from_sqlite = connect(sqlite.to_str().unwrap()).await;
        let from_postgres = connect(&url).await;
        for (tool, arguments) in [
            ("tool_stats", json!({"since": "24h"})),
            ("session_timeline", json!({"since": "24h"})),
            ("session_timeline", json!({"session": "s-cursor"})),
            ("clients", json!({"since": "24h"})),
            ("recent_errors", json!({"since": "24h", "tool": "search"})),
        ] {
            let expected = structured(&from_sqlite, tool, arguments.clone()).await;
            let answered = structured(&from_postgres, tool, arguments.clone()).await;
            assert_eq!(answered, expected, "{tool} {arguments}");
        }
        from_sqlite.cancel().await.unwrap();
        from_postgres.cancel().await.unwrap();
    });
}
