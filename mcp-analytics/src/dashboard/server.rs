//! The dashboard as an axum router: the page (or the sign-in form) at `/`, the JSON API under
//! `/api/`, over a SQLite or PostgreSQL store.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Query, State as Extract},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use serde::Serialize;

use super::{
    API_KEY_VAR,
    api::{self, ROW_LIMIT},
    auth::{self, SignIn},
    store::{QueryError, Store},
};
use crate::{Database, Error, clock::now_ms, store::SessionTimeline};

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
            .route("/overview", get(overview))
            .route("/errors", get(errors))
            .route("/payments", get(payments))
            .route("/session", get(session))
            .route("/alerts", get(alerts))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                require_key,
            ));
        let router = Router::new()
            .route("/", get(page).post(sign_in))
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

/// `GET /`: the page, or the sign-in form.
async fn page(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    if state.auth.allows(&headers) {
        Html(super::page_html()).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Html(auth::sign_in_form(auth::NO_MESSAGE)),
        )
            .into_response()
    }
}

/// `POST /` with `key=...`: sets the session cookie and shows the page.
async fn sign_in(Extract(state): Extract<Arc<State>>, body: Bytes) -> Response {
    match state.auth.sign_in(&body) {
        SignIn::Accepted { set_cookie } => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, set_cookie),
                (header::LOCATION, ".".to_owned()),
            ],
        )
            .into_response(),
        SignIn::Open => (StatusCode::SEE_OTHER, [(header::LOCATION, ".")]).into_response(),
        SignIn::Refused => (
            StatusCode::UNAUTHORIZED,
            Html(auth::sign_in_form(auth::WRONG_KEY)),
        )
            .into_response(),
    }
}

async fn overview(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let range = api::range(&query);
    let server = api::server(&query);
    let until_ms = now_ms();
    let result = state
        .query(move |store| {
            let overview = store.overview(range.since_ms, range.bucket_ms, server.as_deref())?;
            Ok(api::OverviewView::new(overview, range, until_ms))
        })
        .await;
    respond(result)
}

async fn errors(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let since_ms = api::range(&query).since_ms;
    let server = api::server(&query);
    respond(
        state
            .query(move |store| store.recent_errors(since_ms, ROW_LIMIT, server.as_deref()))
            .await,
    )
}

/// Revenue by tool and user, conversion, active subscriptions and failures.
async fn payments(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let since_ms = api::range(&query).since_ms;
    respond(state.query(move |store| store.payments(since_ms)).await)
}

/// The alerts firing, then those resolved within the range.
async fn alerts(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let since_ms = api::range(&query).since_ms;
    respond(state.query(move |store| store.alerts(since_ms)).await)
}

async fn session(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = query.get("id").cloned() else {
        return (StatusCode::BAD_REQUEST, api::SESSION_ID_EXPECTED).into_response();
    };
    let result: Result<SessionTimeline, QueryError> = state
        .query(move |store| store.session(&id, ROW_LIMIT))
        .await;
    respond(result)
}

fn respond<T: Serialize>(result: Result<T, QueryError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

/// Middleware for every API route: without the key, 401.
async fn require_key(
    Extract(state): Extract<Arc<State>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.auth.allows(request.headers()) {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, auth::SIGN_IN_HINT).into_response()
    }
}
