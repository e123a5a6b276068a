//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary folder, the server on a
//! free 127.0.0.1 port, a database per test, everything gone afterwards.
//!
//! Self-contained (std and `tempfile` only), so both the runtime crate's unit tests and the
//! tests crate (through `#[path]`) compile it. The binaries come from the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package), else from `PATH`. Root cannot
//! run `initdb`, so as root the server runs as the `postgres` system user (`runuser`).
//!
//! [`Cluster::shared`] is one cluster per test process. A static is never dropped, so every
//! cluster has a watchdog: a small shell loop, in a process group of its own and deaf to
//! Ctrl-C, that stops the server and removes the folder once the test process is gone.

use std::{
    fmt::Write as _,
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::unix::{fs::MetadataExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

/// How long the server may take to accept connections.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// How many ports to try when another process takes the free one first.
const PORT_ATTEMPTS: usize = 5;

/// Settings for tests: durability off (the data is thrown away), room for many replicas.
const SERVER_SETTINGS: &[&str] = &[
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
];

/// A running throwaway PostgreSQL server (superuser `postgres`, trust authentication, TCP on
/// 127.0.0.1 only). Dropping it stops the server and removes its folder.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    watchdog: Mutex<Option<Child>>,
}

impl Cluster {
    /// Starts a new cluster. Panics, saying what is missing, when PostgreSQL's binaries are not
    /// installed (Debian: `apt-get install postgresql`) or the server does not start.
    pub fn start() -> Cluster {
        let bin = binaries();
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("mcp-analytics-pg-")
            .tempdir()
            .unwrap_or_else(|error| {
                panic!("test cluster: cannot create a temporary folder: {error}")
            });
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()));
        }
        let data = dir.path().join("data");
        run(server_command(as_postgres, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]));
        let mut cluster = Cluster {
            bin,
            dir,
            port: 0,
            as_postgres,
            watchdog: Mutex::new(None),
        };
        *cluster
            .watchdog
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = Some(cluster.watchdog());
        cluster.port = cluster.listen();
        cluster
    }

    /// The cluster of this test process, started on first use; the watchdog stops it when the
    /// process exits. Give each test its own database ([`Cluster::create_database`]).
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(Cluster::start)
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db`: `postgres://postgres@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (letters, digits and `_`; at most 63 bytes) and returns its URL.
    /// Panics if it exists already: each test names its own.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty()
                && name.len() <= 63
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "test cluster: {name:?} is not a plain database name (letters, digits, _; ≤ 63 bytes)"
        );
        run(Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg(name));
        self.url(name)
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server on a free port, retrying when another process takes it first.
    fn listen(&self) -> u16 {
        let mut failures = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut options = format!("-c listen_addresses=127.0.0.1 -p {port} -k ");
            options.push_str(&self.dir.path().display().to_string());
            for setting in SERVER_SETTINGS {
                let _ = write!(options, " -c {setting}");
            }
            let output = server_command(self.as_postgres, &self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("postgres.log"))
                .args(["-w", "-t", "30", "-o", &options, "start"])
                .output()
                .unwrap_or_else(|error| panic!("test cluster: cannot run pg_ctl: {error}"));
            if output.status.success() && wait_until_ready(port) {
                return port;
            }
            let _ = writeln!(failures, "port {port}: {}", describe(&output));
            let _ = self.stop();
        }
        panic!(
            "test cluster: the server did not start.\n{failures}\nlog:\n{}",
            self.log()
        );
    }

    /// Stops the server now (fast, no checkpoint).
    fn stop(&self) -> Output {
        server_command(self.as_postgres, &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .output()
            .unwrap_or_else(|error| panic!("test cluster: cannot run pg_ctl: {error}"))
    }

    /// A shell loop that waits for this process to end, then stops the server and removes the
    /// folder. Its own process group and ignored SIGINT/SIGHUP keep it alive through Ctrl-C.
    fn watchdog(&self) -> Child {
        let mut stop = String::new();
        if self.as_postgres {
            stop.push_str("runuser -u postgres -- ");
        }
        let _ = write!(
            stop,
            "{} -D {} -m immediate -w stop",
            quote(&self.bin.join("pg_ctl")),
            quote(&self.data())
        );
        let script = format!(
            "trap '' INT HUP; while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
             {stop} >/dev/null 2>&1; rm -rf {dir}",
            parent = std::process::id(),
            dir = quote(self.dir.path()),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("test cluster: cannot start the watchdog: {error}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self
            .watchdog
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = self.stop();
        // The temporary folder removes itself (root may remove the postgres user's files).
    }
}

/// The folder holding `initdb`, `pg_ctl` and `createdb`: the newest Debian version, else `PATH`.
fn binaries() -> PathBuf {
    let has_tools = |dir: &Path| {
        ["initdb", "pg_ctl", "createdb"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    };
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| has_tools(dir))
        .unwrap_or_else(|| {
            panic!(
                "test cluster: PostgreSQL's server binaries (initdb, pg_ctl, createdb) are not in \
                 /usr/lib/postgresql/*/bin nor on PATH; install them (Debian: apt-get install postgresql)"
            )
        })
}

/// Whether this process runs as root (whose `initdb` PostgreSQL refuses).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// `tool`, run as the `postgres` user when `as_postgres`.
fn server_command(as_postgres: bool, tool: &Path) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(tool);
        command
    } else {
        Command::new(tool)
    }
}

/// Runs `command`, panicking with its output if it fails.
fn run(command: &mut Command) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("test cluster: cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "test cluster: {command:?} failed: {}",
        describe(&output)
    );
    output
}

fn describe(output: &Output) -> String {
    format!(
        "{}; {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("test cluster: cannot find a free port: {error}"))
}

/// Whether the server accepts TCP connections on `port` before the deadline.
fn wait_until_ready(port: u16) -> bool {
    let deadline = Instant::now() + READY_DEADLINE;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `path` as one single-quoted shell word.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pg_isready` against `cluster`.
    fn is_ready(cluster: &Cluster) -> bool {
        Command::new(cluster.bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(cluster.port().to_string())
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// The database `psql` lands in when connecting to `url` over TCP, if it connects.
    fn connected_database(cluster: &Cluster, url: &str) -> Option<String> {
        let output = Command::new(cluster.bin.join("psql"))
            .args([url, "-XtAc", "SELECT current_database()"])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    #[test]
    fn a_cluster_accepts_connections_on_loopback_and_is_gone_once_dropped() {
        let cluster = Cluster::start();
        let port = cluster.port();
        let dir = cluster.dir.path().to_path_buf();
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok(),
            "{}",
            cluster.log()
        );
        assert!(is_ready(&cluster), "{}", cluster.log());
        assert_eq!(
            cluster.url("x"),
            format!("postgres://postgres@127.0.0.1:{port}/x")
        );
        drop(cluster);
        assert!(!dir.exists(), "{} is left behind", dir.display());
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "the server still listens on {port}"
        );
    }

    #[test]
    fn each_test_gets_a_database_of_its_own_on_the_shared_cluster() {
        let cluster = Cluster::shared();
        assert!(std::ptr::eq(cluster, Cluster::shared()));
        assert_eq!(
            connected_database(cluster, &cluster.url("harness_one")),
            None,
            "the database exists before it is created"
        );
        let one = cluster.create_database("harness_one");
        let two = cluster.create_database("harness_two");
        assert_eq!(one, cluster.url("harness_one"));
        assert_eq!(
            connected_database(cluster, &one).as_deref(),
            Some("harness_one")
        );
        assert_eq!(
            connected_database(cluster, &two).as_deref(),
            Some("harness_two")
        );
        let again = std::panic::catch_unwind(|| cluster.create_database("harness_one"));
        assert!(again.is_err(), "a database name was handed out twice");
    }

    #[test]
    #[should_panic(expected = "not a plain database name")]
    fn a_database_name_that_needs_quoting_is_refused() {
        Cluster::shared().create_database("drop table; --");
    }
}
