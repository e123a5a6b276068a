//! What the example tests share: the example binaries, built once per run, started in an
//! empty directory with their stderr read line by line.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        OnceLock,
        mpsc::{Receiver, channel},
    },
    time::{Duration, Instant},
};

/// Generous: a debug binary starting on a busy 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The example binary next to this test's own directory (`target/<profile>/examples/NAME`),
/// built once per test run so that `--test command_line` alone never runs a stale one.
pub fn binary(name: &str) -> PathBuf {
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
pub fn command(name: &str, args: &[&str], dir: &tempfile::TempDir) -> Command {
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

/// A running example whose stderr is read line by line; killed when dropped.
pub struct Running {
    pub child: Child,
    stderr: Receiver<String>,
    pub seen: Vec<String>,
    dir: tempfile::TempDir,
}

impl Running {
    pub fn start(name: &str, args: &[&str]) -> Self {
        Self::start_with(name, args, &[])
    }

    /// Starts `name` with `args` and these environment variables set.
    pub fn start_with(name: &str, args: &[&str], vars: &[(&str, &str)]) -> Self {
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
            dir,
        }
    }

    /// The first stderr line (from now or earlier) containing `text`.
    pub fn line_with(&mut self, text: &str) -> String {
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

    /// The directory it runs in (where `./mcp-analytics.db` is).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `host:port` that follows `http://` in `line`.
pub fn address_in(line: &str) -> SocketAddr {
    let rest = line.split("http://").nth(1).expect("a URL");
    let addr: String = rest.chars().take_while(|c| *c != '/').collect();
    addr.parse().expect("a socket address")
}
