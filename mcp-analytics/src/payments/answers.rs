//! The answers of a paid tool that did not run: `payment_required` (with the checkout link, as
//! a result or as a URL elicitation), `sign_in_required` and `payment_unavailable`; and the same
//! answers as the JSON-RPC error of a paid prompt or resource ([`PAYMENT_ERROR`]).

use rmcp::{
    ErrorData,
    model::{
        CallToolResult, ContentBlock, ElicitRequest, ElicitRequestParams, ErrorCode, InputRequest,
        InputRequests, InputRequiredResult,
    },
};
use serde_json::json;

use super::{
    domain::Granted, pricing::ResolvedPricing, provider::CheckoutInfo, report::format_amount,
};
use crate::{event::Status, outcome::Outcome};

/// The JSON-RPC error code of a paid prompt or resource that did not run for a payment reason
/// (`prompts/get` and `resources/read` have no error result like a tool's): -32402, after
/// HTTP's 402 Payment Required. The message is the text a paid tool answers with, and `data` is
/// the same JSON as its structured content: `{"status": "payment_required" | "sign_in_required"
/// | "payment_processing" | "payment_method_required" | "payment_unavailable", "tool": ...}`,
/// where `tool` is `prompt:<name>` or `resource:<uri>`.
pub const PAYMENT_ERROR: ErrorCode = ErrorCode(-32402);

/// A refusal result (the payment answer as text and structured content) as the JSON-RPC error
/// of a prompt or resource.
pub(crate) fn refusal_error(result: CallToolResult) -> ErrorData {
    let message: String = result
        .content
        .iter()
        .filter_map(|content| content.as_text().map(|text| text.text.as_str()))
        .collect();
    ErrorData::new(PAYMENT_ERROR, message, result.structured_content)
}

/// `payment_required` with a checkout link: an error result clients and models can act on, or
/// for clients that take it, a URL elicitation (`InputRequiredResult`) whose retry re-enters
/// the gate (the purchase is confirmed server-side, never from the client's answer).
pub(super) fn payment_required(
    pricing: &ResolvedPricing,
    session: &CheckoutInfo,
    url_elicitation: bool,
) -> Outcome {
    let url = session.url.clone().unwrap_or_default();
    let amount = match (session.amount_total, &session.currency) {
        (Some(amount), Some(currency)) => Some(format_amount(amount, currency)),
        _ => None,
    };
    let calls = match pricing.granted() {
        Granted::Credits(calls) => Some(calls),
        Granted::Unlimited | Granted::Subscription => None,
    };
    let terms = match (&amount, calls) {
        (Some(amount), Some(calls)) => format!(" ({amount} for {})", plural_calls(calls)),
        (Some(amount), None) => format!(" ({amount})"),
        (None, Some(calls)) => format!(" ({} per purchase)", plural_calls(calls)),
        (None, None) => String::new(),
    };
    let text = format!(
        "Payment required to use `{tool}`: {reason}{terms}. Complete the payment at {url} and then call the tool again.",
        tool = pricing.tool,
        reason = pricing.reason,
    );
    let structured = json!({
        "status": "payment_required",
        "tool": pricing.tool,
        "reason": pricing.reason,
        "mode": pricing.mode.as_str(),
        "checkout_url": url,
        "checkout_session_id": session.id,
        "amount": session.amount_total,
        "currency": session.currency,
        "expires_at": session.expires_at,
        "calls_granted": calls,
    });
    let detail = format!("checkout {}", session.id);
    if url_elicitation && !url.is_empty() {
        let request = ElicitRequest::new(ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message: text,
            url,
            elicitation_id: session.id.clone(),
        });
        let requests =
            InputRequests::from([("payment".to_owned(), InputRequest::Elicitation(request))]);
        let response = InputRequiredResult::new(Some(requests), None);
        return Outcome::refused(
            response,
            Status::PaymentRequired,
            "payment_required",
            detail,
        );
    }
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    Outcome::refused(result, Status::PaymentRequired, "payment_required", detail)
}

/// "1 call", "50 calls".
fn plural_calls(calls: i64) -> String {
    match calls {
        1 => "1 call".to_owned(),
        calls => format!("{calls} calls"),
    }
}

pub(super) fn sign_in_required(tool: &str) -> Outcome {
    let text = format!(
        "Sign-in required: `{tool}` is a paid tool, and paying needs a signed-in user. Connect with an authenticated (OAuth) session and call it again."
    );
    let mut result = CallToolResult::error(vec![ContentBlock::text(text.clone())]);
    result.structured_content = Some(json!({ "status": "sign_in_required", "tool": tool }));
    Outcome::refused(result, Status::PaymentRequired, "sign_in_required", text)
}

pub(super) fn unavailable(tool: &str, why: &str) -> Outcome {
    let text = format!(
        "Payments are unavailable right now, so `{tool}` did not run and nothing was charged. Try again in a minute."
    );
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content =
        Some(json!({ "status": "payment_unavailable", "tool": tool, "retry_after_s": 30 }));
    Outcome::refused(
        result,
        Status::PaymentUnavailable,
        "payment_unavailable",
        why.to_owned(),
    )
}

/// A checkout paid with a delayed method (SEPA, ACH) whose money has not arrived: no new link
/// (the user would pay twice); the call runs once the payment clears.
pub(super) fn payment_processing(pricing: &ResolvedPricing, session: &CheckoutInfo) -> Outcome {
    let text = format!(
        "Your payment for `{tool}` is being processed (bank payments can take a few days). `{tool}` did not run and nothing more was charged; call it again once the payment has cleared.",
        tool = pricing.tool,
    );
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({
        "status": "payment_processing",
        "tool": pricing.tool,
        "checkout_session_id": session.id,
    }));
    Outcome::refused(
        result,
        Status::PaymentRequired,
        "payment_processing",
        format!("checkout {}", session.id),
    )
}

/// A subscriber whose subscription needs its payment fixed (`past_due`, `unpaid`,
/// `incomplete`, `paused`): a link to fix it, never a second subscription.
pub(super) fn payment_method_required(
    pricing: &ResolvedPricing,
    subscription: &str,
    url: Option<&str>,
) -> Outcome {
    let action = match url {
        Some(url) => format!("Update the payment method at {url} and then call the tool again."),
        None => {
            "Update the payment method of the subscription and then call the tool again.".into()
        }
    };
    let text = format!(
        "The subscription for `{tool}` has a payment problem, so `{tool}` did not run. {action}",
        tool = pricing.tool,
    );
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({
        "status": "payment_method_required",
        "tool": pricing.tool,
        "subscription_id": subscription,
        "update_url": url,
    }));
    Outcome::refused(
        result,
        Status::PaymentRequired,
        "payment_method_required",
        format!("subscription {subscription}"),
    )
}
