//! [`RawRequest`]: a finished request other than `tools/call` as the call path hands it over
//! (nothing formatted, nothing sanitized yet), and its conversion into the stored
//! [`RequestEvent`] on the writer thread.

use std::{borrow::Cow, sync::Arc, time::Duration};

use rmcp::{Peer, RoleServer, model::InitializeRequestParams};
use serde_json::Value;

use super::raw::Caller;
use crate::{
    Sanitizer,
    capture::{Capture, connection_session},
    client_text::client_string,
    clock::Stopwatch,
    event::{Method, RequestEvent, RequestStatus},
    spec::ServerInfo,
};

/// A finished request before sanitization: what the call path hands to the queue.
pub(crate) struct RawRequest {
    pub(super) ts_ms: i64,
    server: &'static ServerInfo,
    method: Method,
    target: Option<String>,
    /// The capabilities the client declared (`initialize`, `server/discover`), as sent.
    capabilities: Option<Value>,
    capture: Capture,
    duration: Duration,
    status: RequestStatus,
    /// `(error_type, error_message)`.
    error: Option<(Cow<'static, str>, String)>,
    /// An `initialize` whose connection's session is not known yet.
    settling: Option<Settling>,
}

/// An `initialize` on a byte stream. A connection's session is keyed by the handshake record
/// rmcp keeps for it, which rmcp replaces with the negotiated one right after the answer: the
/// writer holds the record until the `provisional` handshake is replaced (briefly, at most
/// [`SETTLE_LIMIT`]), then takes the session from the connection's lasting one.
struct Settling {
    peer: Peer<RoleServer>,
    provisional: Arc<InitializeRequestParams>,
    since: Stopwatch,
}

/// The longest the writer holds an `initialize` for its connection's lasting handshake (one
/// whose server stores none — not served by rmcp's `serve` — keeps the provisional one).
const SETTLE_LIMIT: Duration = Duration::from_secs(1);

impl RawRequest {
    /// A `method` request about `target` on the server described by `server`.
    pub(crate) fn new(
        server: &'static ServerInfo,
        method: Method,
        target: Option<String>,
        capabilities: Option<Value>,
        capture: Capture,
    ) -> Box<Self> {
        Box::new(RawRequest {
            ts_ms: (capture.started_ns / 1_000_000) as i64,
            server,
            method,
            target,
            capabilities,
            capture,
            duration: Duration::ZERO,
            status: RequestStatus::Ok,
            error: None,
            settling: None,
        })
    }

    /// An `initialize` on a byte stream that `peer` answered, its handshake stored there as
    /// `provisional`: its session is the one the connection's lasting handshake gives.
    pub(crate) fn settle_session(
        &mut self,
        peer: Peer<RoleServer>,
        provisional: Arc<InitializeRequestParams>,
    ) {
        self.settling = Some(Settling {
            peer,
            provisional,
            since: Stopwatch::start(),
        });
    }

    /// Whether the record is final (its session known), making it so when the connection's
    /// handshake has been replaced, when it has waited long enough, or `now`.
    pub(super) fn settled(&mut self, now: bool) -> bool {
        let Some(settling) = &self.settling else {
            return true;
        };
        let current = settling.peer.peer_info();
        let replaced = current
            .as_ref()
            .is_some_and(|handshake| !Arc::ptr_eq(handshake, &settling.provisional));
        if !(replaced || now || settling.since.elapsed() >= SETTLE_LIMIT) {
            return false;
        }
        if let Some(handshake) = current {
            self.capture.session = Some(connection_session(&handshake));
        }
        self.settling = None;
        true
    }

    /// Fills in how the request ended.
    pub(crate) fn complete(
        &mut self,
        duration: Duration,
        status: RequestStatus,
        error: Option<(Cow<'static, str>, String)>,
    ) {
        self.duration = duration;
        self.status = status;
        self.error = error;
    }

    /// The stored form: ids formatted, client-chosen strings made `ClientText`, the target,
    /// capabilities and error text sanitized.
    pub(super) fn into_event(self, id: String, sanitizer: &Sanitizer) -> RequestEvent {
        let (error_type, error_message) = match self.error {
            Some((kind, message)) => (
                Some(client_string(kind.into_owned())),
                (!message.is_empty()).then(|| sanitizer.text(&message)),
            ),
            None => (None, None),
        };
        let caller = Caller::from(self.capture, sanitizer);
        RequestEvent {
            id,
            ts_ms: self.ts_ms,
            server_name: self.server.name.to_owned(),
            server_version: self.server.version.to_owned(),
            method: self.method,
            // A URI can carry ids and keys: redacted like text, then capped like any
            // client-chosen string.
            target: self
                .target
                .map(|target| client_string(sanitizer.text(&target))),
            user_id: caller.user_id,
            session_id: caller.session_id,
            client_name: caller.client_name,
            client_version: caller.client_version,
            protocol_version: caller.protocol_version,
            transport: caller.transport,
            request_id: caller.request_id,
            duration_us: u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX),
            status: self.status,
            error_type,
            error_message,
            client_capabilities: self
                .capabilities
                .map(|capabilities| sanitizer.json_text(&capabilities, &[])),
            ts_ns: Some(caller.ts_ns),
            traceparent: caller.traceparent,
            tracestate: caller.tracestate,
        }
    }
}
