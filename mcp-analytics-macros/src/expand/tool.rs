//! One `#[tool]`: its `ToolSpec` and its arm of the `dispatch` match.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::{args_and_context, at, call_method, paid};
use crate::ast::{Annotations, Tool};

/// `__mcpa::ToolSpec { ... }` for `tool`.
pub(super) fn spec(tool: &Tool) -> TokenStream {
    let name = &tool.name;
    let mut fields = vec![quote!(name: #name,)];
    if let Some(title) = &tool.title {
        fields.push(quote!(title: __mcpa::Some(#title),));
    }
    if let Some(description) = &tool.description {
        fields.push(quote!(description: __mcpa::Some(#description),));
    }
    if let Some(ty) = &tool.args {
        fields.push(quote_spanned!(ty.span()=> input_schema: __mcpa::input_schema::<#ty>,));
    }
    if let Some(ty) = &tool.output {
        fields.push(quote_spanned!(ty.span()=>
            output_schema: __mcpa::Some(__mcpa::output_schema::<#ty>),
        ));
    }
    if let Some(annotations) = annotations(&tool.annotations) {
        fields.push(quote!(annotations: #annotations,));
    }
    if let Some(meta) = &tool.meta {
        fields.push(quote_spanned!(meta.span()=>
            meta: __mcpa::Some(|| __mcpa::tool_meta(#meta)),
        ));
    }
    if !tool.track_results {
        fields.push(quote!(track_results: false,));
    }
    if !tool.redact.is_empty() {
        let redact = &tool.redact;
        fields.push(quote!(redact: &[#(#redact),*],));
    }
    if let Some(pricing) = &tool.paid {
        let pricing = paid::pricing(pricing);
        fields.push(quote!(paid: __mcpa::Some(&#pricing),));
    }
    quote! {
        __mcpa::ToolSpec {
            #(#fields)*
            ..__mcpa::ToolSpec::DEFAULT
        }
    }
}

/// `__mcpa::Annotations { ... }`, unless no annotation is set.
fn annotations(annotations: &Annotations) -> Option<TokenStream> {
    let Annotations {
        title,
        read_only,
        destructive,
        idempotent,
        open_world,
    } = annotations;
    let fields: Vec<TokenStream> = [
        title
            .as_ref()
            .map(|title| quote!(title: __mcpa::Some(#title),)),
        read_only
            .as_ref()
            .map(|hint| quote!(read_only_hint: __mcpa::Some(#hint),)),
        destructive
            .as_ref()
            .map(|hint| quote!(destructive_hint: __mcpa::Some(#hint),)),
        idempotent
            .as_ref()
            .map(|hint| quote!(idempotent_hint: __mcpa::Some(#hint),)),
        open_world
            .as_ref()
            .map(|hint| quote!(open_world_hint: __mcpa::Some(#hint),)),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!fields.is_empty()).then(|| {
        quote! {
            __mcpa::Annotations {
                #(#fields)*
                ..__mcpa::Annotations::NONE
            }
        }
    })
}

/// `"name" => call.run(|args: Args, cx| <the method's future>).await,` (see [`call_method`]).
///
/// The `run` call sits at the argument type: a type that is not `DeserializeOwned` is an error
/// there. Only its location is the user's: the tokens resolve at the call site, so `call`,
/// `args` and `cx` are the same variables when the impl is written by a `macro_rules!` macro
/// that passes the types in.
pub(super) fn arm(tool: &Tool) -> TokenStream {
    let name = &tool.name;
    let method = &tool.method;
    let (context, pass) = args_and_context(tool.args.is_some(), tool.takes_context);
    let body = call_method(method, pass, tool.returns.as_ref(), "returns");
    let call = match &tool.args {
        Some(ty) => quote_spanned! {at(ty)=>
            call.run(|args: #ty, #context| #body).await
        },
        None => quote_spanned! {at(method)=>
            call.run_without_args(|#context| #body).await
        },
    };
    quote!(#name => #call,)
}
