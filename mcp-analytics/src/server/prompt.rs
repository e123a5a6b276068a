//! Prompts: the bodies of `prompts/list` and `prompts/get`, one `prompts/get` on its way to a
//! `#[prompt]` method ([`PromptCall`]), and what such a method may return
//! ([`IntoGetPromptResult`]).

use std::future::Future;

use rmcp::{
    ErrorData,
    model::{
        GetPromptRequestParams, GetPromptResponse, GetPromptResult, ListPromptsResult,
        PromptMessage, Role,
    },
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    RequestContext, Server,
    catalog::Catalog,
    caught,
    lists::listing,
    observe::{Method, observed},
    paid::{Gated, gated},
};
use crate::{CallContext, ClientText, spec::PromptSpec};

/// `ServerHandler::list_prompts`: every prompt.
pub async fn list_prompts<S: Server>(
    server: &S,
    context: &RequestContext,
) -> Result<ListPromptsResult, ErrorData> {
    observed(server, Method::PromptsList, None, context, async {
        let prompts = Catalog::of::<S>().prompts.clone();
        Ok(listing(ListPromptsResult::with_all_items(prompts), context))
    })
    .await
}

/// `ServerHandler::get_prompt`: runs the prompt (behind the payment gate when it is paid).
pub async fn get_prompt<S: Server>(
    server: &S,
    request: GetPromptRequestParams,
    context: RequestContext,
) -> Result<GetPromptResponse, ErrorData> {
    let GetPromptRequestParams {
        name, arguments, ..
    } = request;
    let arguments = Value::Object(arguments.unwrap_or_default());
    let observing = context.clone();
    observed(server, Method::PromptsGet, Some(&name), &observing, async {
        let spec = S::PROMPTS.iter().find(|spec| spec.name == name);
        let paid = spec.and_then(PromptSpec::paid_tool);
        let answer = gated(server, paid, context, |call_context| {
            let prompt = PromptCall {
                name: &name,
                description: spec.and_then(|spec| spec.description),
                arguments: &arguments,
                context: call_context,
            };
            server.dispatch_prompt(prompt)
        })
        .await?;
        Ok(match answer {
            Gated::Ran(result) => GetPromptResponse::Complete(result),
            Gated::InputRequired(asked) => GetPromptResponse::InputRequired(asked),
        })
    })
    .await
}

/// A `prompts/get` on its way to a prompt method.
pub struct PromptCall<'a> {
    name: &'a str,
    description: Option<&'static str>,
    arguments: &'a Value,
    context: CallContext,
}

impl<'a> PromptCall<'a> {
    /// The requested prompt name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Deserializes the arguments into `A` and runs `prompt`; bad arguments are an invalid
    /// params error.
    pub async fn run<A, F, Fut, R>(self, prompt: F) -> Result<GetPromptResult, ErrorData>
    where
        A: DeserializeOwned,
        F: FnOnce(A, CallContext) -> Fut,
        Fut: Future<Output = R>,
        R: IntoGetPromptResult,
    {
        let args = A::deserialize(self.arguments).map_err(|error| {
            ErrorData::invalid_params(
                format!(
                    "invalid arguments for prompt `{}`: {error}",
                    ClientText::new(self.name)
                ),
                None,
            )
        })?;
        let description = self.description;
        finish(caught(prompt(args, self.context)).await?, description)
    }

    /// Runs a prompt that takes no arguments (any arguments sent are ignored).
    pub async fn run_without_args<F, Fut, R>(self, prompt: F) -> Result<GetPromptResult, ErrorData>
    where
        F: FnOnce(CallContext) -> Fut,
        Fut: Future<Output = R>,
        R: IntoGetPromptResult,
    {
        let description = self.description;
        finish(caught(prompt(self.context)).await?, description)
    }

    /// The answer for a name no prompt has.
    pub fn unknown(self) -> Result<GetPromptResult, ErrorData> {
        Err(ErrorData::invalid_params(
            format!("prompt not found: {}", ClientText::new(self.name)),
            None,
        ))
    }
}

/// The prompt's result, described by the prompt's description unless it has its own.
fn finish(
    result: impl IntoGetPromptResult,
    description: Option<&'static str>,
) -> Result<GetPromptResult, ErrorData> {
    let mut result = result.into_get_prompt_result()?;
    if result.description.is_none() {
        result.description = description.map(str::to_owned);
    }
    Ok(result)
}

/// What a `#[prompt]` method may return.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a prompt result",
    note = "a `#[prompt]` method returns `String` (one user message), `PromptMessage`, `Vec<PromptMessage>`, `GetPromptResult`, or `Result<_, ErrorData>` of one of them"
)]
pub trait IntoGetPromptResult {
    /// The `prompts/get` result (or the JSON-RPC error) this value stands for.
    fn into_get_prompt_result(self) -> Result<GetPromptResult, ErrorData>;
}

impl IntoGetPromptResult for GetPromptResult {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, ErrorData> {
        Ok(self)
    }
}

impl IntoGetPromptResult for Vec<PromptMessage> {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, ErrorData> {
        Ok(GetPromptResult::new(self))
    }
}

impl IntoGetPromptResult for PromptMessage {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, ErrorData> {
        Ok(GetPromptResult::new(vec![self]))
    }
}

impl IntoGetPromptResult for String {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, ErrorData> {
        PromptMessage::new_text(Role::User, self).into_get_prompt_result()
    }
}

impl IntoGetPromptResult for &'static str {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, ErrorData> {
        self.to_owned().into_get_prompt_result()
    }
}

impl<T: IntoGetPromptResult> IntoGetPromptResult for Result<T, ErrorData> {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, ErrorData> {
        self?.into_get_prompt_result()
    }
}

/// A prompt method's result, checked to be an [`IntoGetPromptResult`]: what `#[mcp_server]`
/// wraps each awaited prompt method in, spanned at its return type (like
/// [`returns`](super::returns) for tools).
pub fn prompt_returns<R: IntoGetPromptResult>(value: R) -> PromptReturned<R> {
    PromptReturned {
        value,
        convert: R::into_get_prompt_result,
    }
}

/// A result passed through [`prompt_returns`]: converts like the value it holds.
pub struct PromptReturned<R> {
    value: R,
    convert: fn(R) -> Result<GetPromptResult, ErrorData>,
}

#[diagnostic::do_not_recommend]
impl<R> IntoGetPromptResult for PromptReturned<R> {
    fn into_get_prompt_result(self) -> Result<GetPromptResult, ErrorData> {
        (self.convert)(self.value)
    }
}
