//! `mcp-analytics dashboard` and `collect` as a user runs them: the key in `.env` or `.dev.vars`
//! protects them exactly as the process variable does, and what they refuse is logged.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A running `mcp-analytics` command, killed when dropped.
struct Running {
    child: Child,
    addr: SocketAddr,
    /// Its stderr, line by line.
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Running {
    /// The next stderr line containing `text` (lines before it are skipped).
    fn stderr_line_with(&self, text: &str) -> String {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("no stderr line with {text:?}"),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mcp-analytics <command> --db <dir>/cli.db --listen 127.0.0.1:0` in `dir`.
fn start(command: &str, dir: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-analytics"))
        .args([command, "--db", "cli.db", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("MCP_ANALYTICS_API_KEY")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (send, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    let mut running = Running {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        stderr: lines,
    };
    let line = running.stderr_line_with("http://");
    let rest = line.split("http://").nth(1).unwrap();
    let addr: String = rest.chars().take_while(|c| *c != '/').collect();
    running.addr = addr.parse().unwrap();
    running
}

/// The status code of `method path` with `headers` and `body`.
fn status(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
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

#[test]
fn the_dashboard_takes_its_key_from_dot_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "MCP_ANALYTICS_API_KEY=from-dot-env\n",
    )
    .unwrap();
    let dashboard = start("dashboard", dir.path());
    assert_eq!(status(dashboard.addr, "GET", "/", "", ""), 401);
    assert_eq!(status(dashboard.addr, "GET", "/api/overview", "", ""), 401);
    let bearer = "Authorization: Bearer from-dot-env\r\n";
    assert_eq!(
        status(dashboard.addr, "GET", "/", bearer, ""),
        200,
        "the key from .env opens it"
    );
}

#[test]
fn the_collector_takes_its_key_from_dev_vars() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".dev.vars"),
        "MCP_ANALYTICS_API_KEY=from-dev-vars\n",
    )
    .unwrap();
    let collector = start("collect", dir.path());
    let json = "Content-Type: application/json\r\n";
    assert_eq!(
        status(collector.addr, "POST", "/ingest", json, r#"{"events":[]}"#),
        401
    );
    assert_eq!(status(collector.addr, "GET", "/api/overview", "", ""), 401);
    let bearer = format!("{json}Authorization: Bearer from-dev-vars\r\n");
    assert_eq!(
        status(
            collector.addr,
            "POST",
            "/ingest",
            &bearer,
            r#"{"events":[]}"#
        ),
        200
    );
}

#[test]
fn a_refused_request_is_logged_as_plain_text_into_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let dashboard = start("dashboard", dir.path());
    let mut stream = TcpStream::connect(dashboard.addr).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: rebind.example\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let warning = dashboard.stderr_line_with("Host that is not allowed");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(!warning.contains('\u{1b}'), "coloured: {warning:?}");
}
