//! Writes the code: the impl block without our attributes, an `__private::Server` impl (server
//! info, one spec per tool, prompt, resource and completion, and one `match` per kind that
//! calls the user's methods) and the `ServerHandler` impl, whose methods are one-line calls
//! into the runtime (only those of the kinds the server has). Everything else is a call into
//! `::mcp_analytics::__private`. On any mistake the same impls are written with nothing to
//! serve, next to the errors, so one mistake gives one error and the rest of the crate (and
//! the IDE) still sees a server.

mod completion;
mod paid;
mod prompt;
mod resource;
mod tool;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::{
    ast::Server,
    attr::{self, method::MARKER},
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
        Ok(()) => generate(&server, true),
        Err(error) => fallback(&server, &error),
    }
}

/// `#[tool]`, `#[prompt]`, `#[resource]`, `#[complete]` or `#[paid]` outside `#[mcp_server]`:
/// an error, and the item unchanged.
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

/// The errors, plus the impls of a server that serves nothing (thiserror's `fallback`): code
/// that serves the server still compiles, so the errors are the only ones. Trait or generic
/// impl blocks get no impls (they would only add errors).
fn fallback(server: &Server, error: &syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    let item = &server.item;
    if item.trait_.is_some() || !item.generics.params.is_empty() {
        return quote!(#item #error);
    }
    let impls = generate(server, false);
    quote!(#impls #error)
}

/// The impl block and the server impls; `serve = false` leaves out every tool, prompt,
/// resource and completion.
fn generate(server: &Server, serve: bool) -> TokenStream {
    let item = &server.item;
    let self_ty = &item.self_ty;
    let info = server_info(server);
    let served = |len: usize| if serve { len } else { 0 };
    let tools = &server.tools[..served(server.tools.len())];
    let prompts = &server.prompts[..served(server.prompts.len())];
    let resources = &server.resources[..served(server.resources.len())];
    let completions = &server.completions[..served(server.completions.len())];
    let specs = tools.iter().map(tool::spec);
    let arms = tools.iter().map(tool::arm);
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
    let prompt_items = prompt::server_items(prompts);
    let resource_items = resource::server_items(resources);
    let completion_items = completion::server_items(completions);
    let handler = server.server_handler.then(|| {
        let prompt_methods = prompt::handler_methods(prompts);
        let resource_methods = resource::handler_methods(resources);
        let completion_methods = completion::handler_methods(completions);
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
                #prompt_methods
                #resource_methods
                #completion_methods
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
                #prompt_items
                #resource_items
                #completion_items
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

/// A call-site span located at `tokens`: errors point there, names resolve as the macro's.
fn at(tokens: &dyn Spanned) -> Span {
    Span::call_site().located_at(tokens.span())
}

/// The closure parameter receiving the `CallContext`: `cx`, or `_` when the method takes none.
fn context_param(takes_context: bool) -> TokenStream {
    if takes_context { quote!(cx) } else { quote!(_) }
}

/// For a method taking `[args: T] [, cx: CallContext]`: the closure's parameter for the context
/// (`cx`, or `_` when the method takes none) and the arguments passed, written at a span.
fn args_and_context(
    has_args: bool,
    takes_context: bool,
) -> (TokenStream, impl Fn(Span) -> TokenStream) {
    let context = context_param(takes_context);
    let pass = move |span: Span| match (has_args, takes_context) {
        (true, true) => quote_spanned!(span=> args, cx),
        (true, false) => quote_spanned!(span=> args),
        (false, true) => quote_spanned!(span=> cx),
        (false, false) => quote!(),
    };
    (context, pass)
}

/// The future of one call of the user's method `self.method(<pass>)`. When the method names
/// its return type, `async move { __mcpa::<check>(self.method(<pass>).await) }`, spanned at
/// that type: `check` accepts only what the runtime can turn into an answer, so a wrong type is
/// one error there (axum's `debug_handler` idea); the conversion itself happens in the
/// runtime, outside the method's panic scope. `pass` writes the arguments at a span.
fn call_method(
    method: &syn::Ident,
    pass: impl Fn(Span) -> TokenStream,
    returns: Option<&syn::Type>,
    check: &str,
) -> TokenStream {
    match returns {
        Some(returns) => {
            let span = at(returns);
            let pass = pass(span);
            let check = syn::Ident::new(check, span);
            quote_spanned!(span=> async move { __mcpa::#check(self.#method(#pass).await) })
        }
        None => {
            let pass = pass(Span::call_site());
            quote!(self.#method(#pass))
        }
    }
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
