//! The canary harness: unique canary secrets in every shape the sanitizer must catch go through
//! every path — stdio and HTTP; parameters, text and structured results, tool errors, JSON-RPC
//! errors, invalid parameters and panics; resource URIs and prompt names, found or not — with
//! the collector export, OTLP content capture and debug-level logs on. Then the bytes of every SQLite file (with `-wal`), the collector's
//! database, every OTLP payload, the dashboard's JSON API, `report --json`, every answer of the
//! agent-facing server (`mcp-analytics mcp`) and the logs are searched: no canary may be anywhere.

use std::{
    io::Write,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use mcp_analytics::{
    Analytics,
    collector::Collector,
    dashboard::Dashboard,
    export::{HttpExporter, HttpExporterConfig, OtlpConfig, OtlpExporter},
    serve::HttpServer,
};
use mcp_analytics_tests::{
    canary::{CANARIES, Canary, FOUND, INVALID_PIN, needles, secrets_object, secrets_text},
    client::{call, client_info},
    otlp_receiver,
    server::Serving,
};
use rmcp::{
    RoleClient, ServiceExt,
    model::{ClientConfig, GetPromptRequestParams, ReadResourceRequestParams},
    service::RunningService,
    transport::{StreamableHttpClientTransport, TokioChildProcess},
};
use serde_json::json;
use tokio::io::AsyncReadExt;

const KEY: &str = "canary-collector-key";
/// Everything at debug level except rmcp, which logs whole requests at debug and every error
/// response (with the tool's own message) at warn.
const LOG_FILTER: &str = "debug,rmcp=error";
/// Calls per transport (see `exercise`).
const CALLS: i64 = 9;
/// Other requests per transport: `initialize`, a read of a found and of a missing resource per
/// canary, and one prompt.
const REQUESTS: i64 = 1 + 2 * CANARIES.len() as i64 + 1;

/// Debug-level logs of this process, kept in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every path a canary can take, once.
async fn exercise(client: &RunningService<RoleClient, ClientConfig>) {
    let payload = json!({"payload": secrets_object(), "note": secrets_text()});
    call(client, "echo", payload.clone()).await.unwrap();
    // A parameter that is itself JSON text.
    let as_text =
        json!({"payload": secrets_object().to_string(), "note": secrets_object().to_string()});
    call(client, "echo", as_text).await.unwrap();
    call(client, "structured", payload.clone()).await.unwrap();
    let failed = call(client, "fail_text", payload.clone()).await.unwrap();
    assert_eq!(failed.is_error, Some(true));
    call(client, "fail_json", payload.clone()).await.unwrap();
    call(client, "fail_protocol", payload.clone())
        .await
        .unwrap_err();
    call(client, "explode", payload.clone()).await.unwrap();
    let invalid = call(client, "check_pin", json!({"pin": INVALID_PIN}))
        .await
        .unwrap();
    let answer = format!("{:?}", invalid.content);
    assert!(
        answer.contains(INVALID_PIN),
        "the caller's own answer may repeat their value: {answer}"
    );
    call(client, "check_pin", json!({"pin": 1234}))
        .await
        .unwrap();
    // Ids and keys in resource URIs and prompt names, answered and refused.
    for (text, _) in CANARIES {
        client
            .read_resource(ReadResourceRequestParams::new(format!("{FOUND}{text}")))
            .await
            .unwrap();
        client
            .read_resource(ReadResourceRequestParams::new(format!(
                "canary://lost/{text}"
            )))
            .await
            .unwrap_err();
    }
    client
        .get_prompt(GetPromptRequestParams::new(secrets_text()))
        .await
        .unwrap_err();
}

fn count(database: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(database)
        .ok()
        .and_then(|connection| connection.query_row(sql, [], |row| row.get(0)).ok())
        .unwrap_or(0)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every dashboard API answer for `database`, as text.
async fn dashboard_json(database: &Path) -> String {
    let dashboard = Dashboard::new(database).api_key(None);
    let served = Serving::start(|listener, shutdown| dashboard.serve_on(listener, shutdown)).await;
    let addr = served.addr;
    let http = reqwest::Client::new();
    let mut answers = String::new();
    for range in ["1h", "24h", "7d", "30d"] {
        for api in ["overview", "errors", "payments", "session"] {
            let response = http
                .get(format!("http://{addr}/api/{api}?range={range}"))
                .send()
                .await
                .unwrap();
            answers.push_str(&response.text().await.unwrap());
        }
    }
    served.stop().await;
    assert!(
        answers.contains("echo"),
        "the dashboard shows the calls: {answers}"
    );
    answers
}

/// Every answer of the agent-facing server (`mcp-analytics mcp`) over `database`, as text: each
/// of its tools over 30 days, and the timeline of every session it lists.
async fn agent_answers(database: &Path) -> String {
    let mut command = tokio::process::Command::new(mcp_analytics_tests::cli_binary());
    command.arg("mcp").arg("--db").arg(database);
    let client = client_info()
        .serve(TokioChildProcess::new(command).unwrap())
        .await
        .unwrap();
    let mut answers = String::new();
    let mut answer = async |tool: &str, arguments: serde_json::Value| {
        let result = call(&client, tool, arguments).await.unwrap();
        assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
        answers.push_str(&serde_json::to_string(&result).unwrap());
        result.structured_content.unwrap_or_default()
    };
    for tool in [
        "analytics_overview",
        "tool_stats",
        "recent_errors",
        "clients",
        "missing_tools",
        "revenue",
    ] {
        answer(tool, json!({"since": "30d"})).await;
    }
    let listed = answer("session_timeline", json!({"since": "30d", "limit": 200})).await;
    let sessions = listed["sessions"].as_array().cloned().unwrap_or_default();
    assert!(
        !sessions.is_empty(),
        "the agent lists the sessions: {listed}"
    );
    for session in sessions {
        let id = session["session_id"].clone();
        answer(
            "session_timeline",
            json!({"since": "30d", "session": id, "limit": 200}),
        )
        .await;
    }
    client.cancel().await.unwrap();
    assert!(
        answers.contains("echo"),
        "the agent answers about the calls: {answers}"
    );
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_reaches_storage_exports_logs_the_dashboard_or_reports() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(LOG_FILTER)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let dir = tempfile::tempdir().unwrap();
    let (http_db, stdio_db, collected) = (
        dir.path().join("http.db"),
        dir.path().join("stdio.db"),
        dir.path().join("collected.db"),
    );

    // The collector and the OTLP receiver.
    let collector = Collector::new(&collected).api_key(Some(KEY.into()));
    let collector =
        Serving::start(|listener, shutdown| collector.serve_on(listener, shutdown)).await;
    let collector_addr = collector.addr;
    let (otlp_addr, inbox, stop_otlp) = otlp_receiver::receiver().await;

    // Over HTTP, in this process.
    let exporter = HttpExporter::new(
        HttpExporterConfig {
            api_key: Some(KEY.into()),
            flush_timeout: Duration::from_secs(5),
            ..HttpExporterConfig::new(format!("http://{collector_addr}"))
        },
        Some(&http_db),
    )
    .unwrap();
    let otlp = OtlpExporter::new(OtlpConfig {
        capture_content: true,
        schedule_delay: Duration::from_millis(50),
        ..OtlpConfig::new(&format!("http://{otlp_addr}"))
    })
    .unwrap();
    let analytics = Analytics::builder()
        .database(&http_db)
        .sink(exporter)
        .sink(otlp)
        .build()
        .unwrap();
    let factory = analytics.clone();
    let serving_analytics = analytics.clone();
    let served = Serving::start(|listener, shutdown| async move {
        HttpServer::new(move || Canary {
            analytics: factory.clone(),
        })
        .serve_on(listener, shutdown, &serving_analytics)
        .await
    })
    .await;
    let http_addr = served.addr;
    let client = client_info()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "http://{http_addr}/mcp"
        )))
        .await
        .unwrap();
    exercise(&client).await;
    client.cancel().await.unwrap();
    analytics.flush().await;

    // Over stdio, in a child process configured from the environment.
    let stdio_log = dir.path().join("stdio.log");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stdio-demo"));
    command
        .arg("--canary")
        .current_dir(dir.path())
        .env("MCP_ANALYTICS_DB", &stdio_db)
        .env("MCP_ANALYTICS_ENDPOINT", format!("http://{collector_addr}"))
        .env("MCP_ANALYTICS_API_KEY", KEY)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp_addr}"))
        .env("MCP_ANALYTICS_OTEL_CAPTURE_CONTENT", "true")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("CANARY_LOG", &stdio_log)
        .env("CANARY_LOG_FILTER", LOG_FILTER);
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        stderr.unwrap().read_to_string(&mut text).await.unwrap();
        text
    });
    let client = client_info().serve(transport).await.unwrap();
    exercise(&client).await;
    // Closing stdin ends the server, which flushes (and exports) before exiting.
    client.cancel().await.unwrap();
    let stdio_stderr = stderr_text.await.unwrap();

    // Everything arrived everywhere, so the search below cannot pass by finding nothing.
    wait_until("the collector has both servers' calls", || {
        count(&collected, "SELECT count(*) FROM tool_calls") == 2 * CALLS
    })
    .await;
    wait_until("the collector has both servers' other requests", || {
        count(&collected, "SELECT count(*) FROM requests") == 2 * REQUESTS
    })
    .await;
    wait_until("every request reached OTLP", || {
        inbox.spans().len() >= 2 * (CALLS + REQUESTS) as usize
    })
    .await;
    assert_eq!(count(&http_db, "SELECT count(*) FROM tool_calls"), CALLS);
    assert_eq!(count(&stdio_db, "SELECT count(*) FROM tool_calls"), CALLS);
    for database in [&http_db, &stdio_db] {
        assert_eq!(count(database, "SELECT count(*) FROM requests"), REQUESTS);
    }
    assert_eq!(
        count(
            &collected,
            "SELECT count(DISTINCT target) FROM requests WHERE method = 'resources/read'"
        ),
        2 * CANARIES.len() as i64,
        "the URIs were stored (and searched), each redacted the same way on both servers"
    );
    assert_eq!(
        count(
            &collected,
            "SELECT count(*) FROM tool_calls WHERE result IS NOT NULL AND status = 'ok'"
        ),
        2 * 4,
        "results were stored (and searched)"
    );

    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    for database in [&http_db, &stdio_db, &collected] {
        haystacks.push((
            format!("dashboard API on {}", database.display()),
            dashboard_json(database).await.into_bytes(),
        ));
        let report = std::process::Command::new(mcp_analytics_tests::cli_binary())
            .args(["report", "--json", "--since", "30d", "--db"])
            .arg(database)
            .output()
            .unwrap();
        assert!(report.status.success(), "{report:?}");
        assert!(String::from_utf8_lossy(&report.stdout).contains("echo"));
        haystacks.push((
            format!("report --json on {}", database.display()),
            [report.stdout, report.stderr].concat(),
        ));
        haystacks.push((
            format!("mcp-analytics mcp on {}", database.display()),
            agent_answers(database).await.into_bytes(),
        ));
    }
    served.stop().await;
    collector.stop().await;
    let _ = stop_otlp.send(());

    for body in &inbox.received.lock().unwrap().bodies {
        haystacks.push(("an OTLP payload".into(), body.clone().into_bytes()));
    }
    // SQLite files and their -wal/-shm, the stdio server's log file.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    haystacks.push(("this process's logs".into(), logs.0.lock().unwrap().clone()));
    // The child's stderr: std's panic hook would print `explode`'s message there; while a tool
    // is polled mcp-analytics logs only where it panicked (to the log file searched above).
    haystacks.push((
        "the stdio server's stderr".into(),
        stdio_stderr.into_bytes(),
    ));

    if std::env::var_os("CANARY_DUMP").is_some() {
        for (place, bytes) in &haystacks {
            eprintln!("=== {place}\n{}", String::from_utf8_lossy(bytes));
        }
    }
    let mut leaks = Vec::new();
    for needle in needles() {
        for (place, bytes) in &haystacks {
            if bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
            {
                leaks.push(format!("{needle} in {place}"));
            }
        }
    }
    assert!(leaks.is_empty(), "canaries leaked:\n{}", leaks.join("\n"));
    assert!(
        std::fs::read_to_string(&stdio_log)
            .unwrap()
            .contains("a tool, prompt, resource or completion panicked at"),
        "the panic's location is logged"
    );
}
