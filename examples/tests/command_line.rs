//! The example binaries as a user runs them: every example takes the same arguments, says where
//! MCP, the dashboard (and the test payment pages) are, logs without colour codes into a pipe,
//! and speaks MCP over stdio.

mod support;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Output, Stdio},
    sync::mpsc::channel,
};

use support::{DEADLINE, Running, address_in, command};

const EXAMPLES: [&str; 3] = ["quickstart", "paid", "everything"];

fn run(name: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    command(name, args, &dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The status line and body of `GET path` with this `Host`.
fn get(addr: SocketAddr, path: &str, host: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn help_prints_the_usage_on_stdout_and_exits_with_zero() {
    for name in EXAMPLES {
        for flag in ["--help", "-h"] {
            let output = run(name, &[flag]);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert_eq!(output.status.code(), Some(0), "{name} {flag}: {output:?}");
            assert!(
                stdout.contains(&format!("Usage: cargo run --example {name}")),
                "{name} {flag}: {stdout}"
            );
            for option in ["--stdio", "--http ADDR", "-h, --help"] {
                assert!(stdout.contains(option), "{name} {flag}: {stdout}");
            }
        }
    }
}

#[test]
fn an_unknown_argument_prints_the_usage_on_stderr_and_exits_with_two() {
    for name in EXAMPLES {
        for args in [&["--bogus"][..], &["127.0.0.1:9000"], &["--http"]] {
            let output = run(name, args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{name} {args:?}: {output:?}");
            assert!(stderr.starts_with("error: "), "{name} {args:?}: {stderr}");
            assert!(stderr.contains("Usage: cargo run --example"), "{stderr}");
            assert!(output.stdout.is_empty(), "{name} {args:?}: {output:?}");
        }
    }
}

#[test]
fn over_http_every_example_says_where_mcp_and_the_dashboard_are_and_logs_without_colour() {
    for name in EXAMPLES {
        let mut example = Running::start(name, &["--http", "127.0.0.1:0"]);
        let mcp = example.line_with("MCP at http://");
        let addr = address_in(&mcp);
        assert!(mcp.contains(&format!("http://{addr}/mcp")), "{mcp}");
        let dashboard = example.line_with("dashboard at http://");
        assert_eq!(address_in(&dashboard), addr, "{dashboard}");
        if name == "paid" {
            example.line_with("test payment pages at");
        }
        let page = get(addr, "/analytics", &addr.to_string());
        assert!(page.starts_with("HTTP/1.1 200"), "{name}: {page}");
        let db = example.dir().join("mcp-analytics.db");
        assert!(db.exists(), "{name} records into ./mcp-analytics.db");

        // A refused request is logged at `warn`: into a pipe, as plain text.
        let refused = get(addr, "/analytics", "rebind.example");
        assert!(refused.starts_with("HTTP/1.1 403"), "{name}: {refused}");
        let warning = example.line_with("Host that is not allowed");
        assert!(warning.contains("WARN"), "{warning}");
        for line in &example.seen {
            assert!(
                !line.contains('\u{1b}'),
                "{name} coloured its stderr: {line:?}"
            );
        }
    }
}

#[test]
fn over_stdio_every_example_answers_initialize_and_names_its_dashboard_command() {
    for name in EXAMPLES {
        let mut example = Running::start(name, &["--stdio"]);
        let mut stdout = BufReader::new(example.child.stdout.take().unwrap());
        let (line_tx, line_rx) = channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = line_tx.send(line);
        });
        writeln!(
            example.child.stdin.as_mut().unwrap(),
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"examples-test","version":"1"}}}}}}"#
        )
        .unwrap();
        let line = line_rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("{name} answered no initialize within {DEADLINE:?}"));
        let answer: serde_json::Value = serde_json::from_str(&line).expect("a JSON-RPC answer");
        assert_eq!(answer["id"], 1, "{answer}");
        let server = if name == "everything" {
            "mcp-analytics-everything"
        } else {
            "My Analytics"
        };
        assert!(
            answer["result"]["serverInfo"]["name"]
                .as_str()
                .is_some_and(|name| name.starts_with(server)),
            "{name}: {answer}"
        );
        assert!(
            answer["result"]["capabilities"]["tools"].is_object(),
            "{answer}"
        );
        example.line_with("MCP over stdio");
        let hint = example.line_with("dashboard: not served over stdio");
        assert!(hint.contains("dashboard --db ./mcp-analytics.db"), "{hint}");
        if name == "paid" {
            let pages = example.line_with("test checkout pages at http://127.0.0.1:");
            assert!(pages.contains("/pay/"), "{pages}");
        }
    }
}

#[test]
fn the_readme_s_otlp_command_exports_from_the_quickstart() {
    // The README's `OTEL_EXPORTER_OTLP_ENDPOINT=… cargo run --example quickstart` (port 9 is
    // discard: nothing needs to listen for the exporter to be set up).
    let vars = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_SERVICE_NAME", "weather-mcp"),
    ];
    let mut example = Running::start_with("quickstart", &["--http", "127.0.0.1:0"], &vars);
    let mcp = example.line_with("MCP at http://");
    assert!(mcp.contains("OTLP http://127.0.0.1:9/v1/traces"), "{mcp}");
}
