//! Completions: the body of `completion/complete`, one request on its way to a `#[complete]`
//! method ([`CompletionCall`]), and what such a method may return ([`IntoCompletion`]).

use std::future::Future;

use rmcp::{
    ErrorData,
    model::{CompleteRequestParams, CompleteResult, CompletionInfo, Reference},
};

use super::{
    RequestContext, Server,
    catalog::Catalog,
    caught,
    observe::{Method, observed},
};
use crate::{CallContext, ClientText, capture::Capture, spec::CompletionRef};

/// `ServerHandler::complete`: candidate values for an argument of a prompt or a variable of a
/// resource template. A known prompt or template without a completion for the argument gets
/// none; an unknown one is an invalid params error.
pub async fn complete<S: Server>(
    server: &S,
    request: CompleteRequestParams,
    context: RequestContext,
) -> Result<CompleteResult, ErrorData> {
    let CompleteRequestParams {
        r#ref, argument, ..
    } = request;
    let target = match &r#ref {
        Reference::Prompt(prompt) => Ok(CompletionRef::Prompt(&prompt.name)),
        Reference::Resource(resource) => Ok(CompletionRef::Resource(&resource.uri)),
        other => Err(ErrorData::invalid_params(
            format!("unknown completion reference {}", other.reference_type()),
            None,
        )),
    };
    let name = target
        .as_ref()
        .ok()
        .map(|(CompletionRef::Prompt(name) | CompletionRef::Resource(name))| *name);
    let observing = context.clone();
    observed(
        server,
        Method::CompletionComplete,
        name,
        &observing,
        async {
            let target = target?;
            let (CompletionRef::Prompt(name) | CompletionRef::Resource(name)) = target;
            if Catalog::of::<S>().arguments_of(target).is_none() {
                let what = match target {
                    CompletionRef::Prompt(_) => "prompt",
                    CompletionRef::Resource(_) => "resource template",
                };
                return Err(ErrorData::invalid_params(
                    format!("{what} not found: {}", ClientText::new(name)),
                    None,
                ));
            }
            let capture = Capture::read(&context);
            let completion = CompletionCall {
                target,
                argument: &argument.name,
                value: argument.value.clone(),
                context: CallContext::new(context, capture.user_id, capture.session),
            };
            server.dispatch_completion(completion).await
        },
    )
    .await
}

/// A `completion/complete` on its way to a completion method.
pub struct CompletionCall<'a> {
    target: CompletionRef<'a>,
    argument: &'a str,
    value: String,
    context: CallContext,
}

impl<'a> CompletionCall<'a> {
    /// The prompt or resource template, and the argument being completed.
    pub fn target(&self) -> (CompletionRef<'a>, &'a str) {
        (self.target, self.argument)
    }

    /// Runs `complete` with the value typed so far.
    pub async fn run<F, Fut, R>(self, complete: F) -> Result<CompleteResult, ErrorData>
    where
        F: FnOnce(String, CallContext) -> Fut,
        Fut: Future<Output = R>,
        R: IntoCompletion,
    {
        caught(complete(self.value, self.context))
            .await?
            .into_complete_result()
    }

    /// The answer for an argument without a completion: no values.
    pub fn none(self) -> Result<CompleteResult, ErrorData> {
        Ok(CompleteResult::default())
    }
}

/// What a `#[complete]` method may return: the candidate values (at most 100 are sent, with the
/// total and `hasMore`), a `CompletionInfo` or `CompleteResult` of its own, or
/// `Result<_, ErrorData>` of one of them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a list of completions",
    note = "a `#[complete]` method returns `Vec<String>`, `Vec<&'static str>`, `CompletionInfo`, `CompleteResult`, or `Result<_, ErrorData>` of one of them"
)]
pub trait IntoCompletion {
    /// The `completion/complete` result (or the JSON-RPC error) this value stands for.
    fn into_complete_result(self) -> Result<CompleteResult, ErrorData>;
}

impl IntoCompletion for CompleteResult {
    fn into_complete_result(self) -> Result<CompleteResult, ErrorData> {
        Ok(self)
    }
}

impl IntoCompletion for CompletionInfo {
    fn into_complete_result(self) -> Result<CompleteResult, ErrorData> {
        if self.values.len() <= CompletionInfo::MAX_VALUES {
            return Ok(CompleteResult::new(self));
        }
        let total = self.total;
        let mut capped = self.values.into_complete_result()?;
        capped.completion.total = total.or(capped.completion.total);
        Ok(capped)
    }
}

impl IntoCompletion for Vec<String> {
    fn into_complete_result(mut self) -> Result<CompleteResult, ErrorData> {
        let total = u32::try_from(self.len()).unwrap_or(u32::MAX);
        let has_more = self.len() > CompletionInfo::MAX_VALUES;
        self.truncate(CompletionInfo::MAX_VALUES);
        let info = CompletionInfo::with_pagination(self, Some(total), has_more)
            .map_err(|error| ErrorData::internal_error(error, None))?;
        Ok(CompleteResult::new(info))
    }
}

impl IntoCompletion for Vec<&'static str> {
    fn into_complete_result(self) -> Result<CompleteResult, ErrorData> {
        self.into_iter()
            .map(str::to_owned)
            .collect::<Vec<String>>()
            .into_complete_result()
    }
}

impl<T: IntoCompletion> IntoCompletion for Result<T, ErrorData> {
    fn into_complete_result(self) -> Result<CompleteResult, ErrorData> {
        self?.into_complete_result()
    }
}

/// A completion method's result, checked to be an [`IntoCompletion`]: what `#[mcp_server]`
/// wraps each awaited completion method in, spanned at its return type.
pub fn completion_returns<R: IntoCompletion>(value: R) -> CompletionReturned<R> {
    CompletionReturned {
        value,
        convert: R::into_complete_result,
    }
}

/// A result passed through [`completion_returns`]: converts like the value it holds.
pub struct CompletionReturned<R> {
    value: R,
    convert: fn(R) -> Result<CompleteResult, ErrorData>,
}

#[diagnostic::do_not_recommend]
impl<R> IntoCompletion for CompletionReturned<R> {
    fn into_complete_result(self) -> Result<CompleteResult, ErrorData> {
        (self.convert)(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_a_hundred_values_are_sent_with_the_total() {
        let values: Vec<String> = (0..150).map(|n| n.to_string()).collect();
        let result = values.into_complete_result().unwrap();
        assert_eq!(result.completion.values.len(), 100);
        assert_eq!(result.completion.total, Some(150));
        assert_eq!(result.completion.has_more, Some(true));
        let few = vec!["a", "b"].into_complete_result().unwrap();
        assert_eq!(few.completion.values, ["a", "b"]);
        assert_eq!(
            (few.completion.total, few.completion.has_more),
            (Some(2), Some(false))
        );
    }
}
