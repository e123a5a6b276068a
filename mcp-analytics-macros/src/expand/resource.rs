//! The resources: `RESOURCES` and `RESOURCE_TEMPLATES` (one spec each), the
//! `dispatch_resource` match and the `ServerHandler` methods `list_resources`,
//! `list_resource_templates`, `read_resource` and (for subscribable ones) `subscribe` and
//! `unsubscribe`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Index;

use super::{at, call_method, context_param, paid};
use crate::ast::{Resource, Uri};

/// The `Server` items of the resources; nothing when there are none.
pub(super) fn server_items(resources: &[Resource]) -> TokenStream {
    if resources.is_empty() {
        return TokenStream::new();
    }
    let (fixed, templates): (Vec<&Resource>, Vec<&Resource>) = resources
        .iter()
        .partition(|resource| matches!(resource.uri, Uri::Fixed(_)));
    let fixed = (!fixed.is_empty()).then(|| {
        let specs = fixed.iter().map(|resource| spec(resource, quote!(uri)));
        quote!(const RESOURCES: &'static [__mcpa::ResourceSpec] = &[#(#specs),*];)
    });
    let templates = (!templates.is_empty()).then(|| {
        let specs = templates
            .iter()
            .map(|resource| spec(resource, quote!(uri_template)));
        quote!(const RESOURCE_TEMPLATES: &'static [__mcpa::ResourceTemplateSpec] = &[#(#specs),*];)
    });
    let arms = resources.iter().map(arm);
    quote! {
        #fixed
        #templates

        async fn dispatch_resource(
            &self,
            read: __mcpa::ResourceCall<'_>,
        ) -> __mcpa::Result<__mcpa::ReadResourceResult, __mcpa::ErrorData> {
            match read.resource() {
                #(#arms)*
                _ => read.not_found(),
            }
        }
    }
}

/// The resource methods of `ServerHandler`, when there are resources.
pub(super) fn handler_methods(resources: &[Resource]) -> TokenStream {
    if resources.is_empty() {
        return TokenStream::new();
    }
    let subscriptions = resources.iter().any(|r| r.subscribe).then(|| {
        quote! {
            async fn subscribe(
                &self,
                request: __mcpa::SubscribeRequestParams,
                context: __mcpa::RequestContext,
            ) -> __mcpa::Result<(), __mcpa::ErrorData> {
                __mcpa::subscribe(self, request, context).await
            }
            async fn unsubscribe(
                &self,
                request: __mcpa::UnsubscribeRequestParams,
                context: __mcpa::RequestContext,
            ) -> __mcpa::Result<(), __mcpa::ErrorData> {
                __mcpa::unsubscribe(self, request, context).await
            }
        }
    });
    quote! {
        async fn list_resources(
            &self,
            _request: __mcpa::Option<__mcpa::PaginatedRequestParams>,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::ListResourcesResult, __mcpa::ErrorData> {
            __mcpa::list_resources(self, &context).await
        }
        async fn list_resource_templates(
            &self,
            _request: __mcpa::Option<__mcpa::PaginatedRequestParams>,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::ListResourceTemplatesResult, __mcpa::ErrorData> {
            __mcpa::list_resource_templates(self, &context).await
        }
        async fn read_resource(
            &self,
            request: __mcpa::ReadResourceRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::ReadResourceResponse, __mcpa::ErrorData> {
            __mcpa::read_resource(self, request, context).await
        }
        #subscriptions
    }
}

/// `__mcpa::ResourceSpec { uri: ... }` or `__mcpa::ResourceTemplateSpec { uri_template: ... }`.
fn spec(resource: &Resource, key: TokenStream) -> TokenStream {
    let uri = resource.uri.lit();
    let name = &resource.name;
    let mut fields = vec![quote!(#key: #uri,), quote!(name: #name,)];
    if let Some(title) = &resource.title {
        fields.push(quote!(title: __mcpa::Some(#title),));
    }
    if let Some(description) = &resource.description {
        fields.push(quote!(description: __mcpa::Some(#description),));
    }
    if let Some(mime_type) = &resource.mime_type {
        fields.push(quote!(mime_type: __mcpa::Some(#mime_type),));
    }
    if resource.subscribe {
        fields.push(quote!(subscribe: true,));
    }
    if let Some(pricing) = &resource.paid {
        let pricing = paid::pricing(pricing);
        fields.push(quote!(paid: __mcpa::Some(&#pricing),));
    }
    let ty = match resource.uri {
        Uri::Fixed(_) => quote!(ResourceSpec),
        Uri::Template(..) => quote!(ResourceTemplateSpec),
    };
    quote! {
        __mcpa::#ty {
            #(#fields)*
            ..__mcpa::#ty::DEFAULT
        }
    }
}

/// `"uri" => read.run(|cx| <the method's future>).await,`; for a template, its variables are
/// parsed first, each into its parameter's type (`read.variable::<T>("id")?`, spanned at `T`:
/// a type that cannot be parsed from a string is an error there).
fn arm(resource: &Resource) -> TokenStream {
    let uri = resource.uri.lit();
    let method = &resource.method;
    let variables = resource.params.iter().map(|param| {
        let ty = &param.ty;
        let name = param.name.to_string();
        quote_spanned!(at(ty)=> read.variable::<#ty>(#name)?,)
    });
    let vars = (!resource.params.is_empty()).then(|| quote!(let vars = (#(#variables)*);));
    let count = resource.params.len();
    let takes_context = resource.takes_context;
    let pass = move |span: Span| {
        let values = (0..count).map(|index| {
            let index = Index {
                index: index as u32,
                span,
            };
            quote_spanned!(span=> vars.#index)
        });
        let context = takes_context.then(|| quote_spanned!(span=> cx));
        let all = values.chain(context);
        quote!(#(#all),*)
    };
    let context = context_param(resource.takes_context);
    let body = call_method(method, pass, resource.returns.as_ref(), "resource_returns");
    let call = quote_spanned! {at(method)=>
        read.run(|#context| #body).await
    };
    match vars {
        Some(vars) => quote! {
            #uri => {
                #vars
                #call
            }
        },
        None => quote!(#uri => #call,),
    }
}
