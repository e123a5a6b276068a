//! The example binaries as a user runs them: every example takes the same arguments, says where
//! MCP, the dashboard (and the test payment pages) are, logs without colour codes into a pipe,
//! and speaks MCP over stdio.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Output, Stdio},
    sync::{
        OnceLock,
        mpsc::{Receiver, channel},
    },
    time::{Duration, Instant},
};

const EXAMPLES: [&str; 2] = ["quickstart", "paid"];

/// Generous: a debug binary starting on a busy 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// The example binary next to this test's own directory (`target/<profile>/examples/NAME`),
/// built once per test run so that `--test command_line` alone never runs a stale one.
fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut build = Command::new(env!("CARGO"));
        build.args([
            "build",
            "--quiet",
            "-p",
            "mcp-analytics-examples",
            "--examples",
        ]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        assert!(build.status().unwrap().success(), "the examples build");
    });
    let deps = std::env::current_exe().unwrap();
    let profile = deps.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing after building the examples",
        path.display()
    );
    path
}

/// The example `name` with `args`, in an empty directory and without settings from the
/// environment that would change what it does (a Stripe key, OAuth, colours forced off).
fn command(name: &str, args: &[&str], dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(binary(name));
    command.args(args).current_dir(dir.path());
    for var in [
        "MCP_ANALYTICS_DB",
        "MCP_ANALYTICS_API_KEY",
        "MCP_ANALYTICS_ENDPOINT",
        "MCP_OAUTH_ISSUER",
        "STRIPE_SECRET_KEY",
        "ENVIRONMENT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "NO_COLOR",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command
}

fn run(name: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    command(name, args, &dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A running example whose stderr is read line by line; killed when dropped.
struct Running {
    child: Child,
    stderr: Receiver<String>,
    seen: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Self {
        Self::start_with(name, args, &[])
    }

    /// Starts `name` with `args` and these environment variables set.
    fn start_with(name: &str, args: &[&str], vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = command(name, args, &dir)
            .envs(vars.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Running {
            child,
            stderr: lines,
            seen: Vec::new(),
            _dir: dir,
        }
    }

    /// The first stderr line (from now or earlier) containing `text`.
    fn line_with(&mut self, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|line| line.contains(text)) {
            return line.clone();
        }
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no stderr line with {text:?}; got {:#?}", self.seen),
            }
        }
    }

    fn stdin(&mut self) -> &mut ChildStdin {
        self.child.stdin.as_mut().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// The `host:port` that follows `http://` in `line`.
fn address_in(line: &str) -> SocketAddr {
    let rest = line.split("http://").nth(1).expect("a URL");
    let addr: String = rest.chars().take_while(|c| *c != '/').collect();
    addr.parse().expect("a socket address")
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
            example.stdin(),
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"examples-test","version":"1"}}}}}}"#
        )
        .unwrap();
        let line = line_rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("{name} answered no initialize within {DEADLINE:?}"));
        let answer: serde_json::Value = serde_json::from_str(&line).expect("a JSON-RPC answer");
        assert_eq!(answer["id"], 1, "{answer}");
        assert!(
            answer["result"]["serverInfo"]["name"]
                .as_str()
                .is_some_and(|server| server.starts_with("My Analytics")),
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
