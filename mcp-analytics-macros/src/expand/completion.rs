//! The completions: `COMPLETIONS` (what each completes), the `dispatch_completion` match and
//! the `ServerHandler` method `complete`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

use super::{at, call_method, context_param};
use crate::ast::{Completion, CompletionTarget};

/// The `Server` items of the completions; nothing when there are none.
pub(super) fn server_items(completions: &[Completion]) -> TokenStream {
    if completions.is_empty() {
        return TokenStream::new();
    }
    let specs = completions.iter().map(|completion| {
        let target = target(completion);
        let argument = &completion.argument;
        quote!(__mcpa::CompletionSpec { target: #target, argument: #argument })
    });
    let arms = completions.iter().map(arm);
    quote! {
        const COMPLETIONS: &'static [__mcpa::CompletionSpec] = &[#(#specs),*];

        async fn dispatch_completion(
            &self,
            completion: __mcpa::CompletionCall<'_>,
        ) -> __mcpa::Result<__mcpa::CompleteResult, __mcpa::ErrorData> {
            match completion.target() {
                #(#arms)*
                _ => completion.none(),
            }
        }
    }
}

/// `complete`, when there are completions.
pub(super) fn handler_methods(completions: &[Completion]) -> TokenStream {
    if completions.is_empty() {
        return TokenStream::new();
    }
    quote! {
        async fn complete(
            &self,
            request: __mcpa::CompleteRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::CompleteResult, __mcpa::ErrorData> {
            __mcpa::complete(self, request, context).await
        }
    }
}

/// `__mcpa::CompletionRef::Prompt("name")` or `__mcpa::CompletionRef::Resource("template")`.
fn target(completion: &Completion) -> TokenStream {
    match &completion.target {
        CompletionTarget::Prompt(name) => quote!(__mcpa::CompletionRef::Prompt(#name)),
        CompletionTarget::Resource(template) => quote!(__mcpa::CompletionRef::Resource(#template)),
    }
}

/// `(target, "argument") => completion.run(|value, cx| <the method's future>).await,`; the
/// value is passed as `&value` to a `&str` parameter.
fn arm(completion: &Completion) -> TokenStream {
    let target = target(completion);
    let argument = &completion.argument;
    let method = &completion.method;
    let by_ref = completion
        .value
        .as_ref()
        .map(|param| matches!(param.ty, syn::Type::Reference(_)));
    let takes_context = completion.takes_context;
    let pass = move |span: Span| {
        let value = by_ref.map(|by_ref| {
            if by_ref {
                quote_spanned!(span=> &value)
            } else {
                quote_spanned!(span=> value)
            }
        });
        let context = takes_context.then(|| quote_spanned!(span=> cx));
        let all = value.into_iter().chain(context);
        quote!(#(#all),*)
    };
    let value = match by_ref {
        Some(_) => quote!(value),
        None => quote!(_),
    };
    let context = context_param(takes_context);
    let mut body = call_method(
        method,
        pass,
        completion.returns.as_ref(),
        "completion_returns",
    );
    if completion.returns.is_none() && by_ref == Some(true) {
        // The future borrows the value: it must own it.
        body = quote!(async move { #body.await });
    }
    let call = quote_spanned! {at(method)=>
        completion.run(|#value, #context| #body).await
    };
    quote!((#target, #argument) => #call,)
}
