//! Reads who and where a call comes from out of rmcp's `RequestContext`: transport, session (or
//! a derived correlation id), user, client, protocol version and request id. The call path only
//! copies pointers and small values; names and ids are formatted on the recorder's thread. Every
//! client-chosen string is stored as a [`ClientText`] (capped, no control characters): the session
//! header here, as it is copied, the rest where it is formatted (`analytics::raw`).

use std::{
    fmt,
    sync::{Arc, OnceLock},
};

use rmcp::{
    RoleServer,
    model::{Implementation, InitializeRequestParams, ProtocolVersion, RequestId},
    service::RequestContext,
};
use sha2::{Digest, Sha256};

use crate::{ClientText, Identity, event::Transport};

/// What analytics records about the caller of one request.
pub(crate) struct Capture {
    pub transport: Transport,
    pub session: Option<Session>,
    pub user_id: Option<Arc<str>>,
    /// The caller's email and name as the identity provider gave them (stored per
    /// `UserDetails` on the writer's thread).
    pub user_details: Option<Box<(Option<String>, Option<String>)>>,
    pub client: Client,
    /// The request's own `_meta` protocol version (MCP 2026-07-28); else the handshake's.
    pub protocol_version: Option<ProtocolVersion>,
    pub request_id: RequestId,
    /// When the call started, in unix nanoseconds (span start times).
    pub started_ns: u64,
    /// The W3C trace context the client sent, for exporters to continue its trace.
    pub trace: TraceCarrier,
}

/// The W3C trace context of a request, as received (validated by exporters, off the call path).
#[derive(Default)]
pub(crate) struct TraceCarrier {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// Longer values are ignored (`traceparent`) or dropped (`tracestate`, as W3C allows past 512).
const MAX_TRACE_HEADER: usize = 512;

impl TraceCarrier {
    /// SEP-414 `params._meta` (`traceparent`, `tracestate`), else the HTTP headers.
    fn read(context: &RequestContext<RoleServer>, parts: Option<&http::request::Parts>) -> Self {
        let bounded = |value: &str| (value.len() <= MAX_TRACE_HEADER).then(|| value.to_owned());
        if let Some(traceparent) = context.meta.get_traceparent() {
            return TraceCarrier {
                traceparent: bounded(traceparent),
                tracestate: context.meta.get_tracestate().and_then(bounded),
            };
        }
        let header = |name| {
            parts
                .and_then(|parts| parts.headers.get(name))
                .and_then(|value| value.to_str().ok())
                .and_then(bounded)
        };
        match header("traceparent") {
            Some(traceparent) => TraceCarrier {
                traceparent: Some(traceparent),
                tracestate: header("tracestate"),
            },
            None => TraceCarrier::default(),
        }
    }
}

/// The session a call belongs to (see *Sessions* in the `store` module's reference).
#[derive(Clone, Debug)]
pub(crate) enum Session {
    /// An `Mcp-Session-Id`, or a sessionless caller's derived `d-…` key.
    Text(Arc<str>),
    /// A byte-stream connection, shown as `c-` and 16 hex digits.
    Connection(u64),
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Session::Text(text) => f.write_str(text),
            Session::Connection(id) => write!(f, "c-{id:016x}"),
        }
    }
}

/// Where the client's name and version come from.
pub(crate) enum Client {
    Unknown,
    /// The legacy `initialize` handshake of this connection.
    Handshake(Arc<InitializeRequestParams>),
    /// The request's `_meta` (MCP 2026-07-28).
    Request(Implementation),
}

impl Client {
    pub(crate) fn implementation(&self) -> Option<&Implementation> {
        match self {
            Client::Unknown => None,
            Client::Handshake(handshake) => Some(&handshake.client_info),
            Client::Request(implementation) => Some(implementation),
        }
    }
}

impl Capture {
    pub(crate) fn read(context: &RequestContext<RoleServer>) -> Self {
        let parts = context.extensions.get::<http::request::Parts>();
        let identity = identity(context);
        let header_session = parts
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|value| value.to_str().ok());
        let handshake = context.peer.peer_info();
        let client = match context.meta.client_info() {
            Some(implementation) => Client::Request(implementation),
            // Stateless HTTP fabricates the handshake from rmcp's own build: not the client.
            None if parts.is_some() && header_session.is_none() => Client::Unknown,
            None => handshake.clone().map_or(Client::Unknown, Client::Handshake),
        };
        let session = match (parts, header_session) {
            (Some(_), Some(session)) => Session::Text(Arc::from(ClientText::new(session).as_str())),
            (Some(parts), None) => derived_http_session(parts, identity, client.implementation()),
            (None, _) => stream_session(handshake.as_ref(), client.implementation()),
        };
        Capture {
            transport: if parts.is_some() {
                Transport::Http
            } else {
                Transport::Stdio
            },
            session: Some(session),
            user_id: identity.map(|identity| Arc::from(identity.subject.as_str())),
            user_details: identity
                .filter(|identity| identity.email.is_some() || identity.name.is_some())
                .map(|identity| Box::new((identity.email.clone(), identity.name.clone()))),
            protocol_version: context
                .meta
                .protocol_version()
                .or_else(|| handshake.map(|handshake| handshake.protocol_version.clone())),
            client,
            request_id: context.id.clone(),
            started_ns: crate::clock::now_ns(),
            trace: TraceCarrier::read(context, parts),
        }
    }
}

/// The caller's identity: from the HTTP request extensions, or set directly on the context.
pub(crate) fn identity(context: &RequestContext<RoleServer>) -> Option<&Identity> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Identity>())
        .or_else(|| context.extensions.get::<Identity>())
}

/// Sessionless HTTP (MCP 2026-07-28, or stateless mode): the key of one caller and client, which
/// the store splits into sessions by inactivity and W3C trace (`store::sessions`, which knows
/// this shape). `d-` + the first 16 hex digits of SHA-256 over the user id (else the
/// `Authorization` header, else the `User-Agent`), the client name and the client version.
fn derived_http_session(
    parts: &http::request::Parts,
    identity: Option<&Identity>,
    client: Option<&Implementation>,
) -> Session {
    let header = |name| {
        parts
            .headers
            .get(name)
            .map_or(&b""[..], |value| value.as_bytes())
    };
    let caller = match identity {
        Some(identity) => identity.subject.as_bytes(),
        None if parts.headers.contains_key(http::header::AUTHORIZATION) => {
            header(http::header::AUTHORIZATION)
        }
        None => header(http::header::USER_AGENT),
    };
    let mut hasher = Sha256::new();
    for field in [
        caller,
        client.map_or(&b""[..], |client| client.name.as_bytes()),
        client.map_or(&b""[..], |client| client.version.as_bytes()),
    ] {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field);
    }
    let digest = hasher.finalize();
    let prefix = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    Session::Text(Arc::from(format!("d-{prefix:016x}")))
}

/// The session of the byte-stream connection whose handshake record rmcp keeps as `handshake`.
pub(crate) fn connection_session(handshake: &Arc<InitializeRequestParams>) -> Session {
    stream_session(Some(handshake), None)
}

/// Byte streams (stdio, duplex): one id per connection. The connection is recognised by its
/// handshake record; on MCP 2026-07-28 (no handshake) by the client name and version.
fn stream_session(
    handshake: Option<&Arc<InitializeRequestParams>>,
    client: Option<&Implementation>,
) -> Session {
    let connection = match (handshake, client) {
        (Some(handshake), _) => Arc::as_ptr(handshake) as usize as u64,
        (None, Some(client)) => {
            fnv1a(client.name.as_bytes()) ^ fnv1a(client.version.as_bytes()).rotate_left(17)
        }
        (None, None) => 0,
    };
    Session::Connection(mix(process_nonce() ^ connection))
}

fn process_nonce() -> u64 {
    static NONCE: OnceLock<u64> = OnceLock::new();
    *NONCE.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64 finaliser: spreads a pointer or hash over all 64 bits.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
