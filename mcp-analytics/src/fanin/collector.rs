//! The collector: an ingest endpoint (`POST /ingest`) for the `export::HttpExporter`s on
//! many servers, storing their events in one database (a SQLite file, or PostgreSQL that several collectors
//! share; deduplicated by event id) and
//! serving the dashboard over it at `/`.
//!
//! Requests carry `Authorization: Bearer <MCP_ANALYTICS_API_KEY>` and a JSON body
//! `{"events": [ToolCallEvent or RequestEvent, …]}` (a `RequestEvent` is the one with a
//! `method`), optionally gzip-compressed (`Content-Encoding: gzip`). The
//! key is checked on the headers, before any of the body is read. Events are checked one by one:
//! the valid ones are stored (their client-chosen strings made [`ClientText`]
//! again, whatever the sending server did), the others are listed with the reason.
//! Answers: `200 {"accepted": n, "duplicates": m, "rejected": [{"index": i, "id": …, "reason":
//! …}]}`, `401` bad key, `413` too large (body, decompressed body or event count), `400` not a
//! batch at all (with the reason).

use std::{
    borrow::Cow,
    io::Read,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::value::RawValue;

pub use super::wire::{
    Batch, INGEST_PATH, Ingested, MAX_BODY_BYTES, MAX_DECODED_BYTES, MAX_EVENTS, Rejected,
};
use crate::{
    ClientText, Error, RequestEvent, ToolCallEvent,
    client_text::{clean_event, clean_request},
    dashboard::{Dashboard, auth::Auth, store::Store},
};

/// The longest event id accepted, in bytes (servers send UUIDs).
const MAX_ID_BYTES: usize = 64;

/// The latest `ts_ms` accepted (9999-12-31T23:59:59.999Z); the earliest is 0 (1970). Outside
/// that no clock produced the event, and the rollups' time arithmetic would overflow.
pub const MAX_TS_MS: i64 = 253_402_300_799_999;

/// An ingest server over one analytics database (with the same database and key as its dashboard).
#[derive(Clone, Debug)]
pub struct Collector {
    dashboard: Dashboard,
    /// The pause that ends a sessionless caller's session in the collected calls.
    session_idle: std::time::Duration,
}

struct Ingest {
    store: Mutex<Store>,
    auth: Auth,
}

impl Collector {
    /// A collector storing into `database`, without a key.
    pub fn new(database: impl Into<crate::Database>) -> Self {
        Self {
            dashboard: Dashboard::new(database),
            session_idle: crate::Config::DEFAULT_SESSION_IDLE,
        }
    }

    /// A collector for `database` protected by `MCP_ANALYTICS_API_KEY` when that is set, with
    /// `MCP_ANALYTICS_SESSION_IDLE` (in the process environment, `.dev.vars` or `.env`).
    pub fn from_env(database: impl Into<crate::Database>) -> Result<Self, Error> {
        Ok(Self {
            dashboard: Dashboard::from_env(database)?,
            session_idle: crate::Config::session_idle(crate::env::lookup()?)?,
        })
    }

    /// How long a sessionless caller may pause before its next call starts a new session
    /// (default [`Config::DEFAULT_SESSION_IDLE`](crate::Config::DEFAULT_SESSION_IDLE)).
    pub fn session_idle(self, idle: std::time::Duration) -> Self {
        Self {
            session_idle: idle,
            ..self
        }
    }

    /// Also answer to these `Host` values when no key protects the collector (default:
    /// loopback names only, against DNS rebinding).
    pub fn allowed_hosts(self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            dashboard: self.dashboard.allowed_hosts(hosts),
            ..self
        }
    }

    /// Requires this key (for ingest and the dashboard).
    pub fn api_key(self, key: Option<String>) -> Self {
        Self {
            dashboard: self.dashboard.api_key(key),
            ..self
        }
    }

    /// `POST /ingest`, and the dashboard at `/`.
    pub fn router(&self) -> Result<Router, Error> {
        let mut store = Store::open(self.dashboard.database())?;
        store.set_session_idle(self.session_idle);
        let ingest = Arc::new(Ingest {
            store: Mutex::new(store),
            auth: Auth::new(self.dashboard.key()),
        });
        let dashboard = self.dashboard.router();
        let ingest = Router::new()
            .route(INGEST_PATH, post(ingest_batch))
            // Runs before the handler's body extractor: a request without the key costs no read.
            .route_layer(middleware::from_fn_with_state(ingest.clone(), require_key))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(ingest);
        let hosts = self.dashboard.keyless_hosts();
        Ok(crate::guard::browser(ingest, hosts.as_deref()).merge(dashboard))
    }

    /// Serves at `addr` until Ctrl-C or SIGTERM; refuses a non-loopback address without a key.
    pub async fn serve(self, addr: SocketAddr) -> Result<(), Error> {
        let listener =
            crate::listen::bind(addr, "the collector", !self.dashboard.is_protected()).await?;
        let local = listener.local_addr().unwrap_or(addr);
        eprintln!(
            "mcp-analytics collector: ingest at http://{local}{INGEST_PATH}, dashboard at http://{local}/ ({})",
            self.dashboard.database()
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
        crate::listen::run(listener, self.router()?, shutdown, "the collector").await
    }
}

/// Refuses a request without the key from its headers alone.
async fn require_key(State(ingest): State<Arc<Ingest>>, request: Request, next: Next) -> Response {
    if !ingest.auth.allows_bearer(request.headers()) {
        return (
            StatusCode::UNAUTHORIZED,
            "send `Authorization: Bearer <MCP_ANALYTICS_API_KEY>`",
        )
            .into_response();
    }
    next.run(request).await
}

async fn ingest_batch(
    State(ingest): State<Arc<Ingest>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = match decode(&headers, &body) {
        Ok(json) => json,
        Err(refusal) => return refusal.into_response(),
    };
    let (read, rejected) = match read_batch(&json) {
        Ok(read) => read,
        Err(refusal) => return refusal.into_response(),
    };
    drop(json);
    let result = tokio::task::spawn_blocking(move || {
        let mut store = ingest
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let accepted = store.append(&read.calls)? + store.append_requests(&read.requests)?;
        Ok::<_, crate::dashboard::store::QueryError>(Ingested {
            accepted,
            duplicates: read.calls.len() + read.requests.len() - accepted,
            rejected,
        })
    })
    .await;
    match result {
        Ok(Ok(ingested)) => Json(ingested).into_response(),
        Ok(Err(error)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storing failed: {error}"),
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// A refused request: its status and why.
type Refusal = (StatusCode, String);

/// The JSON text of the body, gunzipped when it says so (up to [`MAX_DECODED_BYTES`]).
fn decode<'a>(headers: &HeaderMap, body: &'a Bytes) -> Result<Cow<'a, [u8]>, Refusal> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if !gzip {
        return Ok(Cow::Borrowed(&body[..]));
    }
    let mut decoded = Vec::new();
    let mut reader = flate2::read::GzDecoder::new(&body[..]).take(MAX_DECODED_BYTES as u64 + 1);
    if let Err(error) = reader.read_to_end(&mut decoded) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("invalid gzip body: {error}"),
        ));
    }
    if decoded.len() > MAX_DECODED_BYTES {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "the decompressed body is too large".into(),
        ));
    }
    Ok(Cow::Owned(decoded))
}

/// The valid events of a batch, cleaned: tool calls and other requests.
#[derive(Default)]
struct Valid {
    calls: Vec<ToolCallEvent>,
    requests: Vec<RequestEvent>,
}

/// Reads `{"events": [...]}` event by event: the valid events (cleaned) and the refused ones.
/// Only a body that is not such an object at all, or holds more than [`MAX_EVENTS`], is refused
/// as a whole.
fn read_batch(json: &[u8]) -> Result<(Valid, Vec<Rejected>), Refusal> {
    let batch: Batch<&RawValue> = serde_json::from_slice(json).map_err(|error| {
        (
            StatusCode::BAD_REQUEST,
            format!("expected {{\"events\": [...]}}: {error}"),
        )
    })?;
    if batch.events.len() > MAX_EVENTS {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_EVENTS} events per request"),
        ));
    }
    let mut read = Valid::default();
    let mut rejected = Vec::new();
    for (index, raw) in batch.events.into_iter().enumerate() {
        let problem = match read_event(raw) {
            Ok(Incoming::Call(event)) => {
                read.calls.push(event);
                continue;
            }
            Ok(Incoming::Request(request)) => {
                read.requests.push(request);
                continue;
            }
            Err(problem) => problem,
        };
        let (id, problem) = problem;
        rejected.push(Rejected {
            index,
            id,
            reason: ClientText::from_string(problem.to_string()).into_string(),
        });
    }
    Ok((read, rejected))
}

/// One valid event of a batch.
enum Incoming {
    Call(ToolCallEvent),
    Request(RequestEvent),
}

/// One event, checked and cleaned; else its id (if readable) and what is wrong with it.
fn read_event(raw: &RawValue) -> Result<Incoming, (Option<String>, EventProblem)> {
    /// Whether an event has a `method`: a request other than `tools/call`.
    #[derive(serde::Deserialize)]
    struct Kind {
        method: Option<serde::de::IgnoredAny>,
    }
    let is_request =
        serde_json::from_str::<Kind>(raw.get()).is_ok_and(|kind| kind.method.is_some());
    if is_request {
        let mut request: RequestEvent = serde_json::from_str(raw.get())
            .map_err(|error| (id_of(raw), EventProblem::NotAnEvent(error)))?;
        check_id(&request.id)?;
        clean_request(&mut request);
        return match problem(&request.server_name, request.ts_ms) {
            Some(problem) => Err((Some(request.id), problem)),
            None => Ok(Incoming::Request(request)),
        };
    }
    let mut event: ToolCallEvent = serde_json::from_str(raw.get())
        .map_err(|error| (id_of(raw), EventProblem::NotAnEvent(error)))?;
    check_id(&event.id)?;
    clean_event(&mut event);
    let problem = if event.tool.is_empty() {
        Some(EventProblem::EmptyTool)
    } else {
        problem(&event.server_name, event.ts_ms)
    };
    match problem {
        Some(problem) => Err((Some(event.id), problem)),
        None => Ok(Incoming::Call(event)),
    }
}

/// An id the store can key on: 1 to [`MAX_ID_BYTES`] bytes without control characters.
fn check_id(id: &str) -> Result<(), (Option<String>, EventProblem)> {
    if id.is_empty() || id.len() > MAX_ID_BYTES || ClientText::new(id).as_str() != id {
        return Err((Some(ClientText::new(id).into_string()), EventProblem::BadId));
    }
    Ok(())
}

/// What is wrong with the fields every event has, if anything.
fn problem(server_name: &str, ts_ms: i64) -> Option<EventProblem> {
    if server_name.is_empty() {
        Some(EventProblem::EmptyServerName)
    } else if !(0..=MAX_TS_MS).contains(&ts_ms) {
        Some(EventProblem::TimestampOutOfRange)
    } else {
        None
    }
}

/// Why one event of a batch is refused (the answer's `reason`).
#[derive(Debug, thiserror::Error)]
enum EventProblem {
    #[error("not a tool call or request event: {0}")]
    NotAnEvent(serde_json::Error),
    #[error("`id` must be 1 to {MAX_ID_BYTES} bytes without control characters")]
    BadId,
    #[error("`tool` is empty")]
    EmptyTool,
    #[error("`server_name` is empty")]
    EmptyServerName,
    #[error("`ts_ms` must be Unix milliseconds from 1970 to 9999")]
    TimestampOutOfRange,
}

/// The `id` of something that is not a valid event, when it has a string one.
fn id_of(raw: &RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: Option<Cow<'a, str>>,
    }
    let id = serde_json::from_str::<Id<'_>>(raw.get()).ok()?.id?;
    Some(ClientText::new(&id).into_string())
}
