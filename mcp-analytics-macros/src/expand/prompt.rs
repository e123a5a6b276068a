//! The prompts: `PROMPTS` (one `PromptSpec` each), the `dispatch_prompt` match and the
//! `ServerHandler` methods `list_prompts` and `get_prompt`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::{args_and_context, at, call_method, paid};
use crate::ast::Prompt;

/// The `Server` items of the prompts; nothing when there are none (the defaults serve none).
pub(super) fn server_items(prompts: &[Prompt]) -> TokenStream {
    if prompts.is_empty() {
        return TokenStream::new();
    }
    let specs = prompts.iter().map(spec);
    let arms = prompts.iter().map(arm);
    quote! {
        const PROMPTS: &'static [__mcpa::PromptSpec] = &[#(#specs),*];

        async fn dispatch_prompt(
            &self,
            prompt: __mcpa::PromptCall<'_>,
        ) -> __mcpa::Result<__mcpa::GetPromptResult, __mcpa::ErrorData> {
            match prompt.name() {
                #(#arms)*
                _ => prompt.unknown(),
            }
        }
    }
}

/// `list_prompts` and `get_prompt`, when there are prompts.
pub(super) fn handler_methods(prompts: &[Prompt]) -> TokenStream {
    if prompts.is_empty() {
        return TokenStream::new();
    }
    quote! {
        async fn list_prompts(
            &self,
            _request: __mcpa::Option<__mcpa::PaginatedRequestParams>,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::ListPromptsResult, __mcpa::ErrorData> {
            __mcpa::list_prompts(self, &context).await
        }
        async fn get_prompt(
            &self,
            request: __mcpa::GetPromptRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::GetPromptResponse, __mcpa::ErrorData> {
            __mcpa::get_prompt(self, request, context).await
        }
    }
}

/// `__mcpa::PromptSpec { ... }` for `prompt`.
fn spec(prompt: &Prompt) -> TokenStream {
    let name = &prompt.name;
    let mut fields = vec![quote!(name: #name,)];
    if let Some(title) = &prompt.title {
        fields.push(quote!(title: __mcpa::Some(#title),));
    }
    if let Some(description) = &prompt.description {
        fields.push(quote!(description: __mcpa::Some(#description),));
    }
    if let Some(ty) = &prompt.args {
        fields.push(quote_spanned!(at(ty)=> arguments: __mcpa::prompt_arguments::<#ty>,));
    }
    if let Some(pricing) = &prompt.paid {
        let pricing = paid::pricing(pricing);
        fields.push(quote!(paid: __mcpa::Some(&#pricing),));
    }
    quote! {
        __mcpa::PromptSpec {
            #(#fields)*
            ..__mcpa::PromptSpec::DEFAULT
        }
    }
}

/// `"name" => prompt.run(|args: Args, cx| <the method's future>).await,`, as for a tool.
fn arm(prompt: &Prompt) -> TokenStream {
    let name = &prompt.name;
    let method = &prompt.method;
    let (context, pass) = args_and_context(prompt.args.is_some(), prompt.takes_context);
    let body = call_method(method, pass, prompt.returns.as_ref(), "prompt_returns");
    let call = match &prompt.args {
        Some(ty) => quote_spanned! {at(ty)=>
            prompt.run(|args: #ty, #context| #body).await
        },
        None => quote_spanned! {at(method)=>
            prompt.run_without_args(|#context| #body).await
        },
    };
    quote!(#name => #call,)
}
