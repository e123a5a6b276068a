//! Reads who and where a call comes from out of rmcp's `RequestContext`: transport, session (or
//! a derived correlation id), user, client, protocol version and request id. Only cheap reads and
//! clones happen here; formatting is left to the recorder's thread.

use std::sync::{Arc, OnceLock};

use rmcp::{
    RoleServer,
    model::{Implementation, ProtocolVersion, RequestId},
    service::RequestContext,
};
use sha2::{Digest, Sha256};

use crate::{Identity, event::Transport};

/// What analytics records about the caller of one request.
pub(crate) struct Capture {
    pub transport: Transport,
    pub session_id: Option<Arc<str>>,
    pub user_id: Option<Arc<str>>,
    pub client: Option<Implementation>,
    pub protocol_version: Option<ProtocolVersion>,
    pub request_id: RequestId,
}

impl Capture {
    pub(crate) fn read(context: &RequestContext<RoleServer>) -> Self {
        let parts = context.extensions.get::<http::request::Parts>();
        let identity = identity(context);
        let user_id = identity.map(|identity| Arc::from(identity.subject.as_str()));
        let transport = if parts.is_some() {
            Transport::Http
        } else {
            Transport::Stdio
        };
        let header_session = parts
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|value| value.to_str().ok());
        let client = context.client_info().filter(|client| {
            // Stateless HTTP fabricates the peer info from rmcp's own build: that is not the client.
            !(parts.is_some() && header_session.is_none() && is_fabricated(client))
        });
        let session_id = match (parts, header_session) {
            (Some(_), Some(session)) => Some(Arc::from(session)),
            (Some(parts), None) => Some(derived_http_session(parts, identity, client.as_ref())),
            (None, _) => Some(stream_session(context, client.as_ref())),
        };
        Capture {
            transport,
            session_id,
            user_id,
            client,
            protocol_version: context.protocol_version(),
            request_id: context.id.clone(),
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

fn is_fabricated(client: &Implementation) -> bool {
    client.name == "rmcp"
}

/// Sessionless HTTP (MCP 2026-07-28, or stateless mode): a correlation id that groups the calls
/// of one caller and client. `d-` + the first 16 hex digits of SHA-256 over the user id (else
/// the `Authorization` header, else the `User-Agent`), the client name and the client version.
fn derived_http_session(
    parts: &http::request::Parts,
    identity: Option<&Identity>,
    client: Option<&Implementation>,
) -> Arc<str> {
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get(name)
            .map(|value| value.as_bytes().to_vec())
            .unwrap_or_default()
    };
    let caller = match identity {
        Some(identity) => identity.subject.as_bytes().to_vec(),
        None if parts.headers.contains_key(http::header::AUTHORIZATION) => {
            header(http::header::AUTHORIZATION)
        }
        None => header(http::header::USER_AGENT),
    };
    let mut hasher = Sha256::new();
    for field in [
        caller.as_slice(),
        client.map_or(&b""[..], |client| client.name.as_bytes()),
        client.map_or(&b""[..], |client| client.version.as_bytes()),
    ] {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field);
    }
    let digest = hasher.finalize();
    let hex: String = digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Arc::from(format!("d-{hex}"))
}

/// Stream transports (stdio, duplex): one id per connection, `c-` + 16 hex digits. The
/// connection is recognised by its handshake record; on MCP 2026-07-28 (no handshake) by the
/// client name and version within this process.
fn stream_session(
    context: &RequestContext<RoleServer>,
    client: Option<&Implementation>,
) -> Arc<str> {
    let connection = match context.peer.peer_info() {
        Some(info) => Arc::as_ptr(&info) as usize as u64,
        None => client.map_or(0, |client| {
            fnv1a(client.name.as_bytes()) ^ fnv1a(client.version.as_bytes()).rotate_left(17)
        }),
    };
    Arc::from(format!("c-{:016x}", mix(process_nonce() ^ connection)))
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
