//! The payment gate in front of a paid prompt or resource: the same admission, credits,
//! subscriptions and metering as a paid tool (a credit is used, or a meter event recorded, only
//! when the prompt or resource answered without an error). A refusal is the JSON-RPC error
//! [`PAYMENT_ERROR`](crate::payments::PAYMENT_ERROR) carrying the answer a tool gives, or, for
//! clients that take URL elicitation (MCP 2026-07-28), the same `InputRequiredResult`.

use std::future::Future;

use rmcp::{
    ErrorData,
    model::{CallToolResponse, InputRequiredResult},
};

use super::{RequestContext, Server, handler::payer};
use crate::{
    CallContext,
    capture::Capture,
    payments::{Admission, pricing::PaidTool, refusal_error},
};

/// What a gated request answers with.
pub(super) enum Gated<T> {
    /// It ran (it was free, or admitted).
    Ran(T),
    /// Not admitted yet: the client is asked to pay through URL elicitation.
    InputRequired(InputRequiredResult),
}

/// Runs `serve` with the call's context, behind the payment gate when `paid` is set.
pub(super) async fn gated<S, T, F, Fut>(
    server: &S,
    paid: Option<PaidTool>,
    context: RequestContext,
    serve: F,
) -> Result<Gated<T>, ErrorData>
where
    S: Server,
    F: FnOnce(CallContext) -> Fut,
    Fut: Future<Output = Result<T, ErrorData>>,
{
    let capture = Capture::read(&context);
    let Some(paid) = paid else {
        let call_context = CallContext::new(context, capture.user_id, capture.session);
        return serve(call_context).await.map(Gated::Ran);
    };
    let payer = payer(&capture, &context);
    match server.payments().admit(paid, payer).await {
        Admission::Refuse(outcome) => match outcome.response {
            Ok(CallToolResponse::InputRequired(asked)) => Ok(Gated::InputRequired(asked)),
            Ok(CallToolResponse::Complete(answer)) => Err(refusal_error(answer)),
            Ok(other) => Err(ErrorData::internal_error(
                format!("unexpected payment answer: {other:?}"),
                None,
            )),
            Err(error) => Err(error),
        },
        Admission::Run(ticket) => {
            let call_context = CallContext::new(context, capture.user_id, capture.session);
            let result = serve(call_context).await;
            ticket.settle_with(result.is_ok()).await;
            result.map(Gated::Ran)
        }
    }
}
