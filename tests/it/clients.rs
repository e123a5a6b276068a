//! Per-client and per-capability views through real MCP clients: two differently named clients
//! call the demo over streamable HTTP — one of them an unknown tool and invalid arguments, the
//! other a panicking tool — and the dashboard's JSON API and `mcp-analytics report --json` show
//! the calls per client, the missing tool and what the demo's tool catalogue costs.

use mcp_analytics::server::Server;
use mcp_analytics_tests::{Demo, client::call, server::TestServer};
use rmcp::{
    RoleClient, ServiceExt,
    model::{ClientCapabilities, ClientConfig, Implementation},
    service::RunningService,
};
use serde_json::{Value, json};

async fn connect(
    server: &TestServer,
    name: &str,
    version: &str,
) -> RunningService<RoleClient, ClientConfig> {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new(name, version),
    )
    .serve(server.transport(None))
    .await
    .expect("the client connects")
}

/// A server whose calls came from `claude-code 1.2.0` (three sums and a panic) and
/// `inspector 0.9.0` (a sum, an unknown tool, a string for a number and a missing number).
async fn served_two_clients() -> TestServer {
    let server = TestServer::demo().start().await;
    let claude = connect(&server, "claude-code", "1.2.0").await;
    let inspector = connect(&server, "inspector", "0.9.0").await;
    for n in 0..3 {
        call(&claude, "add", json!({"a": n, "b": 1})).await.unwrap();
    }
    let _panicked = call(&claude, "explode", json!({})).await;
    call(&inspector, "add", json!({"a": 1, "b": 2}))
        .await
        .unwrap();
    let _unknown = call(&inspector, "delete_everything", json!({"really": true})).await;
    let _wrong_type = call(&inspector, "add", json!({"a": "one", "b": 2})).await;
    let _missing = call(&inspector, "add", json!({"a": 1})).await;
    claude.cancel().await.unwrap();
    inspector.cancel().await.unwrap();
    server.analytics.flush().await;
    server
}

/// `(client_name, client_version, calls, errors, sessions)` of each `clients[]` entry, and
/// their one protocol version.
/// `(client_name, client_version, calls, errors, sessions)`.
type Figures = (String, String, u64, u64, u64);

fn client_figures(clients: &Value) -> (Vec<Figures>, Value) {
    let clients = clients.as_array().expect("clients[]");
    let protocol = clients[0]["protocol_version"].clone();
    let figures = clients
        .iter()
        .map(|client| {
            assert_eq!(client["protocol_version"], protocol, "{client}");
            assert!(client["p95_ms"].as_f64().is_some(), "{client}");
            (
                client["client_name"].as_str().unwrap().to_owned(),
                client["client_version"].as_str().unwrap().to_owned(),
                client["calls"].as_u64().unwrap(),
                client["errors"].as_u64().unwrap(),
                client["sessions"].as_u64().unwrap(),
            )
        })
        .collect();
    (figures, protocol)
}

/// The demo's catalogue as its clients listed it: every tool, measured as served.
fn assert_context_cost(context_cost: &Value) {
    let catalogs = context_cost.as_array().expect("context_cost[]");
    assert_eq!(catalogs.len(), 1, "{context_cost}");
    let demo = &catalogs[0];
    assert_eq!(
        (&demo["server_name"], &demo["server_version"]),
        (&json!("demo"), &json!("0.0.1"))
    );
    let served = serde_json::to_vec(&Demo::tool_list().get(Demo::TOOLS)).unwrap();
    let tools = demo["tools"].as_array().unwrap();
    assert_eq!(tools.len(), Demo::TOOLS.len(), "{demo}");
    let add = tools.iter().find(|tool| tool["tool"] == "add").unwrap();
    let add_bytes = serde_json::to_vec(&Demo::tool_list().get(Demo::TOOLS)[0])
        .unwrap()
        .len();
    assert_eq!(add["bytes"], add_bytes, "{demo}");
    assert_eq!(add["tokens"], add_bytes.div_ceil(4), "{demo}");
    let envelope = r#"{"resultType":"complete","tools":}"#.len();
    assert_eq!(demo["list_bytes"], envelope + served.len(), "{demo}");
}

/// The inspector's two calls of `add` whose arguments did not deserialize.
fn invalid_params() -> Value {
    json!([
        {"tool": "add", "field": "a", "problem": "wrong_type", "calls": 1},
        {"tool": "add", "field": "b", "problem": "missing", "calls": 1},
    ])
}

#[tokio::test]
async fn a_panic_shows_in_the_error_drill_down_with_the_tools_frames_first_and_redacted() {
    let server = served_two_clients().await;
    let errors: Value = reqwest::get(format!("{}/api/errors?range=1h", server.dashboard_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let panic = errors
        .as_array()
        .unwrap()
        .iter()
        .find(|call| call["status"] == "panic")
        .expect("the panic is a recent error");
    let message = panic["error_message"].as_str().unwrap();
    let (text, frames) = message
        .split_once("\n\nbacktrace:\n")
        .unwrap_or_else(|| panic!("no backtrace in {message}"));
    assert!(
        text.starts_with("boom: key ") && !message.contains("sk_live"),
        "{message}"
    );
    let first = frames.lines().next().unwrap();
    assert!(
        first.starts_with("mcp_analytics_tests::Demo::explode")
            && first.contains(" at src/lib.rs:"),
        "{frames}"
    );
    assert!(
        !frames.contains("/home/") && !frames.contains("/work/"),
        "{frames}"
    );
}

fn expected() -> Vec<Figures> {
    vec![
        ("claude-code".into(), "1.2.0".into(), 4, 1, 1),
        ("inspector".into(), "0.9.0".into(), 4, 3, 1),
    ]
}

#[tokio::test]
async fn the_dashboard_shows_calls_per_client_and_the_tools_agents_missed() {
    let server = served_two_clients().await;
    let overview: Value = reqwest::get(format!("{}/api/overview?range=1h", server.dashboard_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let report = &overview["report"];
    let (figures, protocol) = client_figures(&report["clients"]);
    assert_eq!(figures, expected(), "{report}");
    assert!(
        protocol
            .as_str()
            .is_some_and(|version| version.starts_with("20"))
    );
    assert_eq!(
        report["protocol_versions"][0]["calls"], 8,
        "{}",
        report["protocol_versions"]
    );
    assert_context_cost(&report["context_cost"]);
    assert_eq!(report["invalid_params"], invalid_params());
    assert_eq!(
        report["missing_tools"],
        json!([{
            "tool": "delete_everything",
            "calls": 1,
            "sessions": 1,
            "clients": [{"client_name": "inspector", "client_version": "0.9.0", "calls": 1}],
        }])
    );
}

#[tokio::test]
async fn report_json_lists_clients_and_missing_tools() {
    let server = served_two_clients().await;
    let output = std::process::Command::new(mcp_analytics_tests::cli_binary())
        .args(["report", "--json", "--since", "1h", "--db"])
        .arg(&server.db)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let (figures, _) = client_figures(&report["clients"]);
    assert_eq!(figures, expected(), "{report}");
    let missing = report["missing_tools"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{report}");
    assert_eq!(
        (
            &missing[0]["tool"],
            &missing[0]["calls"],
            &missing[0]["sessions"]
        ),
        (&json!("delete_everything"), &json!(1), &json!(1))
    );
    assert_context_cost(&report["context_cost"]);
    assert_eq!(report["invalid_params"], invalid_params());
    let text = std::process::Command::new(mcp_analytics_tests::cli_binary())
        .args(["report", "--since", "1h", "--db"])
        .arg(&server.db)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("Clients") && text.contains("claude-code") && text.contains("inspector"),
        "{text}"
    );
    assert!(
        text.contains("Missing tools") && text.contains("delete_everything"),
        "{text}"
    );
    assert!(text.contains("Context cost of demo 0.0.1"), "{text}");
    assert!(
        text.contains("Invalid arguments") && text.contains("wrong type"),
        "{text}"
    );
}
