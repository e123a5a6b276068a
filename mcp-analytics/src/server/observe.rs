//! Recording every request other than `tools/call`: [`observed`] runs the answer to one request
//! and records it as a `requests` row — method, target, status, duration, session, user, client
//! and protocol version — through the same queue as tool calls (the request never waits on
//! storage). Panics in the answer are caught (an internal error for the client, `panic` in the
//! record) and a cancelled request is recorded as `cancelled`.

use std::{borrow::Cow, future::Future, panic::AssertUnwindSafe, sync::Arc};

use crate::clock::Stopwatch;

use futures::FutureExt;
use rmcp::{
    ErrorData,
    model::{ErrorCode, InitializeRequestParams, ProtocolVersion},
};
use serde_json::Value;

use super::{RequestContext, Server, tool_panics};
pub use crate::event::Method;
use crate::{
    Analytics,
    analytics::RawRequest,
    capture::{Capture, Client},
    event::{RequestStatus, Transport},
};

/// Runs `body` (the answer to one request) and records it: method, target (prompt name, resource
/// URI — redacted on the recorder's thread — or `None`), status (from the result, or a payment
/// refusal), duration, session, user, client and protocol version (from `context`).
///
/// A `#[mcp_server]` records every method it serves; call this from a hand-written
/// `ServerHandler` method to record one it serves itself:
///
/// ```
/// use mcp_analytics::{
///     rmcp::{ErrorData, model::{GetPromptRequestParams, GetPromptResult}},
///     server::{Method, RequestContext, Server, observed},
/// };
///
/// async fn get_prompt<S: Server>(
///     server: &S,
///     request: GetPromptRequestParams,
///     context: RequestContext,
/// ) -> Result<GetPromptResult, ErrorData> {
///     observed(server, Method::PromptsGet, Some(&request.name), &context, async {
///         Err(ErrorData::invalid_params(format!("no prompt {}", request.name), None))
///     })
///     .await
/// }
/// ```
pub async fn observed<S: Server, T>(
    server: &S,
    method: Method,
    target: Option<&str>,
    context: &RequestContext,
    body: impl Future<Output = Result<T, ErrorData>>,
) -> Result<T, ErrorData> {
    observe(server, Observation::new(method, target), context, body).await
}

/// What the runtime's own bodies know of their request beyond its context.
pub(crate) struct Observation<'a> {
    method: Method,
    target: Option<&'a str>,
    /// The `initialize` request being answered, as the connection now keeps it: the client and
    /// its capabilities come from it (on HTTP the request has no session yet, so the
    /// connection cannot tell them).
    handshake: Option<Arc<InitializeRequestParams>>,
    /// The protocol version the answer settles on (`initialize`).
    protocol_version: Option<ProtocolVersion>,
    /// Capabilities the client declared in the request's `_meta` (`server/discover`).
    capabilities: Option<Value>,
}

impl<'a> Observation<'a> {
    pub(crate) fn new(method: Method, target: Option<&'a str>) -> Self {
        Self {
            method,
            target,
            handshake: None,
            protocol_version: None,
            capabilities: None,
        }
    }

    /// An `initialize` request, answered with `protocol_version`.
    pub(crate) fn handshake(
        request: Arc<InitializeRequestParams>,
        protocol_version: Option<ProtocolVersion>,
    ) -> Self {
        Self {
            handshake: Some(request),
            protocol_version,
            ..Self::new(Method::Initialize, None)
        }
    }

    /// With the client's declared capabilities (as sent).
    pub(crate) fn capabilities(self, capabilities: Option<Value>) -> Self {
        Self {
            capabilities,
            ..self
        }
    }
}

/// [`observed`] with what the runtime's bodies know besides.
pub(crate) async fn observe<S: Server, T>(
    server: &S,
    observation: Observation<'_>,
    context: &RequestContext,
    body: impl Future<Output = Result<T, ErrorData>>,
) -> Result<T, ErrorData> {
    let analytics = server.analytics();
    if !analytics.is_enabled() {
        return caught(body).await.into_result();
    }
    let started = Stopwatch::start();
    let mut capture = Capture::read(context);
    let mut capabilities = observation.capabilities;
    let mut settling = None;
    if let Some(handshake) = observation.handshake {
        capabilities = serde_json::to_value(&handshake.capabilities).ok();
        if capture.transport == Transport::Stdio {
            settling = Some(handshake.clone());
        }
        capture.client = Client::Handshake(handshake);
    }
    if let Some(version) = observation.protocol_version {
        capture.protocol_version = Some(version);
    }
    let mut raw = RawRequest::new(
        &S::INFO,
        observation.method,
        observation.target.map(str::to_owned),
        capabilities,
        capture,
    );
    if let Some(provisional) = settling {
        raw.settle_session(context.peer.clone(), provisional);
    }
    let pending = Pending {
        analytics,
        raw: Some(raw),
        started,
    };
    let answer = tokio::select! {
        biased;
        answer = caught(body) => answer,
        () = context.ct.cancelled() => Answer::Cancelled,
    };
    pending.finish(answer)
}

/// How a request's answer ended.
enum Answer<T> {
    Done(Result<T, ErrorData>),
    /// The answer panicked, with this message.
    Panicked(String),
    Cancelled,
}

impl<T> Answer<T> {
    /// How it is recorded: the status and, for errors, `(error_type, error_message)`.
    fn classify(&self) -> (RequestStatus, Option<(Cow<'static, str>, String)>) {
        match self {
            Answer::Done(Ok(_)) => (RequestStatus::Ok, None),
            Answer::Done(Err(error)) => {
                let (status, error_type) = classify(error);
                (status, Some((error_type, error.message.to_string())))
            }
            Answer::Panicked(message) => (
                RequestStatus::Panic,
                Some(("panic".into(), message.clone())),
            ),
            Answer::Cancelled => (
                RequestStatus::Cancelled,
                Some((
                    REQUEST_CANCELLED.to_string().into(),
                    "the client cancelled the request".into(),
                )),
            ),
        }
    }

    /// What the client gets.
    fn into_result(self) -> Result<T, ErrorData> {
        match self {
            Answer::Done(result) => result,
            Answer::Panicked(_) => Err(ErrorData::internal_error(
                "the request failed unexpectedly (internal error); the failure was recorded",
                None,
            )),
            Answer::Cancelled => Err(ErrorData::new(
                ErrorCode(REQUEST_CANCELLED),
                "request cancelled",
                None,
            )),
        }
    }
}

/// JSON-RPC "Request cancelled" (what rmcp uses).
const REQUEST_CANCELLED: i32 = -32800;

/// Payment answers (the `status` of the error's data, as a refused paid tool's structured
/// result carries it) and how each is recorded.
const PAYMENT_ANSWERS: [(&str, RequestStatus); 5] = [
    ("payment_required", RequestStatus::PaymentRequired),
    ("sign_in_required", RequestStatus::PaymentRequired),
    ("payment_processing", RequestStatus::PaymentRequired),
    ("payment_method_required", RequestStatus::PaymentRequired),
    ("payment_unavailable", RequestStatus::PaymentUnavailable),
];

/// The status of a request answered with `error`, and its `error_type`: the payment answer's
/// status when the error's data carries one, else the JSON-RPC code.
fn classify(error: &ErrorData) -> (RequestStatus, Cow<'static, str>) {
    let payment = error
        .data
        .as_ref()
        .and_then(|data| data.get("status"))
        .and_then(Value::as_str)
        .and_then(|status| PAYMENT_ANSWERS.iter().find(|(name, _)| *name == status));
    if let Some((name, status)) = payment {
        return (*status, Cow::Borrowed(*name));
    }
    let status = match error.code {
        ErrorCode::INVALID_PARAMS => RequestStatus::InvalidParams,
        ErrorCode::METHOD_NOT_FOUND => RequestStatus::MethodNotFound,
        ErrorCode::RESOURCE_NOT_FOUND => RequestStatus::ResourceNotFound,
        ErrorCode::INTERNAL_ERROR => RequestStatus::InternalError,
        ErrorCode(REQUEST_CANCELLED) => RequestStatus::Cancelled,
        _ => RequestStatus::ProtocolError,
    };
    (status, Cow::Owned(error.code.0.to_string()))
}

/// Runs `body` with its panics caught (and their messages kept off stderr: they may quote
/// secrets).
async fn caught<T>(body: impl Future<Output = Result<T, ErrorData>>) -> Answer<T> {
    match tool_panics::as_tool(AssertUnwindSafe(body).catch_unwind()).await {
        Ok(result) => Answer::Done(result),
        Err(panic) => Answer::Panicked(crate::outcome::panic_message(panic.as_ref())),
    }
}

/// A request being answered. Dropped unfinished (the client went away and rmcp dropped the
/// future), it is recorded as cancelled.
struct Pending<'a> {
    analytics: &'a Analytics,
    raw: Option<Box<RawRequest>>,
    started: Stopwatch,
}

impl Pending<'_> {
    fn finish<T>(mut self, answer: Answer<T>) -> Result<T, ErrorData> {
        let (status, error) = answer.classify();
        let mut raw = self.raw.take().expect("finished once");
        raw.complete(self.started.elapsed(), status, error);
        self.analytics.record_request(raw);
        answer.into_result()
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(mut raw) = self.raw.take() {
            let (status, error) = Answer::<()>::Cancelled.classify();
            raw.complete(self.started.elapsed(), status, error);
            self.analytics.record_request(raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_are_classified_by_their_json_rpc_code() {
        for (error, status, error_type) in [
            (
                ErrorData::invalid_params("no prompt x", None),
                RequestStatus::InvalidParams,
                "-32602",
            ),
            (
                ErrorData::resource_not_found("no resource", None),
                RequestStatus::ResourceNotFound,
                "-32002",
            ),
            (
                ErrorData::new(ErrorCode::METHOD_NOT_FOUND, "logging/setLevel", None),
                RequestStatus::MethodNotFound,
                "-32601",
            ),
            (
                ErrorData::internal_error("db down", None),
                RequestStatus::InternalError,
                "-32603",
            ),
            (
                ErrorData::new(ErrorCode(-32042), "elicitation required", None),
                RequestStatus::ProtocolError,
                "-32042",
            ),
        ] {
            assert_eq!(classify(&error), (status, Cow::Borrowed(error_type)));
        }
    }

    #[test]
    fn a_payment_answer_in_the_error_data_is_a_payment_status_whatever_its_code() {
        for (answer, status) in PAYMENT_ANSWERS {
            let data = json!({"status": answer, "checkout_url": "https://pay.test/c"});
            let error = ErrorData::new(ErrorCode(-32042), "pay first", Some(data));
            assert_eq!(classify(&error), (status, Cow::Borrowed(answer)));
        }
        let other = ErrorData::invalid_params("x", Some(json!({"status": "teapot"})));
        assert_eq!(classify(&other).0, RequestStatus::InvalidParams);
    }

    #[test]
    fn a_panic_answers_an_internal_error_and_a_cancellation_the_cancelled_code() {
        let panicked: Answer<()> = Answer::Panicked("boom".into());
        assert_eq!(
            panicked.classify(),
            (RequestStatus::Panic, Some(("panic".into(), "boom".into())))
        );
        assert_eq!(
            panicked.into_result().unwrap_err().code,
            ErrorCode::INTERNAL_ERROR
        );
        let cancelled: Answer<()> = Answer::Cancelled;
        assert_eq!(cancelled.classify().0, RequestStatus::Cancelled);
        assert_eq!(cancelled.into_result().unwrap_err().code, ErrorCode(-32800));
    }
}
