//! The `everything` example against real MCP clients: the official conformance suite
//! (`@modelcontextprotocol/conformance`) over streamable HTTP, and the MCP Inspector's CLI over
//! HTTP and stdio in both protocol eras (legacy `initialize`, and MCP 2026-07-28); then the
//! analytics database must hold each of their `tools/call` requests, under the right client and
//! protocol version, and the suite's prompt, resource and completion requests.
//!
//! The Node tools live in `.tools/` (`bash .ci/node-tools.sh` installs them, as `.ci/run`
//! does). Without them the tests say so loudly and pass, except under CI (`CI=true`), where a
//! missing tool fails them.

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsString,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{Running, address_in, binary};

/// The prompts, resources and completion the suite asks for, as recorded in `requests`
/// (method and target; the suite may ask some more than once).
const SUITE_REQUESTS: [(&str, &str); 12] = [
    ("prompts/list", ""),
    ("prompts/get", "test_simple_prompt"),
    ("prompts/get", "test_prompt_with_arguments"),
    ("prompts/get", "test_prompt_with_embedded_resource"),
    ("prompts/get", "test_prompt_with_image"),
    ("resources/list", ""),
    ("resources/read", "test://static-text"),
    ("resources/read", "test://static-binary"),
    ("resources/read", "test://template/123/data"),
    ("resources/subscribe", "test://watched-resource"),
    ("resources/unsubscribe", "test://watched-resource"),
    ("completion/complete", "test_prompt_with_arguments"),
];

/// The tools the suite calls, and how each call is recorded (`json_schema_2020_12_tool` is
/// only listed).
const SUITE_CALLS: [(&str, &str); 13] = [
    ("test_simple_text", "ok"),
    ("test_image_content", "ok"),
    ("test_audio_content", "ok"),
    ("test_embedded_resource", "ok"),
    ("test_multiple_content_types", "ok"),
    ("test_tool_with_logging", "ok"),
    ("test_error_handling", "tool_error"),
    ("test_tool_with_progress", "ok"),
    ("test_sampling", "ok"),
    ("test_elicitation", "ok"),
    ("test_elicitation_sep1034_defaults", "ok"),
    ("test_elicitation_sep1330_enums", "ok"),
    ("test_reconnection", "ok"),
];

/// Longest a Node tool may take (the whole suite takes seconds).
const TOOL_DEADLINE: Duration = Duration::from_secs(300);

/// The pinned Node 22, conformance suite and Inspector in `.tools/`.
struct NodeTools {
    path: OsString,
    conformance: PathBuf,
    inspector: PathBuf,
    /// The Inspector's version, which it reports as its client version.
    inspector_version: String,
}

impl NodeTools {
    /// The tools, or `None` (after saying so) when they are not installed outside CI.
    fn find() -> Option<Self> {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools");
        let node = tools.join("node22/node_modules/node/bin");
        let modules = tools.join("mcp/node_modules");
        let conformance = modules.join(".bin/conformance");
        let inspector = modules.join(".bin/mcp-inspector");
        let manifest = modules.join("@modelcontextprotocol/inspector/package.json");
        let installed = [node.join("node"), conformance.clone(), manifest.clone()];
        if let Some(missing) = installed.iter().find(|path| !path.exists()) {
            let message = format!(
                "{} is missing: run `bash .ci/node-tools.sh` to install Node 22, the MCP \
                 conformance suite and the MCP Inspector",
                missing.display()
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            let loud = format!("\n!!!!!!!! SKIPPED (not under CI): {message} !!!!!!!!\n");
            let _ = std::io::stderr().write_all(loud.as_bytes());
            return None;
        }
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
        let mut path = OsString::from(node);
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        Some(NodeTools {
            path,
            conformance,
            inspector,
            inspector_version: manifest["version"].as_str().unwrap().to_owned(),
        })
    }

    /// `tool` run by Node 22, with a scratch `HOME` (the Inspector writes `~/.mcp-inspector`).
    fn command(&self, tool: &Path, home: &Path) -> Command {
        let mut command = Command::new(tool);
        command
            .env("PATH", &self.path)
            .env("HOME", home)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }
}

/// Runs `command` to its end, killing it after [`TOOL_DEADLINE`].
fn run_bounded(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipes = [
        child
            .stdout
            .take()
            .map(|out| Box::new(out) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|err| Box::new(err) as Box<dyn Read + Send>),
    ]
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.unwrap().read_to_end(&mut bytes).unwrap();
            bytes
        })
    })
    .into_iter();
    let end = Instant::now() + TOOL_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("{command:?} ran longer than {TOOL_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: pipes.next().unwrap().join().unwrap(),
        stderr: pipes.next().unwrap().join().unwrap(),
    }
}

/// One recorded call: tool, status, client name and version, protocol version, transport.
type Row = (String, String, String, String, String, String);

/// The `tool_calls` rows of `db`, once at least `expected` are there (the writer stores them
/// in the background).
fn recorded(db: &Path, expected: usize) -> Vec<Row> {
    let end = Instant::now() + support::DEADLINE;
    loop {
        let rows = rows(db).unwrap_or_default();
        if rows.len() >= expected || Instant::now() > end {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rows(db: &Path) -> rusqlite::Result<Vec<Row>> {
    let connection = rusqlite::Connection::open(db)?;
    let mut statement = connection.prepare(
        "SELECT tool, status, client_name, client_version, protocol_version, transport
         FROM tool_calls ORDER BY ts_ms",
    )?;
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })?
        .collect()
}

fn row(tool: &str, status: &str, client: (&str, &str), protocol: &str, transport: &str) -> Row {
    (
        tool.into(),
        status.into(),
        client.0.into(),
        client.1.into(),
        protocol.into(),
        transport.into(),
    )
}

/// The everything example over HTTP on a free loopback port, and its MCP URL.
fn serve_http() -> (Running, String) {
    let mut example = Running::start("everything", &["--http", "127.0.0.1:0"]);
    let addr = address_in(&example.line_with("MCP at http://"));
    (example, format!("http://{addr}/mcp"))
}

/// Each scenario's check statuses, from the suite's `OUT/server-<scenario>-<time>/checks.json`.
fn scenario_statuses(out: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let mut scenarios = BTreeMap::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        // `-2026-12-04T15-59-55-811Z`: a dash and 24 characters of time.
        let scenario = name
            .strip_prefix("server-")
            .and_then(|rest| rest.get(..rest.len().checked_sub(25)?))
            .unwrap_or_else(|| panic!("unexpected result folder {name}"))
            .to_owned();
        let checks: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("checks.json")).unwrap())
                .unwrap();
        let statuses = checks
            .iter()
            .map(|check| {
                let text = |key| check[key].as_str().unwrap_or_default().to_owned();
                (
                    text("status"),
                    format!("{}: {}", text("id"), text("errorMessage")),
                )
            })
            .collect();
        scenarios.insert(scenario, statuses);
    }
    scenarios
}

#[test]
fn the_conformance_suite_passes_every_scenario_against_the_everything_example() {
    let Some(tools) = NodeTools::find() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let (example, url) = serve_http();
    let out = scratch.path().join("results");

    let mut suite = tools.command(&tools.conformance, scratch.path());
    suite
        .args(["server", "--url", &url, "--suite", "all", "-o"])
        .arg(&out);
    let output = run_bounded(suite);
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the suite found failures:\n{log}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The suite's own verdict, checked again from its results: every scenario has passing
    // checks and no failure or warning.
    let scenarios = scenario_statuses(&out);
    assert!(scenarios.len() >= 32, "{:?}", scenarios.keys());
    for (scenario, checks) in &scenarios {
        let failed: Vec<_> = checks
            .iter()
            .filter(|(status, _)| status == "FAILURE" || status == "WARNING")
            .collect();
        assert!(failed.is_empty(), "{scenario}: {failed:?}");
        assert!(
            checks.iter().any(|(status, _)| status == "SUCCESS"),
            "{scenario} has no passing check: {checks:?}"
        );
    }

    // Every `tools/call` of the suite was recorded, under its client and protocol.
    let db = example.dir().join("mcp-analytics.db");
    let rows = recorded(&db, SUITE_CALLS.len());
    let client = ("conformance-test-client", "1.0.0");
    let expected: BTreeSet<Row> = SUITE_CALLS
        .iter()
        .map(|(tool, status)| row(tool, status, client, "2025-11-25", "http"))
        .collect();
    assert_eq!(rows.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(rows.len(), SUITE_CALLS.len(), "one row per call: {rows:#?}");

    // And every prompt, resource and completion request, answered without an error.
    let requests = recorded_requests(&db);
    let asked: BTreeSet<(&str, &str)> = requests
        .iter()
        .map(|(method, target, _)| (method.as_str(), target.as_str()))
        .collect();
    for expected in SUITE_REQUESTS {
        assert!(
            asked.contains(&expected),
            "{expected:?} not in {requests:#?}"
        );
    }
    let failed: Vec<_> = requests
        .iter()
        .filter(|(_, _, status)| status != "ok")
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// The `prompts/*`, `resources/*` and `completion/*` requests recorded in `db` (method,
/// target or "", status), once the last one the suite sends is there.
fn recorded_requests(db: &Path) -> Vec<(String, String, String)> {
    let read = || -> rusqlite::Result<Vec<(String, String, String)>> {
        let connection = rusqlite::Connection::open(db)?;
        let mut statement = connection.prepare(
            "SELECT method, COALESCE(target, ''), status FROM requests
             WHERE method LIKE 'prompts/%' OR method LIKE 'resources/%'
                OR method LIKE 'completion/%'
             ORDER BY ts_ms",
        )?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect()
    };
    let end = Instant::now() + support::DEADLINE;
    loop {
        let requests = read().unwrap_or_default();
        let asked = |(method, target): (&str, &str)| {
            requests.iter().any(|(m, t, _)| m == method && t == target)
        };
        if SUITE_REQUESTS.into_iter().all(asked) || Instant::now() > end {
            return requests;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the Inspector CLI (`--method ...`) against `target` and returns its JSON result.
fn inspect(tools: &NodeTools, home: &Path, era: &str, target: &[&str], method: &[&str]) -> Value {
    let mut inspector = tools.command(&tools.inspector, home);
    inspector
        .args(["--cli", "--format", "json", "--protocol-era", era])
        .args(method)
        .args(target);
    let output = run_bounded(inspector);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "inspector {era} {method:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
}

/// Lists the tools, calls `test_simple_text` and `test_multiple_content_types`, gets
/// `test_prompt_with_arguments` and reads `test://template/42/data` through the Inspector in
/// both protocol eras.
fn list_and_call(tools: &NodeTools, home: &Path, target: &[&str]) {
    for era in ["legacy", "modern"] {
        let listed = inspect(tools, home, era, target, &["--method", "tools/list"]);
        let names: BTreeSet<&str> = listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|tool| tool["name"].as_str())
            .collect();
        for (tool, _) in SUITE_CALLS {
            assert!(names.contains(tool), "{era}: {tool} not in {names:?}");
        }
        assert!(names.contains("json_schema_2020_12_tool"), "{names:?}");

        let call = ["--method", "tools/call", "--tool-name", "test_simple_text"];
        let called = inspect(tools, home, era, target, &call);
        assert_eq!(
            called["result"]["content"][0]["text"], "This is a simple text response for testing.",
            "{era}: {called}"
        );
        let call = [
            "--method",
            "tools/call",
            "--tool-name",
            "test_multiple_content_types",
        ];
        let called = inspect(tools, home, era, target, &call);
        let kinds: Vec<&str> = called["result"]["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|block| block["type"].as_str())
            .collect();
        assert_eq!(kinds, ["text", "image", "resource"], "{era}: {called}");

        // `--prompt-args` takes every value up to the next option, so it goes first.
        let get = [
            "--prompt-args",
            "arg1=one",
            "arg2=two",
            "--method",
            "prompts/get",
            "--prompt-name",
            "test_prompt_with_arguments",
        ];
        let prompt = inspect(tools, home, era, target, &get);
        assert_eq!(
            prompt["result"]["messages"][0]["content"]["text"],
            "Prompt with arguments: arg1='one', arg2='two'",
            "{era}: {prompt}"
        );
        let read = [
            "--method",
            "resources/read",
            "--uri",
            "test://template/42/data",
        ];
        let resource = inspect(tools, home, era, target, &read);
        let text = resource["result"]["contents"][0]["text"].as_str().unwrap();
        let text: Value = serde_json::from_str(text).unwrap();
        assert_eq!(text["id"], "42", "{era}: {resource}");
    }
}

/// A recorded request: method, target, status, client name and version, protocol, transport.
type RequestRow = (String, String, String, String, String, String, String);

/// The `prompts/get` and `resources/read` requests recorded in `db`, once `expected` are there.
fn recorded_reads(db: &Path, expected: usize) -> BTreeSet<RequestRow> {
    let read = || -> rusqlite::Result<Vec<RequestRow>> {
        let connection = rusqlite::Connection::open(db)?;
        let mut statement = connection.prepare(
            "SELECT method, target, status, client_name, client_version, protocol_version,
                    transport
             FROM requests WHERE method IN ('prompts/get', 'resources/read')",
        )?;
        statement
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                ))
            })?
            .collect()
    };
    let end = Instant::now() + support::DEADLINE;
    loop {
        let rows = read().unwrap_or_default();
        if rows.len() >= expected || Instant::now() > end {
            assert_eq!(rows.len(), expected, "{rows:#?}");
            return rows.into_iter().collect();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The prompt and resource reads [`list_and_call`] records, on `transport`.
fn inspector_reads(tools: &NodeTools, transport: &str) -> BTreeSet<RequestRow> {
    let client = ("inspector-cli", tools.inspector_version.as_str());
    ["2025-11-25", "2026-07-28"]
        .into_iter()
        .flat_map(|protocol| {
            [
                ("prompts/get", "test_prompt_with_arguments"),
                ("resources/read", "test://template/42/data"),
            ]
            .map(|(method, target)| {
                let text = [
                    method, target, "ok", client.0, client.1, protocol, transport,
                ];
                let [a, b, c, d, e, f, g] = text.map(String::from);
                (a, b, c, d, e, f, g)
            })
        })
        .collect()
}

/// What [`list_and_call`] records as tool calls, on `transport`.
fn inspector_rows(tools: &NodeTools, transport: &str) -> BTreeSet<Row> {
    let client = ("inspector-cli", tools.inspector_version.as_str());
    ["2025-11-25", "2026-07-28"]
        .into_iter()
        .flat_map(|protocol| {
            ["test_simple_text", "test_multiple_content_types"]
                .map(|tool| row(tool, "ok", client, protocol, transport))
        })
        .collect()
}

#[test]
fn the_inspector_lists_and_calls_tools_gets_prompts_and_reads_resources_over_http_in_both_eras() {
    let Some(tools) = NodeTools::find() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let (example, url) = serve_http();
    list_and_call(&tools, home.path(), &[&url]);

    let db = example.dir().join("mcp-analytics.db");
    let rows = recorded(&db, 4);
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert_eq!(
        rows.into_iter().collect::<BTreeSet<_>>(),
        inspector_rows(&tools, "http")
    );
    assert_eq!(recorded_reads(&db, 4), inspector_reads(&tools, "http"));
}

#[test]
fn the_inspector_lists_and_calls_tools_gets_prompts_and_reads_resources_over_stdio_in_both_eras() {
    let Some(tools) = NodeTools::find() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("stdio.db");
    let binary = binary("everything");
    let database = format!("MCP_ANALYTICS_DB={}", db.display());
    let cwd = home.path().to_str().unwrap();
    let target = [
        "--cwd",
        cwd,
        "-e",
        &database,
        "--",
        binary.to_str().unwrap(),
        "--stdio",
    ];
    list_and_call(&tools, home.path(), &target);

    let rows = recorded(&db, 4);
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert_eq!(
        rows.into_iter().collect::<BTreeSet<_>>(),
        inspector_rows(&tools, "stdio")
    );
    assert_eq!(recorded_reads(&db, 4), inspector_reads(&tools, "stdio"));
}
