//! Writes the code: the impl block without our attributes, an `__private::Server` impl (server
//! info, one `ToolSpec` per tool, the dispatch `match`) and a `ServerHandler` impl whose methods
//! each forward to one runtime body.
//! Everything else is a call into `::mcp_analytics::__private`. On any mistake the same impls
//! are written without tools, next to the errors, so one mistake gives one error and the rest
//! of the crate (and the IDE) still sees a server.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::{
    ast::{Annotations, Grant, Mode, Price, Pricing, Server, Tool},
    attr::{self, tool::MARKER},
    check,
    ctxt::Ctxt,
};

/// `#[mcp_server(args)] item`: parse → model → check → expand.
pub(crate) fn mcp_server(args: TokenStream, item: TokenStream) -> TokenStream {
    let item_impl: syn::ItemImpl = match syn::parse2(item.clone()) {
        Ok(item_impl) => item_impl,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[mcp_server]` goes on an inherent impl block: `#[mcp_server] impl MyServer { ... }`",
            )
            .into_compile_error();
            return quote!(#item #error);
        }
    };
    let mut cx = Ctxt::new();
    check::placement(&item_impl, &mut cx);
    let server = attr::server::read(args, item_impl, &mut cx);
    check::server(&server, &mut cx);
    match cx.check() {
        Ok(()) => generate(&server, &server.tools),
        Err(error) => fallback(&server, &error),
    }
}

/// `#[tool]` or `#[paid]` outside `#[mcp_server]`: an error, and the item unchanged.
pub(crate) fn misplaced(name: &str, args: TokenStream, item: TokenStream) -> TokenStream {
    if args.to_string() == MARKER {
        return item; // left by `#[mcp_server]`, which already read the real options
    }
    let message = format!(
        "`#[{name}]` only works on a method inside an `#[mcp_server]` impl block: put `#[mcp_server]` on the impl"
    );
    let error = syn::Error::new(Span::call_site(), message).into_compile_error();
    quote!(#error #item)
}

/// The errors, plus the impls of a server without tools (thiserror's `fallback`): code that
/// serves the server still compiles, so the errors are the only ones. Trait or generic impl
/// blocks get no impls (they would only add errors).
fn fallback(server: &Server, error: &syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    let item = &server.item;
    if item.trait_.is_some() || !item.generics.params.is_empty() {
        return quote!(#item #error);
    }
    let impls = generate(server, &[]);
    quote!(#impls #error)
}

fn generate(server: &Server, tools: &[Tool]) -> TokenStream {
    let item = &server.item;
    let self_ty = &item.self_ty;
    let info = server_info(server);
    let specs = tools.iter().map(tool_spec);
    let arms = tools.iter().map(dispatch_arm);
    let analytics = server.analytics.as_ref().map(|expr| {
        let method = quote_spanned! {expr.span()=>
            fn analytics(&self) -> &::mcp_analytics::Analytics {
                &#expr
            }
        };
        quote! {
            const GLOBAL_ANALYTICS: bool = false;
            #method
        }
    });
    let payments = server.payments.as_ref().map(|expr| {
        let method = quote_spanned! {expr.span()=>
            fn payments(&self) -> &::mcp_analytics::Payments {
                &#expr
            }
        };
        quote! {
            const GLOBAL_PAYMENTS: bool = false;
            #method
        }
    });
    let handler = server.server_handler.then(|| {
        quote! {
            #[automatically_derived]
            impl __mcpa::ServerHandler for #self_ty {
                fn get_info(&self) -> __mcpa::ServerConfig {
                    __mcpa::server_config::<Self>()
                }
                fn get_tool(&self, name: &str) -> __mcpa::Option<__mcpa::Tool> {
                    __mcpa::get_tool::<Self>(name)
                }
                async fn initialize(
                    &self,
                    request: __mcpa::InitializeRequestParams,
                    context: __mcpa::RequestContext,
                ) -> __mcpa::Result<__mcpa::InitializeResult, __mcpa::ErrorData> {
                    __mcpa::initialize(self, request, context).await
                }
                async fn discover(
                    &self,
                    context: __mcpa::RequestContext,
                ) -> __mcpa::Result<__mcpa::DiscoverResult, __mcpa::ErrorData> {
                    __mcpa::discover(self, context).await
                }
                async fn ping(
                    &self,
                    context: __mcpa::RequestContext,
                ) -> __mcpa::Result<(), __mcpa::ErrorData> {
                    __mcpa::ping(self, context).await
                }
                async fn set_level(
                    &self,
                    request: __mcpa::SetLevelRequestParams,
                    context: __mcpa::RequestContext,
                ) -> __mcpa::Result<(), __mcpa::ErrorData> {
                    __mcpa::set_level(self, request, context).await
                }
                async fn list_tools(
                    &self,
                    request: __mcpa::Option<__mcpa::PaginatedRequestParams>,
                    context: __mcpa::RequestContext,
                ) -> __mcpa::Result<__mcpa::ListToolsResult, __mcpa::ErrorData> {
                    __mcpa::list_tools(self, request, context).await
                }
                async fn call_tool(
                    &self,
                    request: __mcpa::CallToolRequestParams,
                    context: __mcpa::RequestContext,
                ) -> __mcpa::Result<__mcpa::CallToolResponse, __mcpa::ErrorData> {
                    __mcpa::call_tool(self, request, context).await
                }
            }
        }
    });
    quote! {
        #item

        #[doc(hidden)]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic, clippy::absolute_paths)]
        const _: () = {
            use ::mcp_analytics::__private as __mcpa;

            #[automatically_derived]
            impl __mcpa::Server for #self_ty {
                const INFO: __mcpa::ServerInfo = #info;
                const TOOLS: &'static [__mcpa::ToolSpec] = &[#(#specs),*];

                fn tool_list() -> &'static __mcpa::ToolList {
                    static TOOLS: __mcpa::ToolList = __mcpa::ToolList::new();
                    &TOOLS
                }
                #analytics
                #payments
                async fn dispatch(&self, call: __mcpa::ToolCall<'_>) -> __mcpa::Outcome {
                    match call.name() {
                        #(#arms)*
                        _ => call.unknown_tool(),
                    }
                }
            }

            #handler
        };
    }
}

fn server_info(server: &Server) -> TokenStream {
    let name = match &server.name {
        Some(name) => quote!(#name),
        None => quote!(::core::env!("CARGO_PKG_NAME")),
    };
    let version = match &server.version {
        Some(version) => quote!(#version),
        None => quote!(::core::env!("CARGO_PKG_VERSION")),
    };
    let instructions = option(server.instructions.as_ref());
    quote! {
        __mcpa::ServerInfo {
            name: #name,
            version: #version,
            instructions: #instructions,
        }
    }
}

fn tool_spec(tool: &Tool) -> TokenStream {
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
        let pricing = pricing_spec(pricing);
        fields.push(quote!(paid: __mcpa::Some(&#pricing),));
    }
    quote! {
        __mcpa::ToolSpec {
            #(#fields)*
            ..__mcpa::ToolSpec::DEFAULT
        }
    }
}

fn pricing_spec(pricing: &Pricing) -> TokenStream {
    let checkout = &pricing.checkout;
    let mode = match checkout.mode {
        Mode::Payment => quote!(__mcpa::CheckoutMode::Payment),
        Mode::Subscription => quote!(__mcpa::CheckoutMode::Subscription),
    };
    let success_url = &checkout.success_url;
    let cancel_url = option(checkout.cancel_url.as_ref());
    let meter = option(pricing.meter.as_ref());
    let reason = option(pricing.reason.as_ref());
    let grant = match &pricing.grant {
        None | Some((Grant::Credits, _)) => quote!(__mcpa::Grant::Credits),
        Some((Grant::Unlimited, _)) => quote!(__mcpa::Grant::Unlimited),
        Some((Grant::Pack(credits), _)) => quote!(__mcpa::Grant::pack(#credits)),
    };
    let items = checkout.line_items.iter().map(|item| {
        let price = match &item.price {
            Price::Id(id) => quote!(__mcpa::Price::Id(#id)),
            Price::Env(var) => quote!(__mcpa::Price::Env(#var)),
        };
        let quantity = match &item.quantity {
            Some(quantity) => quote!(__mcpa::Some(#quantity)),
            None => quote!(__mcpa::None),
        };
        quote!(__mcpa::LineItem { price: #price, quantity: #quantity })
    });
    quote! {
        __mcpa::Pricing {
            mode: #mode,
            success_url: #success_url,
            cancel_url: #cancel_url,
            line_items: &[#(#items),*],
            meter: #meter,
            reason: #reason,
            grant: #grant,
        }
    }
}

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

/// `"name" => call.run(|args: Args, cx| self.method(args, cx)).await,` and, when the method
/// names its return type, `async move { __mcpa::returns(self.method(args, cx).await) }` as the
/// closure's body.
///
/// The `run` call sits at the argument type (a type that is not `DeserializeOwned` is an error
/// there) and `__mcpa::returns(...)` at the return type (axum's `debug_handler` idea: a type
/// rmcp cannot turn into a result is one error there; `run` converts it as before, outside the
/// tool's panic scope). Only their location is the user's: the tokens resolve at the call site,
/// so `call`, `args` and `cx` are the same variables when the impl is written by a
/// `macro_rules!` macro that passes the types in.
fn dispatch_arm(tool: &Tool) -> TokenStream {
    let name = &tool.name;
    let method = &tool.method;
    let at = |tokens: &dyn Spanned| Span::call_site().located_at(tokens.span());
    let context = if tool.takes_context {
        quote!(cx)
    } else {
        quote!(_)
    };
    let pass = |span: Span| match (&tool.args, tool.takes_context) {
        (Some(_), true) => quote_spanned!(span=> args, cx),
        (Some(_), false) => quote_spanned!(span=> args),
        (None, true) => quote_spanned!(span=> cx),
        (None, false) => quote!(),
    };
    let body = match &tool.returns {
        // All at the return type: rustc points at the argument of `returns`.
        Some(returns) => {
            let span = at(returns);
            let pass = pass(span);
            quote_spanned!(span=> async move { __mcpa::returns(self.#method(#pass).await) })
        }
        None => {
            let pass = pass(Span::call_site());
            quote!(self.#method(#pass))
        }
    };
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

fn option(value: Option<&syn::LitStr>) -> TokenStream {
    match value {
        Some(value) => quote!(__mcpa::Some(#value)),
        None => quote!(__mcpa::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(tokens: TokenStream) -> String {
        prettyplease::unparse(&syn::parse2(tokens).expect("expansion parses as a file"))
    }

    /// Expansion snapshots: what `cargo expand` shows for one `#[mcp_server]` impl. Set
    /// `UPDATE_SNAPSHOTS=1` to rewrite them after an intended change, then review the diff.
    #[test]
    fn expansion_snapshots() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("tests/expand exists") {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|ext| ext != "rs")
                || path.to_string_lossy().ends_with(".expanded.rs")
            {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            let file: syn::File = syn::parse_str(&source).unwrap();
            let mut out = TokenStream::new();
            for item in file.items {
                match item {
                    syn::Item::Impl(mut item_impl) if !item_impl.attrs.is_empty() => {
                        let attr = item_impl.attrs.remove(0);
                        let args = match attr.meta {
                            syn::Meta::List(list) => list.tokens,
                            _ => TokenStream::new(),
                        };
                        out.extend(mcp_server(args, quote!(#item_impl)));
                    }
                    other => out.extend(quote!(#other)),
                }
            }
            let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
            if let Err(problem) = check_snapshot(&path, &pretty(out), update) {
                panic!("{problem}");
            }
            checked += 1;
        }
        assert!(
            checked >= 2,
            "expected expansion cases in {}",
            dir.display()
        );
    }

    /// Compares the expansion of the case at `path` with its `.expanded.rs` snapshot; with
    /// `update`, writes the snapshot first. A missing snapshot is a failure, never written
    /// silently: a new case's expansion is reviewed like a changed one.
    fn check_snapshot(path: &std::path::Path, expanded: &str, update: bool) -> Result<(), String> {
        let snapshot = path.with_extension("expanded.rs");
        if update {
            std::fs::write(&snapshot, expanded).map_err(|error| error.to_string())?;
        }
        let Ok(expected) = std::fs::read_to_string(&snapshot) else {
            return Err(format!(
                "{} has no snapshot: run with UPDATE_SNAPSHOTS=1 to write {}, then review it",
                path.display(),
                snapshot.display()
            ));
        };
        if expected != expanded {
            return Err(format!(
                "expansion of {} changed; rerun with UPDATE_SNAPSHOTS=1 and review the diff\n--- expected\n{expected}\n--- got\n{expanded}",
                path.display()
            ));
        }
        Ok(())
    }

    #[test]
    fn a_missing_snapshot_fails_instead_of_being_written() {
        let dir = std::env::temp_dir().join(format!("mcpa-snapshot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let case = dir.join("new_case.rs");
        let problem = check_snapshot(&case, "fn expanded() {}", false).unwrap_err();
        assert!(problem.contains("has no snapshot"), "{problem}");
        assert!(
            !case.with_extension("expanded.rs").exists(),
            "nothing is written without UPDATE_SNAPSHOTS"
        );
        check_snapshot(&case, "fn expanded() {}", true).unwrap();
        check_snapshot(&case, "fn expanded() {}", false).unwrap();
        let changed = check_snapshot(&case, "fn other() {}", false).unwrap_err();
        assert!(changed.contains("changed"), "{changed}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_keep_the_item_without_our_attributes() {
        let out = mcp_server(
            quote!(),
            quote! {
                impl S {
                    #[tool(track_results = "no")]
                    async fn a(&self) -> String { todo!() }
                }
            },
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("async fn a"), "{out}");
        assert!(
            out.contains("__expanded_by_mcp_server") && !out.contains("\"no\""),
            "{out}"
        );
    }

    #[test]
    fn errors_still_implement_the_server_without_tools() {
        let out = mcp_server(
            quote!(nmae = "x"),
            quote! {
                impl S {
                    #[tool]
                    async fn a(&self) -> String { todo!() }
                }
            },
        )
        .to_string();
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("impl __mcpa :: Server for S"), "{out}");
        assert!(out.contains("impl __mcpa :: ServerHandler for S"), "{out}");
        assert!(!out.contains("\"a\" =>"), "no tools: {out}");

        let out = mcp_server(
            quote!(),
            quote!(
                impl<T> S<T> {}
            ),
        )
        .to_string();
        assert!(
            out.contains("compile_error") && !out.contains("__mcpa"),
            "a generic impl gets no impls (they would only add errors): {out}"
        );
    }

    #[test]
    fn not_an_impl_is_an_error() {
        let out = mcp_server(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(
            out.contains("inherent impl block") && out.contains("struct S"),
            "{out}"
        );
    }
}
