//! Many replicas, one ledger: the example binaries as separate server processes on one
//! PostgreSQL database of the throwaway cluster (`mcp_analytics_tests::postgres::Cluster`),
//! reached by real MCP clients over HTTP on 127.0.0.1. Callers are told apart by OAuth access
//! tokens that a test identity provider introspects, so one user is the same user on every
//! replica.

mod analytics;
mod examples;
mod meter;
mod replicas;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex, OnceLock,
        mpsc::{Receiver, channel},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, routing::post};
use mcp_analytics_tests::{
    client::client_info,
    fake_stripe::{FakeStripe, PriceKind},
    postgres::Cluster,
    server::transport,
};
use rmcp::{RoleClient, ServiceExt, model::ClientConfig, service::RunningService};
use serde_json::{Value, json};

/// Generous: a debug binary starting (and migrating) on a busy 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// What every replica's MCP clients send and the identity provider knows: `Bearer <user>`.
type McpClient = RunningService<RoleClient, ClientConfig>;

/// A fresh database named `name` on this process's cluster; its URL.
fn database(name: &str) -> String {
    Cluster::shared().create_database(name)
}

/// A client of the database at `url` (its connection runs on the current runtime).
async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("connect to {url}: {error}"));
    tokio::spawn(connection);
    client
}

/// `SELECT` one `BIGINT` (or `NULL` as 0).
async fn scalar(db: &tokio_postgres::Client, query: &str) -> i64 {
    db.query_one(query, &[])
        .await
        .unwrap_or_else(|error| panic!("{query}: {error}"))
        .get::<_, Option<i64>>(0)
        .unwrap_or(0)
}

/// The example binary `name` (`target/<profile>/examples/NAME`), built once per test run so
/// that a filtered run never starts a stale one.
fn example(name: &str) -> PathBuf {
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
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// A running example process on `127.0.0.1:0`; killed when dropped.
struct Replica {
    name: &'static str,
    child: Child,
    /// Where it serves MCP, the dashboard and the payment pages.
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Replica {
    /// Starts example `name` (`paid`, `quickstart`) over HTTP with `vars` (and nothing else
    /// from this environment that would change it); returns once it says where MCP is.
    fn start(name: &'static str, vars: &[(&str, String)]) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(example(name));
        command
            .args(["--http", "127.0.0.1:0"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for var in [
            "MCP_ANALYTICS_DB",
            "MCP_ANALYTICS_API_KEY",
            "MCP_ANALYTICS_ENDPOINT",
            "MCP_OAUTH_ISSUER",
            "STRIPE_SECRET_KEY",
            "STRIPE_WEBHOOK_SECRET",
            "STRIPE_API_BASE",
            "ENVIRONMENT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "RUST_LOG",
        ] {
            command.env_remove(var);
        }
        command.env("NO_COLOR", "1");
        command.envs(vars.iter().map(|(var, value)| (var, value)));
        let mut child = command.spawn().unwrap();
        let (lines, addr) = read_stderr(child.stderr.take().unwrap());
        let Ok(addr) = addr.recv_timeout(DEADLINE) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name} did not say where MCP is within {DEADLINE:?}; stderr:\n{}",
                lines.lock().unwrap().join("\n")
            );
        };
        Replica {
            name,
            child,
            addr,
            stderr: lines,
            _dir: dir,
        }
    }

    /// `http://ADDR{path}`.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// An MCP client of this replica sending `Authorization: Bearer <bearer>` when given.
    async fn client(&self, bearer: Option<&str>) -> McpClient {
        client_info()
            .serve(transport(self.addr, bearer))
            .await
            .unwrap_or_else(|error| panic!("a client of {}: {error}; {}", self.name, self.log()))
    }

    /// Its process id.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed on stderr so far.
    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// `kill -9`: no shutdown, no flush, claims left as they are.
    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits until it has exited (it flushes on the way out).
    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not exit after SIGTERM: {}", self.name, self.log());
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects the lines of `stderr` and sends the address of its `MCP at http://…` line.
fn read_stderr(
    stderr: std::process::ChildStderr,
) -> (Arc<Mutex<Vec<String>>>, Receiver<SocketAddr>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (send, addr) = channel();
    let kept = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("MCP at http://").nth(1) {
                let found: String = rest.chars().take_while(|c| *c != '/').collect();
                if let Ok(found) = found.parse() {
                    let _ = send.send(found);
                }
            }
            kept.lock().unwrap().push(line);
        }
    });
    (lines, addr)
}

/// A test OAuth authorization server on 127.0.0.1 that introspects the opaque token `<user>`
/// as that user (RFC 7662), so every replica resolves a caller the same way.
struct IdentityProvider {
    issuer: String,
    server: tokio::task::JoinHandle<()>,
}

/// The audience the replicas require.
const AUDIENCE: &str = "mcp-replicas";

impl IdentityProvider {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let answer_issuer = issuer.clone();
        let app = Router::new()
            .route("/introspect", post(introspect))
            .with_state(answer_issuer);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        IdentityProvider { issuer, server }
    }

    /// The `MCP_OAUTH_*` settings of a replica that accepts these tokens.
    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MCP_OAUTH_ISSUER", self.issuer.clone()),
            (
                "MCP_OAUTH_INTROSPECTION_URL",
                format!("{}/introspect", self.issuer),
            ),
            ("MCP_OAUTH_AUDIENCE", AUDIENCE.to_owned()),
        ]
    }
}

/// RFC 7662: the token `<user>` is an active token of that user, for [`AUDIENCE`].
async fn introspect(State(issuer): State<String>, body: String) -> Json<Value> {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let token = form.get("token").cloned().unwrap_or_default();
    Json(json!({
        "active": !token.is_empty(),
        "sub": token,
        "email": format!("{token}@example.com"),
        "aud": AUDIENCE,
        "iss": issuer,
    }))
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The outcome of one paid call: it ran, or `payment_required` (with its checkout session id).
#[derive(Debug, PartialEq, Eq)]
enum Paid {
    Ran,
    PaymentRequired(String),
}

/// Calls `tool` and sorts the answer; anything else fails the test with the answer.
async fn paid_call(client: &McpClient, tool: &str, arguments: Value) -> Paid {
    let result = mcp_analytics_tests::client::call(client, tool, arguments)
        .await
        .unwrap_or_else(|error| panic!("{tool}: {error}"));
    let body = result.structured_content.clone().unwrap_or(Value::Null);
    if result.is_error == Some(true) {
        assert_eq!(body["status"], "payment_required", "{result:?}");
        let session = body["checkout_session_id"].as_str().expect("a session id");
        return Paid::PaymentRequired(session.to_owned());
    }
    Paid::Ran
}

/// The checkout session id of a call that must answer `payment_required`.
async fn checkout(client: &McpClient, tool: &str, arguments: Value) -> String {
    match paid_call(client, tool, arguments).await {
        Paid::PaymentRequired(session) => session,
        Paid::Ran => panic!("{tool} ran unpaid"),
    }
}

/// Completes the local test checkout `session` through `replica`'s `/pay/{id}` page.
async fn pay_locally(replica: &Replica, session: &str) {
    let answer = reqwest::Client::new()
        .post(replica.url(&format!("/pay/{session}")))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let page = answer.text().await.unwrap();
    assert!(
        status.is_success() && page.contains("complete"),
        "paying {session} on {}: {status} {page}\n{}",
        replica.addr,
        replica.log()
    );
}

/// Calls `tool` on every client until it runs on all of them; panics after `deadline`.
async fn until_it_runs_everywhere(
    clients: &[&McpClient],
    tool: &str,
    arguments: Value,
    deadline: Duration,
) {
    let end = Instant::now() + deadline;
    let mut waiting: Vec<usize> = (0..clients.len()).collect();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for &index in &waiting {
            if paid_call(clients[index], tool, arguments.clone()).await != Paid::Ran {
                still.push(index);
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            assert!(
                Instant::now() < end,
                "{tool} still answers payment_required on replicas {waiting:?} after {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The dashboard's overview of the last hour, from its JSON API at `replica`.
async fn overview(replica: &Replica) -> Value {
    reqwest::get(replica.url("/analytics/api/overview?range=1h"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap_or_else(|error| panic!("{error}: {}", replica.log()))
        .json()
        .await
        .unwrap()
}

/// Polls the dashboard's `report.calls` until it is `expected`; panics with the last figure
/// after the deadline.
async fn until_the_dashboard_shows(replica: &Replica, expected: u64) {
    let end = Instant::now() + DEADLINE;
    loop {
        let overview = overview(replica).await;
        let calls = overview["report"]["calls"]
            .as_u64()
            .unwrap_or_else(|| panic!("no report.calls in {overview}"));
        if calls == expected {
            return;
        }
        assert!(
            Instant::now() < end,
            "the dashboard shows {calls} calls, not {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The prices of the paid example, at the fake Stripe (a server with Stripe checks them all at
/// startup).
fn add_the_paid_example_s_prices(stripe: &FakeStripe) {
    stripe.add_price("price_image_hd", 500, "usd", PriceKind::OneTime);
    stripe.add_price("price_thumbnails_50", 1000, "usd", PriceKind::OneTime);
    stripe.add_price(
        "price_api_usage",
        2,
        "usd",
        PriceKind::Metered {
            meter: "api_call".into(),
        },
    );
}

/// `count` replicas of example `name` with `vars`, started at once (so they migrate the
/// database together).
fn replicas(count: usize, name: &'static str, vars: &[(&str, String)]) -> Vec<Replica> {
    std::thread::scope(|scope| {
        let started: Vec<_> = (0..count)
            .map(|_| scope.spawn(|| Replica::start(name, vars)))
            .collect();
        started
            .into_iter()
            .map(|replica| replica.join().expect("the replica starts"))
            .collect()
    })
}
