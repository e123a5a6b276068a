//! Servers on an ephemeral 127.0.0.1 port that stop when dropped: [`TestServer`] serves the demo
//! MCP servers over streamable HTTP (axum's `TestClient` is the model); [`Serving`] runs anything
//! with a `serve_on(listener, shutdown)`, such as the dashboard or the collector.

use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::http::request::Parts;
use mcp_analytics::{
    Analytics, Error, Identity, MemorySink, OAuthConfig, Payments, PaymentsBuilder,
    serve::HttpServer,
};
use rmcp::{
    RoleClient, ServiceExt,
    model::ClientConfig,
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

use crate::{Demo, PaidDemo, client::client_info, records::analytics};

/// Resolves when the test stops the server (or drops its guard).
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Resolves `Authorization: Bearer <user>` to that user, the way an auth layer would.
pub fn bearer_identity(parts: &Parts) -> Option<Identity> {
    let header = parts.headers.get("authorization")?.to_str().ok()?;
    header.strip_prefix("Bearer ").map(Identity::new)
}

/// [`bearer_identity`] with the e-mail address `<user>@example.com` (which Stripe customers get).
pub fn bearer_identity_with_email(parts: &Parts) -> Option<Identity> {
    let mut identity = bearer_identity(parts)?;
    identity.email = Some(format!("{}@example.com", identity.subject));
    Some(identity)
}

/// A server task on 127.0.0.1; dropping the guard tells the server to stop.
pub struct Serving {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl Serving {
    /// Serves `serve(listener, shutdown)` on an ephemeral loopback port; returns once the server
    /// answers HTTP. Panics if it does not start.
    pub async fn start<F>(serve: impl FnOnce(TcpListener, Shutdown) -> F) -> Self
    where
        F: Future<Output = Result<(), Error>> + Send + 'static,
    {
        Self::try_start(serve).await.expect("the server starts")
    }

    /// [`start`](Self::start), returning the error a server that fails at startup ends with.
    pub async fn try_start<F>(serve: impl FnOnce(TcpListener, Shutdown) -> F) -> Result<Self, Error>
    where
        F: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: Shutdown = Box::pin(async move {
            let _ = stopped.await;
        });
        let mut task = tokio::spawn(serve(listener, shutdown));
        // A listening server answers; one that failed at startup dropped its listener.
        let ended = tokio::select! {
            answered = answers(addr) => if answered {
                None
            } else {
                let ended = tokio::time::timeout(Duration::from_secs(30), &mut task).await;
                Some(ended.expect("a server that does not answer has stopped"))
            },
            ended = &mut task => Some(ended),
        };
        if let Some(ended) = ended {
            ended.expect("the server task does not panic")?;
            panic!("the server stopped at startup without an error");
        }
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops the server and waits until it has (an MCP server flushes its analytics on the way
    /// out). Panics if it ended with an error.
    pub async fn stop(mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        let task = self.task.take().expect("the server runs until stopped");
        task.await
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Whether something at `addr` answers an HTTP request (any status).
async fn answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let request = b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(60), stream.read(&mut first)).await,
        Ok(Ok(1..))
    )
}

/// A demo MCP server on 127.0.0.1 for one test, stopped when dropped.
///
/// It owns a temporary folder with the SQLite file [`db`](Self::db); unless the test gives its
/// own [`analytics`](TestServerBuilder::analytics), calls are recorded into that file and into
/// [`sink`](Self::sink).
pub struct TestServer {
    // First, so that dropping the guard signals the server before its folder goes.
    serving: Serving,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its calls are recorded.
    pub analytics: Analytics,
    /// The SQLite file in the server's folder: its analytics' database (unless the test gave its
    /// own analytics) and its payments'.
    pub db: PathBuf,
    /// The memory sink its analytics records into (empty when the test gave its own analytics).
    pub sink: MemorySink,
    paid: Option<(Payments, Arc<AtomicUsize>)>,
    dir: Option<TempDir>,
}

/// How a [`TestServer`] is started: [`TestServer::demo`] or [`TestServer::paid`], then options.
pub struct TestServerBuilder {
    /// The paid demo's payments; the free demo without.
    payments: Option<PaymentsBuilder>,
    dir: TempDir,
    db: PathBuf,
    analytics: Option<Analytics>,
    options: Options,
}

/// The [`HttpServer`] options of a [`TestServerBuilder`].
struct Options {
    stateless: bool,
    identity: Option<fn(&Parts) -> Option<Identity>>,
    oauth: Option<Box<dyn FnOnce(String) -> OAuthConfig>>,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    dashboard: bool,
}

impl TestServer {
    /// The [`Demo`] server.
    pub fn demo() -> TestServerBuilder {
        let dir = tempfile::tempdir().expect("a temporary folder");
        TestServerBuilder {
            payments: None,
            db: dir.path().join("test.db"),
            dir,
            analytics: None,
            options: Options {
                stateless: false,
                identity: None,
                oauth: None,
                allowed_hosts: Vec::new(),
                allowed_origins: Vec::new(),
                dashboard: true,
            },
        }
    }

    /// The [`PaidDemo`] server, taking payments that `payments` configures for the server's
    /// database.
    pub fn paid(payments: impl FnOnce(&Path) -> PaymentsBuilder) -> TestServerBuilder {
        let mut builder = Self::demo();
        builder.payments = Some(payments(&builder.db));
        builder
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The MCP endpoint, `http://ADDR/mcp`.
    pub fn mcp_url(&self) -> String {
        self.url("/mcp")
    }

    /// The dashboard, `http://ADDR/analytics`.
    pub fn dashboard_url(&self) -> String {
        self.url("/analytics")
    }

    /// A streamable HTTP client transport to [`mcp_url`](Self::mcp_url), sending
    /// `Authorization: Bearer <bearer>` when given.
    pub fn transport(
        &self,
        bearer: Option<&str>,
    ) -> StreamableHttpClientTransport<reqwest::Client> {
        transport(self.addr, bearer)
    }

    /// A connected MCP client (`test-client/1.2.3`) sending `Authorization: Bearer <bearer>`
    /// when given.
    pub async fn client(&self, bearer: Option<&str>) -> RunningService<RoleClient, ClientConfig> {
        client_info()
            .serve(self.transport(bearer))
            .await
            .expect("the client connects")
    }

    /// The paid demo's payments. Panics on the free demo.
    pub fn payments(&self) -> &Payments {
        &self.paid.as_ref().expect("a TestServer::paid server").0
    }

    /// How many times a paid tool actually ran. Panics on the free demo.
    pub fn runs(&self) -> usize {
        let (_, runs) = self.paid.as_ref().expect("a TestServer::paid server");
        runs.load(Ordering::SeqCst)
    }

    /// The server's folder, which then outlives the server (for a test that restarts on
    /// [`db`](Self::db)).
    pub fn take_dir(&mut self) -> TempDir {
        self.dir.take().expect("the folder is taken once")
    }

    /// Stops the server and waits until it has (its analytics is flushed and shut down).
    /// Panics if it ended with an error.
    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

/// A streamable HTTP client transport to `http://addr/mcp`, with `Authorization: Bearer <bearer>`
/// when given.
pub fn transport(
    addr: SocketAddr,
    bearer: Option<&str>,
) -> StreamableHttpClientTransport<reqwest::Client> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"));
    if let Some(bearer) = bearer {
        config = config.auth_header(bearer);
    }
    StreamableHttpClientTransport::from_config(config)
}

/// Applies a builder's `HttpServer` options to `$server` (an `HttpServer` of either demo).
macro_rules! configured {
    ($server:expr, $builder:ident, $addr:expr) => {{
        let mut server = $server
            .allowed_hosts($builder.allowed_hosts)
            .allowed_origins($builder.allowed_origins);
        if $builder.stateless {
            server = server.stateless();
        }
        if let Some(identity) = $builder.identity {
            server = server.identity(identity);
        }
        if let Some(oauth) = $builder.oauth {
            server = server.oauth(oauth(format!("http://{}/mcp", $addr)));
        }
        if !$builder.dashboard {
            server = server.without_dashboard();
        }
        server
    }};
}

impl TestServerBuilder {
    /// Record into `analytics` instead of the server's database and memory sink.
    pub fn analytics(mut self, analytics: Analytics) -> Self {
        self.analytics = Some(analytics);
        self
    }

    /// Serve without sessions ([`HttpServer::stateless`]).
    pub fn stateless(mut self) -> Self {
        self.options.stateless = true;
        self
    }

    /// Attribute calls to whom `resolver` finds ([`HttpServer::identity`]), such as
    /// [`bearer_identity`].
    pub fn identity(mut self, resolver: fn(&Parts) -> Option<Identity>) -> Self {
        self.options.identity = Some(resolver);
        self
    }

    /// Require OAuth ([`HttpServer::oauth`]) as `config` makes it from the server's `/mcp` URL.
    pub fn oauth(mut self, config: impl FnOnce(String) -> OAuthConfig + 'static) -> Self {
        self.options.oauth = Some(Box::new(config));
        self
    }

    /// Also accept these `Host` names ([`HttpServer::allowed_hosts`]).
    pub fn allowed_hosts(mut self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options
            .allowed_hosts
            .extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Let these browser origins call `/mcp` ([`HttpServer::allowed_origins`]).
    pub fn allowed_origins(mut self, origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options
            .allowed_origins
            .extend(origins.into_iter().map(Into::into));
        self
    }

    /// Serve no dashboard at `/analytics` ([`HttpServer::without_dashboard`]).
    pub fn without_dashboard(mut self) -> Self {
        self.options.dashboard = false;
        self
    }

    /// Starts the server; it answers HTTP when this returns. Panics if it does not start.
    pub async fn start(self) -> TestServer {
        self.try_start().await.expect("the server starts")
    }

    /// [`start`](Self::start), returning the error a server that fails at startup (bad pricing,
    /// payments that may not run here) ends with.
    pub async fn try_start(self) -> Result<TestServer, Error> {
        let sink = MemorySink::new();
        let analytics = match self.analytics.clone() {
            Some(analytics) => analytics,
            None => analytics(&sink, &self.db),
        };
        let Self {
            payments,
            dir,
            db,
            options,
            ..
        } = self;
        let paid = match payments {
            Some(payments) => Some((payments.build()?, Arc::new(AtomicUsize::new(0)))),
            None => None,
        };
        let serving = Serving::try_start(|listener, shutdown| {
            let addr = listener.local_addr().expect("the listener's address");
            let analytics = analytics.clone();
            let serve: Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> = match &paid {
                None => {
                    let factory = analytics.clone();
                    let server = HttpServer::new(move || Demo {
                        analytics: factory.clone(),
                    });
                    let server = configured!(server, options, addr);
                    Box::pin(async move { server.serve_on(listener, shutdown, &analytics).await })
                }
                Some((payments, runs)) => {
                    let demo = PaidDemo {
                        analytics: analytics.clone(),
                        payments: payments.clone(),
                        runs: runs.clone(),
                    };
                    let server = HttpServer::new(move || demo.clone());
                    let server = configured!(server, options, addr);
                    Box::pin(async move { server.serve_on(listener, shutdown, &analytics).await })
                }
            };
            serve
        })
        .await?;
        Ok(TestServer {
            addr: serving.addr,
            analytics,
            db,
            sink,
            paid,
            dir: Some(dir),
            serving,
        })
    }
}
