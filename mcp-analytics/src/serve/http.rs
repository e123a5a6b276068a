//! [`HttpServer`]: streamable HTTP (axum) at `/mcp`, with the origin check, OAuth, identity and
//! JSON-RPC error layers, the dashboard at `/analytics` and the payment routes.

use std::{future::Future, net::SocketAddr, sync::Arc};

use rmcp::{
    ServerHandler,
    transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService},
};
use tokio_util::sync::CancellationToken;

use crate::{Analytics, Error, IdentityResolver, identity::Sessions, server::Server};

/// Serves the server built by `factory` over streamable HTTP at `http://{addr}/mcp` until
/// Ctrl-C or SIGTERM, then flushes analytics.
pub async fn http<S, F>(factory: F, addr: SocketAddr) -> Result<(), Error>
where
    S: Server + ServerHandler,
    F: Fn() -> S + Send + Sync + 'static,
{
    HttpServer::new(factory).serve(addr).await
}

/// A streamable HTTP server (axum) for an `#[mcp_server]` type, mounted at `/mcp`.
///
/// Legacy clients get `Mcp-Session-Id` sessions (stateful mode, the default); MCP
/// 2026-07-28 clients are always served sessionless. [`HttpServer::router`] gives the
/// axum router to add routes or layers to.
pub struct HttpServer<S> {
    factory: Arc<dyn Fn() -> S + Send + Sync>,
    stateful: bool,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    identity: Option<Arc<dyn IdentityResolver>>,
    #[cfg(feature = "oauth")]
    oauth: Option<Arc<crate::identity::OAuth>>,
    /// The key `/mcp` requires as a bearer token, if any.
    #[cfg(feature = "dashboard")]
    api_key: Option<Arc<crate::dashboard::auth::Auth>>,
    /// Refuse a non-loopback address unless a key or OAuth protects `/mcp`.
    private: bool,
    shutdown: CancellationToken,
    /// Payments of the server's `#[paid]` tools (webhook and test checkout routes).
    payments: Option<crate::Payments>,
    #[cfg(feature = "dashboard")]
    dashboard: DashboardMount,
}

/// rmcp's streamable HTTP service at `/mcp`, with its sessions kept by `sessions`.
fn nest_mcp<S, M>(
    factory: impl Fn() -> Result<S, std::io::Error> + Send + Sync + 'static,
    sessions: Arc<M>,
    config: StreamableHttpServerConfig,
) -> axum::Router
where
    S: ServerHandler + Send + 'static,
    M: rmcp::transport::streamable_http_server::SessionManager,
{
    axum::Router::new().nest_service(
        "/mcp",
        StreamableHttpService::new(factory, sessions, config),
    )
}

/// Whether `/analytics` serves the dashboard.
#[cfg(feature = "dashboard")]
enum DashboardMount {
    /// Over the server's own database, protected by `MCP_ANALYTICS_API_KEY` when set.
    Auto,
    Off,
    With(crate::dashboard::Dashboard),
}

impl<S: Server + ServerHandler> HttpServer<S> {
    /// A server whose sessions (or requests, when stateless) are built by `factory`.
    pub fn new(factory: impl Fn() -> S + Send + Sync + 'static) -> Self {
        Self {
            factory: Arc::new(factory),
            stateful: true,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: Vec::new(),
            identity: None,
            #[cfg(feature = "oauth")]
            oauth: None,
            #[cfg(feature = "dashboard")]
            api_key: None,
            private: false,
            shutdown: CancellationToken::new(),
            payments: None,
            #[cfg(feature = "dashboard")]
            dashboard: DashboardMount::Auto,
        }
    }

    /// Serve without `Mcp-Session-Id` sessions: every request stands alone.
    pub fn stateless(mut self) -> Self {
        self.stateful = false;
        self
    }

    /// Accept these `Host` header values (default: loopback names only, which protects
    /// local servers from DNS rebinding). Add your public host name when deploying.
    pub fn allowed_hosts(mut self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.allowed_hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Browser origins (`https://app.example.com`: scheme, host, optional port) allowed to
    /// call `/mcp`, besides loopback origins on a loopback listener. A request with any
    /// other `Origin` gets `403`; requests without one (non-browser clients) are not
    /// affected. [`serve`](Self::serve) and [`serve_on`](Self::serve_on) add the
    /// comma-separated `MCP_ALLOWED_ORIGINS`.
    pub fn allowed_origins(mut self, origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.allowed_origins
            .extend(origins.into_iter().map(Into::into));
        self
    }

    /// Attribute calls to the identity `resolver` finds on each HTTP request. With
    /// [`oauth`](Self::oauth) the resolver runs after the token check and sees its
    /// `Identity` in the request extensions (and may replace it).
    pub fn identity(mut self, resolver: impl IdentityResolver) -> Self {
        self.identity = Some(Arc::new(resolver));
        self
    }

    /// Require an OAuth access token on `/mcp` (401 with `WWW-Authenticate` otherwise) and
    /// attribute calls to its subject; publishes the protected-resource metadata at
    /// `/.well-known/oauth-protected-resource[/mcp]`. [`serve`](Self::serve) and
    /// [`serve_on`](Self::serve_on) turn this on from `MCP_OAUTH_*` variables when not
    /// called (see [`oauth_from_env`](Self::oauth_from_env)).
    #[cfg(feature = "oauth")]
    pub fn oauth(mut self, config: crate::OAuthConfig) -> Self {
        self.oauth = Some(Arc::new(crate::identity::OAuth::new(config)));
        self
    }

    /// Turns OAuth on from the `MCP_OAUTH_*` variables unless [`oauth`](Self::oauth) was
    /// called, and checks that it can run: a bad or partial setting is an error, never an
    /// open `/mcp`. Call it before [`router`](Self::router), which reads no variables.
    #[cfg(feature = "oauth")]
    pub fn oauth_from_env(mut self) -> Result<Self, Error> {
        if self.oauth.is_none()
            && let Some(config) = crate::OAuthConfig::from_env()?
        {
            self = self.oauth(config);
        }
        if let Some(oauth) = &self.oauth {
            oauth.check()?;
        }
        Ok(self)
    }

    /// Require `Authorization: Bearer <key>` on `/mcp` (401 otherwise), the way the dashboard
    /// requires `MCP_ANALYTICS_API_KEY`. Not together with OAuth: both read the same header.
    #[cfg(feature = "dashboard")]
    pub fn api_key(mut self, key: impl AsRef<str>) -> Self {
        self.api_key = Some(Arc::new(crate::dashboard::auth::Auth::new(Some(
            key.as_ref(),
        ))));
        self
    }

    /// Requires `MCP_ANALYTICS_API_KEY` on `/mcp` when it is set (in the process environment,
    /// `.dev.vars` or `.env`).
    #[cfg(feature = "dashboard")]
    pub fn api_key_from_env(self) -> Result<Self, Error> {
        let lookup = crate::env::lookup()?;
        Ok(
            match lookup(crate::dashboard::API_KEY_VAR).filter(|key| !key.is_empty()) {
                Some(key) => self.api_key(key),
                None => self,
            },
        )
    }

    /// `/mcp` serves private data: [`serve`](Self::serve) refuses a non-loopback address
    /// unless an [API key](Self::api_key) or [OAuth](Self::oauth) protects it, as the
    /// dashboard does.
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    /// Whether an API key or OAuth protects `/mcp`; an error when both would (a request
    /// carries one bearer token).
    fn is_protected(&self) -> Result<bool, Error> {
        #[cfg(feature = "dashboard")]
        let key = self.api_key.is_some();
        #[cfg(not(feature = "dashboard"))]
        let key = false;
        #[cfg(feature = "oauth")]
        let oauth = self.oauth.is_some();
        #[cfg(not(feature = "oauth"))]
        let oauth = false;
        if key && oauth {
            return Err(Error::Serve {
                context: "both an API key and OAuth would protect /mcp".into(),
                source: "a request carries one bearer token: unset MCP_ANALYTICS_API_KEY or the MCP_OAUTH_* variables".into(),
            });
        }
        Ok(key || oauth)
    }

    /// Serve this dashboard at `/analytics` (by default the server's own database is shown,
    /// protected by `MCP_ANALYTICS_API_KEY` when set).
    #[cfg(feature = "dashboard")]
    pub fn dashboard(mut self, dashboard: crate::dashboard::Dashboard) -> Self {
        self.dashboard = DashboardMount::With(dashboard);
        self
    }

    /// Do not serve a dashboard.
    #[cfg(feature = "dashboard")]
    pub fn without_dashboard(mut self) -> Self {
        self.dashboard = DashboardMount::Off;
        self
    }

    /// The axum router serving MCP at `/mcp` (with OAuth when [`oauth`](Self::oauth) or
    /// [`oauth_from_env`](Self::oauth_from_env) was called; this reads no variables).
    ///
    /// Browser requests (with an `Origin`) must come from an
    /// [allowed origin](Self::allowed_origins), or from a loopback origin while only
    /// loopback host names are allowed; [`serve`](Self::serve) and
    /// [`serve_on`](Self::serve_on) decide the latter by the listener's address.
    pub fn router(&self) -> axum::Router {
        let loopback_only = self
            .allowed_hosts
            .iter()
            .all(|host| crate::guard::LOOPBACK_HOSTS.contains(&host.as_str()));
        self.mcp_router(loopback_only)
    }

    /// The MCP router; `loopback_origins` lets loopback browser origins in.
    fn mcp_router(&self, loopback_origins: bool) -> axum::Router {
        let factory = self.factory.clone();
        let config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(self.allowed_hosts.clone())
            .with_legacy_session_mode(self.stateful)
            .with_json_response(!self.stateful)
            .with_cancellation_token(self.shutdown.child_token());
        let body_limit = config.max_request_body_bytes;
        let factory = move || Ok(factory());
        // With OAuth, sessions are bound to the users who open them.
        #[cfg(feature = "oauth")]
        let sessions = match &self.oauth {
            Some(oauth) => oauth.sessions(),
            None => Arc::new(Sessions::new(usize::MAX)),
        };
        #[cfg(not(feature = "oauth"))]
        let sessions = Arc::new(Sessions::new(usize::MAX));
        let mcp = nest_mcp(factory, sessions, config);
        // Layers run outside in: origin check, OAuth, identity, JSON-RPC errors, rmcp.
        let mut router = mcp.layer(axum::middleware::from_fn(move |request, next| {
            super::parse_errors::json_rpc_errors(body_limit, request, next)
        }));
        if let Some(resolver) = self.identity.clone() {
            router = router.layer(axum::middleware::map_request(
                move |request: axum::extract::Request| {
                    let resolver = resolver.clone();
                    async move {
                        let (mut parts, body) = request.into_parts();
                        if let Some(identity) = resolver.resolve(&parts) {
                            parts.extensions.insert(identity);
                        }
                        axum::extract::Request::from_parts(parts, body)
                    }
                },
            ));
        }
        #[cfg(feature = "oauth")]
        if let Some(oauth) = self.oauth.clone() {
            router = router.layer(axum::middleware::from_fn_with_state(
                oauth,
                crate::identity::require_bearer,
            ));
        }
        #[cfg(feature = "dashboard")]
        if let Some(auth) = self.api_key.clone() {
            router = router.layer(axum::middleware::from_fn_with_state(auth, require_key));
        }
        let router = crate::guard::mcp_origins(router, &self.allowed_origins, loopback_origins);
        // Layers wrap only the routes added before them: the metadata stays public.
        #[cfg(feature = "oauth")]
        if let Some(oauth) = self.oauth.clone() {
            return router.merge(oauth.metadata_router());
        }
        router
    }

    /// Binds `addr`, prints where MCP and analytics are, and serves until Ctrl-C/SIGTERM.
    pub async fn serve(self, addr: SocketAddr) -> Result<(), Error> {
        #[cfg(feature = "oauth")]
        let this = self.oauth_from_env()?;
        #[cfg(not(feature = "oauth"))]
        let this = self;
        this.serve_checked(addr).await
    }

    async fn serve_checked(mut self, addr: SocketAddr) -> Result<(), Error> {
        #[cfg(feature = "oauth")]
        if let Some(oauth) = &self.oauth {
            eprintln!(
                "OAuth: /mcp requires access tokens from {}",
                oauth.config().issuer()
            );
        }
        let analytics = super::startup_analytics(&(self.factory)())?;
        self.payments = super::startup_payments(&(self.factory)()).await?;
        if let Some(payments) = &self.payments {
            payments.check_listener(addr)?;
        }
        let keyless = self.private && !self.is_protected()?;
        let listener = crate::listen::bind(addr, "MCP", keyless).await?;
        let local = listener.local_addr().unwrap_or(addr);
        eprintln!(
            "{} {}: MCP at http://{local}/mcp; analytics: {}",
            S::INFO.name,
            S::INFO.version,
            analytics.description()
        );
        self.serve_configured(listener, super::shutdown_signal(), &analytics)
            .await
    }

    /// The MCP router plus, when there is one to show, the dashboard at `/analytics`, and
    /// the payment routes (`/stripe/webhook`, `/pay/{id}`) when the server has paid tools.
    fn app(&self, local: SocketAddr, analytics: &Analytics) -> Result<axum::Router, Error> {
        let mut router = self.mcp_router(local.ip().is_loopback());
        if let Some(payments) = &self.payments {
            payments.default_public_url(&format!("http://{local}"));
            router = router.merge(payments.router_for_hosts(&self.allowed_hosts));
        }
        #[cfg(feature = "dashboard")]
        {
            let dashboard = match &self.dashboard {
                DashboardMount::Off => None,
                DashboardMount::With(dashboard) => Some(dashboard.clone()),
                DashboardMount::Auto => match analytics.database() {
                    Some(database) => Some(crate::dashboard::Dashboard::from_env(database)?),
                    None => None,
                },
            };
            if let Some(dashboard) = dashboard {
                let dashboard = dashboard.allowed_hosts(self.allowed_hosts.clone());
                if local.ip().is_loopback() || dashboard.is_protected() {
                    eprintln!("dashboard at http://{local}/analytics");
                    let to_dashboard = axum::response::Redirect::permanent("/analytics");
                    return Ok(router.nest("/analytics", dashboard.router()).route(
                        "/analytics/",
                        axum::routing::get(move || async move { to_dashboard }),
                    ));
                }
                eprintln!(
                    "dashboard not served: set {} to serve it on {local}",
                    crate::dashboard::API_KEY_VAR
                );
            }
        }
        let _ = (local, analytics);
        Ok(router)
    }

    /// Serves on an already bound listener until `shutdown` resolves, then flushes
    /// `analytics` (tests use this with an ephemeral port).
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        analytics: &Analytics,
    ) -> Result<(), Error> {
        #[cfg(feature = "oauth")]
        let this = self.oauth_from_env()?;
        #[cfg(not(feature = "oauth"))]
        let this = self;
        this.serve_configured(listener, shutdown, analytics).await
    }

    async fn serve_configured(
        mut self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        analytics: &Analytics,
    ) -> Result<(), Error> {
        let stop = self.shutdown.clone();
        let local = listener.local_addr().map_err(|source| Error::Serve {
            context: "the listener has no address".into(),
            source: Box::new(source),
        })?;
        crate::server::record_catalog::<S>((self.factory)().analytics());
        if self.payments.is_none() {
            self.payments = super::startup_payments(&(self.factory)()).await?;
        }
        if let Some(payments) = &self.payments {
            payments.check_listener(local)?;
        }
        let lookup = crate::env::lookup()?;
        if let Some(origins) = lookup(crate::guard::ALLOWED_ORIGINS_VAR) {
            self.allowed_origins
                .extend(crate::guard::split_list(&origins));
        }
        crate::guard::check_origins(&self.allowed_origins)?;
        self.is_protected()?;
        let app = self.app(local, analytics)?;
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stop.cancel();
            })
            .await;
        analytics.shutdown().await;
        if let Some(payments) = &self.payments {
            payments.flush().await;
        }
        result.map_err(|source| Error::Serve {
            context: "HTTP server failed".into(),
            source: Box::new(source),
        })
    }
}

/// Middleware of `/mcp` with an API key: without the key as a bearer token, 401.
#[cfg(feature = "dashboard")]
async fn require_key(
    axum::extract::State(auth): axum::extract::State<Arc<crate::dashboard::auth::Auth>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if auth.allows_bearer(request.headers()) {
        next.run(request).await
    } else {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            "send `Authorization: Bearer <MCP_ANALYTICS_API_KEY>`",
        )
            .into_response()
    }
}
