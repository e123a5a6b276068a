//! MCP sessions bound to the user who opened them: a session id is not a credential, so a
//! request naming another user's `Mcp-Session-Id` is answered like an unknown session (the MCP
//! security guidance: bind session ids to user-specific information).
//!
//! A binding lives exactly as long as its session: [`Sessions`] is the session manager (rmcp's
//! in-memory one inside) and forgets the binding when rmcp closes the session (`DELETE`, idle
//! expiry after rmcp's keep-alive of 5 minutes, shutdown). Memory is bounded by refusing new
//! sessions at capacity, never by forgetting a live one.
//!
//! It also names the session on the `initialize` request that opens it: the client learns the
//! id only from the answer, and the server records the request in the session it opens.

// Without the `oauth` feature no session has an owner: only the naming is used.
#![cfg_attr(not(feature = "oauth"), allow(dead_code))]

use std::{collections::HashMap, sync::Mutex};

use futures::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage},
    transport::{
        WorkerTransport,
        streamable_http_server::session::{
            EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
            local::{LocalSessionManager, LocalSessionManagerError, LocalSessionWorker},
        },
    },
};

/// The header naming an MCP session.
const SESSION_HEADER: &str = "mcp-session-id";

/// The MCP sessions of one server and, for those opened with a token, their owners.
pub(crate) struct Sessions {
    manager: LocalSessionManager,
    /// Session id → the subject that opened it.
    owners: Mutex<HashMap<String, String>>,
    capacity: usize,
}

/// The session table is full: a new session must wait until one closes.
#[derive(Debug)]
pub(super) struct Full;

impl Sessions {
    /// Sessions bound to at most `capacity` owners at once.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            manager: LocalSessionManager::default(),
            owners: Mutex::default(),
            capacity,
        }
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `subject` may use `session` (a session not opened through this layer is
    /// left to the MCP server, which refuses ids it does not know).
    pub(super) fn allows(&self, session: &str, subject: &str) -> bool {
        self.owners()
            .get(session)
            .is_none_or(|owner| owner == subject)
    }

    /// Records that `subject` opened `session`, unless the table is full.
    pub(super) fn bind(&self, session: &str, subject: &str) -> Result<(), Full> {
        let mut owners = self.owners();
        if owners.len() >= self.capacity && !owners.contains_key(session) {
            return Err(Full);
        }
        owners.insert(session.to_owned(), subject.to_owned());
        Ok(())
    }

    fn forget(&self, session: &str) {
        self.owners().remove(session);
    }
}

/// rmcp's in-memory session manager, forgetting a session's owner when the session closes.
impl SessionManager for Sessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.manager.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        mut message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        if let ClientJsonRpcMessage::Request(request) = &mut message
            && let Some(parts) = request
                .request
                .extensions_mut()
                .get_mut::<http::request::Parts>()
            && let Ok(value) = http::HeaderValue::from_str(id)
        {
            parts.headers.insert(SESSION_HEADER, value);
        }
        self.manager.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.manager.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let closed = self.manager.close_session(id).await;
        self.forget(id);
        closed
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.manager.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.manager.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.manager.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.manager.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.manager.restore_session(id).await
    }

    fn event_store(&self) -> Option<std::sync::Arc<dyn EventStore>> {
        self.manager.event_store()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_belong_to_their_opener() {
        let sessions = Sessions::new(10);
        assert!(
            sessions.allows("s1", "alice"),
            "unknown sessions are the server's to refuse"
        );
        sessions.bind("s1", "alice").unwrap();
        assert!(sessions.allows("s1", "alice"));
        assert!(!sessions.allows("s1", "mallory"));
        sessions.forget("s1");
        assert!(sessions.allows("s1", "mallory"));
    }

    #[tokio::test]
    async fn a_full_table_refuses_new_bindings_and_closing_frees_one() {
        let sessions = Sessions::new(2);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let (id, _transport) = sessions.create_session().await.unwrap();
            sessions.bind(&id, "alice").unwrap();
            ids.push(id);
        }
        assert!(sessions.bind("third", "bob").is_err());
        assert!(
            !sessions.allows(&ids[0], "bob"),
            "no live binding is forgotten"
        );
        sessions.close_session(&ids[0]).await.unwrap();
        sessions.bind("third", "bob").unwrap();
        assert!(!sessions.allows(&ids[1], "bob"));
    }
}
