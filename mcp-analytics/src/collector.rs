//! The collector: an ingest endpoint (`POST /ingest`) for the `export::HttpExporter`s on
//! many servers, storing their events in one SQLite database (deduplicated by event id) and
//! serving the dashboard over it at `/`.
//!
//! Requests carry `Authorization: Bearer <MCP_ANALYTICS_API_KEY>` and a JSON body
//! `{"events": [ToolCallEvent, …]}`, optionally gzip-compressed (`Content-Encoding: gzip`).
//! Answers: `200 {"accepted": n, "duplicates": m}`, `401` bad key, `413` too large, `400`
//! malformed (with the reason).

use std::{
    io::Read,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde::{Deserialize, Serialize};

pub use crate::wire::{Batch, INGEST_PATH};
use crate::{
    Error,
    dashboard::{Dashboard, auth::Auth},
    store::SqliteStore,
};

/// The largest request body accepted (compressed).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The largest body accepted after decompression.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// The most events one request may carry.
pub const MAX_EVENTS: usize = 50_000;

/// The latest `ts_ms` accepted (9999-12-31T23:59:59.999Z); the earliest is 0 (1970). Outside
/// that no clock produced the event, and the rollups' time arithmetic would overflow.
pub const MAX_TS_MS: i64 = 253_402_300_799_999;

/// What the collector answers to an accepted batch.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ingested {
    /// Events stored.
    pub accepted: usize,
    /// Events already stored before (a retried delivery).
    pub duplicates: usize,
}

/// An ingest server over one SQLite database (with the same database and key as its dashboard).
#[derive(Clone, Debug)]
pub struct Collector {
    dashboard: Dashboard,
}

struct Ingest {
    store: Mutex<SqliteStore>,
    auth: Auth,
}

impl Collector {
    /// A collector storing into `database`, without a key.
    pub fn new(database: impl Into<PathBuf>) -> Self {
        Self {
            dashboard: Dashboard::new(database),
        }
    }

    /// A collector for `database` protected by `MCP_ANALYTICS_API_KEY` when that is set.
    pub fn from_env(database: impl Into<PathBuf>) -> Self {
        Self {
            dashboard: Dashboard::from_env(database),
        }
    }

    /// Requires this key (for ingest and the dashboard).
    pub fn api_key(self, key: Option<String>) -> Self {
        Self {
            dashboard: self.dashboard.api_key(key),
        }
    }

    /// `POST /ingest`, and the dashboard at `/`.
    pub fn router(&self) -> Result<Router, Error> {
        let ingest = Arc::new(Ingest {
            store: Mutex::new(SqliteStore::open(self.dashboard.database())?),
            auth: Auth::new(self.dashboard.key()),
        });
        let dashboard = self.dashboard.router();
        let ingest = Router::new()
            .route(INGEST_PATH, post(ingest_batch))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(ingest);
        Ok(ingest.merge(dashboard))
    }

    /// Serves at `addr` until Ctrl-C or SIGTERM; refuses a non-loopback address without a key.
    pub async fn serve(self, addr: SocketAddr) -> Result<(), Error> {
        let listener =
            crate::serve::bind(addr, "the collector", !self.dashboard.is_protected()).await?;
        let local = listener.local_addr().unwrap_or(addr);
        eprintln!(
            "mcp-analytics collector: ingest at http://{local}{INGEST_PATH}, dashboard at http://{local}/ ({})",
            self.dashboard.database().display()
        );
        self.serve_on(listener, crate::serve::shutdown_signal())
            .await
    }

    /// Serves on an already bound listener until `shutdown` resolves.
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        crate::serve::run(listener, self.router()?, shutdown, "the collector").await
    }
}

async fn ingest_batch(
    State(ingest): State<Arc<Ingest>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !ingest.auth.allows_bearer(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            "send `Authorization: Bearer <MCP_ANALYTICS_API_KEY>`",
        )
            .into_response();
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let json = if gzip {
        let mut decoded = Vec::new();
        let mut reader = flate2::read::GzDecoder::new(&body[..]).take(MAX_DECODED_BYTES as u64 + 1);
        if let Err(error) = reader.read_to_end(&mut decoded) {
            return (
                StatusCode::BAD_REQUEST,
                format!("invalid gzip body: {error}"),
            )
                .into_response();
        }
        if decoded.len() > MAX_DECODED_BYTES {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the decompressed body is too large",
            )
                .into_response();
        }
        decoded
    } else {
        body.to_vec()
    };
    let batch: Batch = match serde_json::from_slice(&json) {
        Ok(batch) => batch,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"events\": [...]}}: {error}"),
            )
                .into_response();
        }
    };
    if let Err(problem) = validate(&batch) {
        return (StatusCode::BAD_REQUEST, problem).into_response();
    }
    let result = tokio::task::spawn_blocking(move || {
        let mut store = ingest
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        store.append(&batch.events).map(|accepted| Ingested {
            accepted,
            duplicates: batch.events.len() - accepted,
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

fn validate(batch: &Batch) -> Result<(), String> {
    if batch.events.len() > MAX_EVENTS {
        return Err(format!("at most {MAX_EVENTS} events per request"));
    }
    for (index, event) in batch.events.iter().enumerate() {
        let problem = if event.id.is_empty() || event.id.len() > 64 {
            "`id` must be 1 to 64 characters"
        } else if event.tool.is_empty() {
            "`tool` is empty"
        } else if event.server_name.is_empty() {
            "`server_name` is empty"
        } else if !(0..=MAX_TS_MS).contains(&event.ts_ms) {
            "`ts_ms` must be Unix milliseconds from 1970 to 9999"
        } else {
            continue;
        };
        return Err(format!("event {index}: {problem}"));
    }
    Ok(())
}
