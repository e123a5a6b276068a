//! MCP sessions bound to the user who opened them: a session id is not a credential, so a
//! request naming another user's `Mcp-Session-Id` is answered like an unknown session (the MCP
//! security guidance: bind session ids to user-specific information).

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

/// Sessions remembered at most; the oldest binding is forgotten first.
const MAX_SESSIONS: usize = 100_000;

/// Session id → the subject that opened it.
#[derive(Default)]
pub(super) struct SessionOwners(Mutex<Owners>);

#[derive(Default)]
struct Owners {
    by_session: HashMap<String, String>,
    order: VecDeque<String>,
}

impl SessionOwners {
    fn with<R>(&self, f: impl FnOnce(&mut Owners) -> R) -> R {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Whether `subject` may use `session` (a session not opened through this layer is
    /// left to the MCP server, which refuses ids it does not know).
    pub(super) fn allows(&self, session: &str, subject: &str) -> bool {
        self.with(|owners| {
            owners
                .by_session
                .get(session)
                .is_none_or(|owner| owner == subject)
        })
    }

    /// Records that `subject` opened `session`.
    pub(super) fn bind(&self, session: &str, subject: &str) {
        self.with(|owners| {
            if owners.by_session.len() >= MAX_SESSIONS
                && let Some(oldest) = owners.order.pop_front()
            {
                owners.by_session.remove(&oldest);
            }
            if owners
                .by_session
                .insert(session.to_owned(), subject.to_owned())
                .is_none()
            {
                owners.order.push_back(session.to_owned());
            }
        });
    }

    /// Forgets a closed session.
    pub(super) fn forget(&self, session: &str) {
        self.with(|owners| {
            if owners.by_session.remove(session).is_some() {
                owners.order.retain(|known| known != session);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_belong_to_their_opener() {
        let owners = SessionOwners::default();
        assert!(
            owners.allows("s1", "alice"),
            "unknown sessions are the server's to refuse"
        );
        owners.bind("s1", "alice");
        assert!(owners.allows("s1", "alice"));
        assert!(!owners.allows("s1", "mallory"));
        owners.forget("s1");
        assert!(owners.allows("s1", "mallory"));
    }
}
