//! [`CallContext`]: what a tool can learn about the call it is serving.

use std::sync::Arc;

use rmcp::{RoleServer, service::RequestContext};

use crate::Identity;

/// The request behind a tool call. Declare a last parameter of this type on a `#[tool]` method
/// to receive it: `async fn add(&self, args: AddArgs, cx: CallContext) -> String`.
pub struct CallContext {
    request: RequestContext<RoleServer>,
    user_id: Option<Arc<str>>,
    session_id: Option<Arc<str>>,
}

impl CallContext {
    pub(crate) fn new(
        request: RequestContext<RoleServer>,
        user_id: Option<Arc<str>>,
        session_id: Option<Arc<str>>,
    ) -> Self {
        Self {
            request,
            user_id,
            session_id,
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

    /// The session id recorded for this call (see the README for how it is derived).
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
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
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}
