//! [`CallContext`]: what a tool can learn about the call it is serving, and what it can send
//! its client while it runs: log messages, progress, and requests for sampling and elicitation.

mod input;
mod logging;

use std::sync::{Arc, OnceLock};

// Sampling and logging are deprecated by MCP 2026-07-28 (SEP-2577), still part of MCP.
#[allow(deprecated)]
use rmcp::model::{
    CreateMessageRequestParams, CreateMessageResult, LoggingMessageNotificationParam,
};
use rmcp::{
    RoleServer,
    model::{
        ElicitRequestParams, ElicitResult, InputResponses, ProgressNotificationParam, ProgressToken,
    },
    service::RequestContext,
};
use serde_json::Value;

pub use self::{
    input::ClientRequestError,
    logging::{LogLevel, UnknownLogLevel},
};
pub(crate) use self::{input::scope as input_scope, logging::set_session_level};
use crate::{Identity, capture::Session};

/// The context rmcp hands a server's request handlers (`server::RequestContext` re-exports it).
pub type ServerRequestContext = RequestContext<RoleServer>;

/// The request behind a tool call. Declare a last parameter of this type on a `#[tool]` method
/// to receive it: `async fn add(&self, args: AddArgs, cx: CallContext) -> String`.
///
/// Through it a tool also talks to its client while it runs: [`log`](Self::log) messages,
/// report [`progress`](Self::progress), and ask for [`sample`](Self::sample) (the client's
/// model) or [`elicit`](Self::elicit) (the user). On MCP 2026-07-28, where a server may no
/// longer send requests, asking ends the round: see [`ClientRequestError::InputRequired`].
pub struct CallContext {
    request: RequestContext<RoleServer>,
    user_id: Option<Arc<str>>,
    session: Option<Session>,
    session_text: OnceLock<String>,
    answers: input::Answers,
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
            answers: input::Answers::default(),
        }
    }

    /// The client's answers to earlier input requests (an MCP 2026-07-28 retry): its
    /// `inputResponses` and `requestState`.
    pub(crate) fn with_answers(
        mut self,
        responses: Option<InputResponses>,
        state: Option<String>,
    ) -> Self {
        if responses.is_some() || state.is_some() {
            self.answers = input::Answers::new(responses, state);
        }
        self
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

    /// Sends the client a log message (`notifications/message`) if it wants messages of
    /// `level`: on legacy protocols, those at or above the level its connection set with
    /// `logging/setLevel` (all of them until it sets one); on MCP 2026-07-28, those at or above
    /// the level the request names in `_meta` (`io.modelcontextprotocol/logLevel`), and none
    /// when it names none. Returns whether the message was sent.
    pub async fn log(
        &self,
        level: LogLevel,
        data: impl Into<Value>,
    ) -> Result<bool, ClientRequestError> {
        if logging::wanted(&self.request).is_none_or(|wanted| level < wanted) {
            return Ok(false);
        }
        #[allow(deprecated)]
        let message = LoggingMessageNotificationParam::new(level.into(), data.into());
        #[allow(deprecated)]
        self.request.peer.notify_logging_message(message).await?;
        Ok(true)
    }

    /// The token the client asked progress notifications for, if it asked.
    pub fn progress_token(&self) -> Option<ProgressToken> {
        self.request.meta.get_progress_token()
    }

    /// Tells the client how far the call has got (`notifications/progress`, with the
    /// request's progress token): `progress` should grow with each report; `total` is the
    /// value it reaches at the end, if known. Returns `false` without sending anything when
    /// the client sent no progress token.
    pub async fn progress(
        &self,
        progress: f64,
        total: Option<f64>,
        message: Option<&str>,
    ) -> Result<bool, ClientRequestError> {
        let Some(token) = self.progress_token() else {
            return Ok(false);
        };
        let mut notification = ProgressNotificationParam::new(token, progress);
        notification.total = total;
        notification.message = message.map(str::to_owned);
        self.request.peer.notify_progress(notification).await?;
        Ok(true)
    }

    /// Asks the client's model for a completion (`sampling/createMessage`); needs the client's
    /// `sampling` capability. On MCP 2026-07-28 the first call of a round ends it with
    /// [`ClientRequestError::InputRequired`] and the retry returns the client's answer.
    #[allow(deprecated)] // sampling is deprecated by MCP 2026-07-28 (SEP-2577), still part of MCP
    pub async fn sample(
        &self,
        request: CreateMessageRequestParams,
    ) -> Result<CreateMessageResult, ClientRequestError> {
        input::sample(&self.request, &self.answers, request).await
    }

    /// Asks the user for input through the client (`elicitation/create`, a form or a URL to
    /// open); needs the client's `elicitation` capability (`elicitation.url` for a URL). On
    /// MCP 2026-07-28 the first call of a round ends it with
    /// [`ClientRequestError::InputRequired`] and the retry returns the client's answer.
    pub async fn elicit(
        &self,
        request: ElicitRequestParams,
    ) -> Result<ElicitResult, ClientRequestError> {
        input::elicit(&self.request, &self.answers, request).await
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
