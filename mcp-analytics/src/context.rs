//! [`CallContext`]: what a tool can learn about the call it is serving.

use std::sync::{Arc, OnceLock};

use rmcp::{RoleServer, service::RequestContext};

use crate::{Identity, capture::Session};

/// The request behind a tool call. Declare a last parameter of this type on a `#[tool]` method
/// to receive it: `async fn add(&self, args: AddArgs, cx: CallContext) -> String`.
pub struct CallContext {
    request: RequestContext<RoleServer>,
    user_id: Option<Arc<str>>,
    session: Option<Session>,
    session_text: OnceLock<String>,
}

impl CallContext {
    pub(crate) fn new(
        request: RequestContext<RoleServer>,
        user_id: Option<Arc<str>>,
        session: Option<Session>,
    ) -> Self {
        Self {
            request,
            user_id,
            session,
            session_text: OnceLock::new(),
        }
    }

    /// The authenticated user's id (`Identity::subject`), if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The full identity placed in the request by authentication middleware.
    pub fn identity(&self) -> Option<&Identity> {
        crate::capture::identity(&self.request)
    }

    /// The session id recorded for this call (see *Sessions* in the `store` module's reference
    /// for how it is derived).
    pub fn session_id(&self) -> Option<&str> {
        let session = self.session.as_ref()?;
        Some(self.session_text.get_or_init(|| session.to_string()))
    }

    /// rmcp's request context: cancellation token, peer, `_meta`, extensions.
    pub fn request(&self) -> &RequestContext<RoleServer> {
        &self.request
    }
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("request_id", &self.request.id)
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id())
            .finish_non_exhaustive()
    }
}
