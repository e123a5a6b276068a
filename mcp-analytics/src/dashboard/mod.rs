//! The web dashboard: one page (uPlot inlined, no build step) and a small JSON API over the
//! analytics store (SQLite, or PostgreSQL with the `postgres` feature), as an axum router to
//! serve alone (`mcp-analytics dashboard`) or to nest next to `/mcp` at `/analytics`. With an API key set, the page and the API need it (bearer header, or
//! the login form's cookie); a dashboard on a non-loopback address always needs one. Without a
//! key, requests must name a loopback or allowed `Host` (DNS rebinding); the sign-in form
//! refuses cross-origin posts.

mod alerts;
mod api;
pub(crate) mod auth;
pub(crate) mod store;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
};

use axum::{Router, routing::get};

use crate::{Database, Error};
use store::{QueryError, Store};

/// The variable holding the key that protects the dashboard (and, later, the ingest endpoint).
pub const API_KEY_VAR: &str = "MCP_ANALYTICS_API_KEY";

/// A dashboard over one analytics database (a SQLite file or, with the `postgres` feature, a
/// PostgreSQL database).
#[derive(Clone, Debug)]
pub struct Dashboard {
    database: Database,
    api_key: Option<String>,
    /// `Host` values accepted besides loopback names when no key protects the dashboard.
    allowed_hosts: Vec<String>,
}

impl Dashboard {
    /// A dashboard for `database` (the server's `MCP_ANALYTICS_DB`), without an API key.
    pub fn new(database: impl Into<Database>) -> Self {
        Self {
            database: database.into(),
            api_key: None,
            allowed_hosts: Vec::new(),
        }
    }

    /// A dashboard for `database` protected by `MCP_ANALYTICS_API_KEY` when that is set (in
    /// the process environment, `.dev.vars` or `.env`, like every other setting).
    pub fn from_env(database: impl Into<Database>) -> Result<Self, Error> {
        let lookup = crate::env::lookup()?;
        Ok(Self::new(database).api_key(lookup(API_KEY_VAR).filter(|key| !key.is_empty())))
    }

    /// Requires this key (or no key with `None`).
    pub fn api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key;
        self
    }

    /// Also answer to these `Host` values (`name` or `name:port`) when no key protects the
    /// dashboard (default: loopback names only, against DNS rebinding).
    pub fn allowed_hosts(mut self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.allowed_hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// The `Host` values accepted without a key; `None` when a key protects the dashboard.
    pub(crate) fn keyless_hosts(&self) -> Option<Vec<String>> {
        self.api_key.is_none().then(|| {
            crate::guard::LOOPBACK_HOSTS
                .iter()
                .map(|host| (*host).to_owned())
                .chain(self.allowed_hosts.iter().cloned())
                .collect()
        })
    }

    /// The database shown.
    pub fn database(&self) -> &Database {
        &self.database
    }

    pub(crate) fn key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    /// Whether a key protects this dashboard.
    pub fn is_protected(&self) -> bool {
        self.api_key.is_some()
    }

    /// The router: the page at `/`, the API under `/api/`. Nest it anywhere.
    pub fn router(&self) -> Router {
        let state = Arc::new(State {
            database: self.database.clone(),
            store: Mutex::new(None),
            auth: auth::Auth::new(self.api_key.as_deref()),
        });
        let api = Router::new()
            .route("/overview", get(api::overview))
            .route("/errors", get(api::errors))
            .route("/payments", get(api::payments))
            .route("/session", get(api::session))
            .route("/alerts", get(api::alerts))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                api::require_key,
            ));
        let router = Router::new()
            .route("/", get(auth::page).post(auth::login))
            .nest("/api", api)
            .with_state(state);
        crate::guard::browser(router, self.keyless_hosts().as_deref())
    }

    /// Serves the dashboard alone at `http://{addr}/` until Ctrl-C or SIGTERM. Refuses a
    /// non-loopback address without an API key.
    pub async fn serve(self, addr: SocketAddr) -> Result<(), Error> {
        let listener = crate::listen::bind(addr, "the dashboard", self.api_key.is_none()).await?;
        let local = listener.local_addr().unwrap_or(addr);
        eprintln!(
            "mcp-analytics dashboard for {} at http://{local}/",
            self.database
        );
        self.serve_on(listener, crate::listen::shutdown_signal())
            .await
    }

    /// Serves on an already bound listener until `shutdown` resolves.
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        crate::listen::run(listener, self.router(), shutdown, "the dashboard").await
    }
}

/// What every request handler shares.
struct State {
    database: Database,
    /// Opened on first use, so the dashboard can start before the server creates the file;
    /// opened again after a PostgreSQL connection broke.
    store: Mutex<Option<Store>>,
    auth: auth::Auth,
}

impl State {
    /// Runs `query` against the store on a blocking thread.
    async fn query<T: Send + 'static>(
        self: &Arc<Self>,
        query: impl FnOnce(&Store) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = state
                .store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if store.as_ref().is_none_or(Store::is_broken) {
                *store = Some(Store::open_existing(&state.database)?);
            }
            query(store.as_ref().expect("opened above"))
        })
        .await?
    }
}

/// The page with uPlot and the app inlined (built once).
fn page_html() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| {
        include_str!("assets/index.html")
            .replace("/*UPLOT_CSS*/", include_str!("assets/uPlot.min.css"))
            .replace("/*UPLOT_JS*/", include_str!("assets/uPlot.iife.min.js"))
            .replace("/*APP_JS*/", include_str!("assets/app.js"))
    })
}
