//! Requests a tool makes of its client: sampling (`sampling/createMessage`) and elicitation
//! (`elicitation/create`).
//!
//! On legacy protocols they go over the connection through rmcp's peer and the tool waits for
//! the answer. MCP 2026-07-28 forbids server-to-client requests (multi-round-trip requests,
//! SEP-2322, replace them): the first request the client has not answered yet ends the round.
//! The runtime answers the call with an `InputRequiredResult` holding every request the tool
//! made ([`scope`] collects them), the client answers and calls the tool again with the answers
//! (`inputResponses`), and this time the same request returns the client's answer. Requests are
//! matched to answers by their order in the call (`elicitation-1`, `sampling-1`, …), and the
//! answers of earlier rounds travel in `requestState`, so a tool that asks twice works too. They
//! are the client's own answers either way, so nothing there needs protecting from it.

#![allow(deprecated)] // rmcp marks sampling deprecated (SEP-2577); MCP still defines it.

use std::{
    cell::RefCell,
    future::Future,
    sync::atomic::{AtomicU32, Ordering},
};

use rmcp::{
    ErrorData, ServiceError,
    model::{
        ContentBlock, CreateMessageRequest, CreateMessageRequestParams, CreateMessageResult,
        ElicitRequest, ElicitRequestParams, ElicitResult, InputRequest, InputRequests,
        InputRequiredResult, InputResponses, IntoContents, ProtocolVersion,
    },
};
use serde::de::DeserializeOwned;

use super::ServerRequestContext as RequestContext;

/// Why a request to the client gave no answer. As a tool's error (`Result<T,
/// ClientRequestError>`, or `?` into it) it becomes a tool error saying so, except
/// [`InputRequired`](Self::InputRequired), which the runtime turns into the
/// `InputRequiredResult` the client answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientRequestError {
    /// The client did not declare the capability (`sampling`, `elicitation`, or URL
    /// elicitation) the request needs.
    #[error("the client does not support {0}")]
    Unsupported(&'static str),
    /// MCP 2026-07-28: the client answers in its next call of the tool. Return this error (or
    /// anything else: the round ends either way) and the call is answered with an
    /// `InputRequiredResult`.
    #[error("the client must answer first (MCP 2026-07-28 input required)")]
    InputRequired,
    /// MCP 2026-07-28: the request was made outside the tool's own task (from a spawned
    /// one), which cannot end the tool's round.
    #[error("on MCP 2026-07-28 a tool asks its client from its own task, not a spawned one")]
    OutsideTheTool,
    /// The client answered with a JSON-RPC error.
    #[error("the client refused the request: {}", .0.message)]
    Rejected(ErrorData),
    /// The client's answer (an MCP 2026-07-28 `inputResponses` entry) is not a result of the
    /// request's kind.
    #[error("the client's answer to {key} is not valid: {reason}")]
    InvalidAnswer {
        /// The request's key in `inputRequests`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection failed, closed or timed out.
    #[error("the request to the client failed: {0}")]
    Failed(#[source] ServiceError),
}

impl From<ServiceError> for ClientRequestError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::McpError(error) => ClientRequestError::Rejected(error),
            other => ClientRequestError::Failed(other),
        }
    }
}

impl IntoContents for ClientRequestError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.to_string())]
    }
}

/// What a call has asked its client this round (MCP 2026-07-28).
pub(crate) struct Round {
    requests: InputRequests,
    /// Every answer so far (earlier rounds and this call's), for `requestState`.
    answers: InputResponses,
}

impl Round {
    /// The call's answer: the requests, and the answers so far for the next round.
    fn into_result(self) -> InputRequiredResult {
        let state = (!self.answers.is_empty())
            .then(|| serde_json::to_string(&self.answers).ok())
            .flatten()
            .map(|answers| format!("{STATE_PREFIX}{answers}"));
        InputRequiredResult::new(Some(self.requests), state)
    }
}

/// Marks the `requestState` this module writes (a JSON object of earlier answers).
const STATE_PREFIX: &str = "mcpa1:";

tokio::task_local! {
    static ROUND: RefCell<Option<Round>>;
}

/// Runs a tool's future, collecting the requests it makes of an MCP 2026-07-28 client: the
/// result is `Some` when the call must be answered with an `InputRequiredResult` instead of
/// its own result.
pub(crate) async fn scope<F: Future>(future: F) -> (F::Output, Option<InputRequiredResult>) {
    ROUND
        .scope(RefCell::new(None), async {
            let output = future.await;
            let round = ROUND.with(|round| round.borrow_mut().take());
            (output, round.map(Round::into_result))
        })
        .await
}

/// The answers a call brings (MCP 2026-07-28 retries), and the counters naming its requests.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    responses: Option<InputResponses>,
    state: Option<String>,
    elicitations: AtomicU32,
    samplings: AtomicU32,
}

impl Answers {
    pub(crate) fn new(responses: Option<InputResponses>, state: Option<String>) -> Self {
        Answers {
            responses,
            state,
            ..Answers::default()
        }
    }

    /// Every answer the client has given this call: earlier rounds' (from `requestState`) and
    /// this round's.
    fn all(&self) -> InputResponses {
        let mut all: InputResponses = self
            .state
            .as_deref()
            .and_then(|state| state.strip_prefix(STATE_PREFIX))
            .and_then(|answers| serde_json::from_str(answers).ok())
            .unwrap_or_default();
        if let Some(responses) = &self.responses {
            all.extend(responses.clone());
        }
        all
    }
}

fn modern(context: &RequestContext) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28)
}

/// Asks the client's model (`sampling/createMessage`).
pub(crate) async fn sample(
    context: &RequestContext,
    answers: &Answers,
    request: CreateMessageRequestParams,
) -> Result<CreateMessageResult, ClientRequestError> {
    // The client's capabilities: from the request on MCP 2026-07-28, else the handshake's.
    if context
        .client_capabilities()
        .and_then(|c| c.sampling)
        .is_none()
    {
        return Err(ClientRequestError::Unsupported("sampling"));
    }
    if modern(context) {
        let key = format!(
            "sampling-{}",
            answers.samplings.fetch_add(1, Ordering::Relaxed) + 1
        );
        let input = InputRequest::CreateMessage(CreateMessageRequest::new(request));
        return answer_or_ask(answers, key, input);
    }
    Ok(context.peer.create_message(request).await?)
}

/// Asks the user, through the client (`elicitation/create`).
pub(crate) async fn elicit(
    context: &RequestContext,
    answers: &Answers,
    request: ElicitRequestParams,
) -> Result<ElicitResult, ClientRequestError> {
    let elicitation = context.client_capabilities().and_then(|c| c.elicitation);
    let supported = match (&elicitation, &request) {
        (None, _) => false,
        (Some(capability), ElicitRequestParams::UrlElicitationParams { .. }) => {
            capability.url.is_some()
        }
        // A bare `elicitation: {}` means form elicitation (MCP 2025-06-18).
        (Some(capability), _) => capability.form.is_some() || capability.url.is_none(),
    };
    if !supported {
        return Err(ClientRequestError::Unsupported(match request {
            ElicitRequestParams::UrlElicitationParams { .. } => "URL elicitation",
            _ => "elicitation",
        }));
    }
    if modern(context) {
        let key = format!(
            "elicitation-{}",
            answers.elicitations.fetch_add(1, Ordering::Relaxed) + 1
        );
        let input = InputRequest::Elicitation(ElicitRequest::new(request));
        return answer_or_ask(answers, key, input);
    }
    Ok(context.peer.create_elicitation(request).await?)
}

/// The client's answer to the request `key`, or (not answered yet) the request added to this
/// round's.
fn answer_or_ask<T: DeserializeOwned>(
    answers: &Answers,
    key: String,
    input: InputRequest,
) -> Result<T, ClientRequestError> {
    let all = answers.all();
    if let Some(answer) = all.get(&key) {
        return serde_json::from_value(answer.clone()).map_err(|error| {
            ClientRequestError::InvalidAnswer {
                key,
                reason: error.to_string(),
            }
        });
    }
    let asked = ROUND.try_with(|round| {
        let mut round = round.borrow_mut();
        let round = round.get_or_insert_with(|| Round {
            requests: InputRequests::new(),
            answers: all,
        });
        round.requests.insert(key, input);
    });
    match asked {
        Ok(()) => Err(ClientRequestError::InputRequired),
        Err(_) => Err(ClientRequestError::OutsideTheTool),
    }
}
