//! What `#[mcp_server]` describes: the server options and one [`Tool`] per `#[tool]` method,
//! read from the impl block. Our attributes are removed from the methods as they are read.

use proc_macro2::TokenStream;
use syn::{Expr, FnArg, ImplItem, ImplItemFn, LitBool, LitStr, ReturnType, Type};

use crate::{
    errors::Errors,
    paid::Pricing,
    parse::{self, Arg, Keys},
};

const SERVER_KEYS: &[&str] = &[
    "name",
    "version",
    "instructions",
    "analytics",
    "payments",
    "server_handler",
];
const TOOL_KEYS: &[&str] = &[
    "name",
    "title",
    "description",
    "track_results",
    "redact",
    "annotations",
    "meta",
];
const ANNOTATION_KEYS: &[&str] = &[
    "title",
    "read_only_hint",
    "destructive_hint",
    "idempotent_hint",
    "open_world_hint",
];

/// Options of `#[mcp_server(...)]` plus the tools found in the impl block.
pub(crate) struct Server {
    /// The impl block, with `#[tool]` and `#[paid]` removed from its methods.
    pub item: syn::ItemImpl,
    pub name: Option<LitStr>,
    pub version: Option<LitStr>,
    pub instructions: Option<LitStr>,
    /// Where the `Analytics` handle comes from (`self.analytics`); the global one when absent.
    pub analytics: Option<Expr>,
    /// Where the `Payments` handle comes from (`self.payments`); the global one when absent.
    pub payments: Option<Expr>,
    /// `server_handler = false`: the user writes `impl ServerHandler` (to add prompts or
    /// resources) and calls `mcp_analytics::handler::*` from it.
    pub server_handler: bool,
    pub tools: Vec<Tool>,
}

/// One `#[tool]` method.
pub(crate) struct Tool {
    /// The Rust method name.
    pub method: syn::Ident,
    /// The MCP tool name (`name = "..."`, else the method name).
    pub name: LitStr,
    pub title: Option<LitStr>,
    /// `description = "..."`, else the doc comment.
    pub description: Option<String>,
    pub track_results: bool,
    pub redact: Vec<LitStr>,
    pub annotations: Annotations,
    pub meta: Option<Expr>,
    /// The argument type, when the method takes one.
    pub args: Option<Type>,
    /// Whether the method takes a trailing `CallContext` parameter.
    pub takes_context: bool,
    /// `T` of a `Json<T>` (or `Result<Json<T>, E>`) return type: the declared output schema.
    pub output: Option<Type>,
    /// `#[paid(...)]`: the tool's pricing.
    pub paid: Option<Pricing>,
}

/// rmcp tool annotations (`annotations(read_only_hint = true, ...)`).
#[derive(Default)]
pub(crate) struct Annotations {
    pub title: Option<LitStr>,
    pub read_only: Option<LitBool>,
    pub destructive: Option<LitBool>,
    pub idempotent: Option<LitBool>,
    pub open_world: Option<LitBool>,
}

impl Server {
    /// Reads the server options and every tool; mistakes go to `errors`.
    pub(crate) fn read(args: TokenStream, mut item: syn::ItemImpl, errors: &mut Errors) -> Self {
        let mut server = Server {
            item: syn::ItemImpl {
                items: Vec::new(),
                ..item.clone()
            },
            name: None,
            version: None,
            instructions: None,
            analytics: None,
            payments: None,
            server_handler: true,
            tools: Vec::new(),
        };
        let mut keys = Keys::new("mcp_server", SERVER_KEYS);
        for arg in parse::args(args, errors) {
            match keys.check(&arg.key, errors).as_deref() {
                Some("name") => server.name = parse::string(&arg, errors),
                Some("version") => server.version = parse::string(&arg, errors),
                Some("instructions") => server.instructions = parse::string(&arg, errors),
                Some("server_handler") => {
                    server.server_handler =
                        parse::boolean(&arg, errors).is_none_or(|lit| lit.value);
                }
                Some("analytics") => {
                    server.analytics =
                        parse::expr(&arg, "analytics = self.analytics", errors).cloned();
                }
                Some("payments") => {
                    server.payments =
                        parse::expr(&arg, "payments = self.payments", errors).cloned();
                }
                _ => {}
            }
        }
        for impl_item in &mut item.items {
            if let ImplItem::Fn(method) = impl_item
                && let Some(tool) = Tool::read(method, errors)
            {
                server.tools.push(tool);
            }
        }
        server.item.items = item.items;
        server
    }
}

impl Tool {
    /// Reads `#[tool]`/`#[paid]` from a method (removing them); `None` when it is not a tool.
    fn read(method: &mut ImplItemFn, errors: &mut Errors) -> Option<Tool> {
        let tool_attrs = take_attrs(&mut method.attrs, "tool");
        let paid = take_attrs(&mut method.attrs, "paid");
        // Put back markers so the user's `tool`/`paid` imports stay used; those macros pass
        // marked items through unchanged.
        for attr in tool_attrs.first().into_iter().chain(paid.first()) {
            method.attrs.push(marker(attr));
        }
        let Some(first) = tool_attrs.first() else {
            for attr in &paid {
                errors.at(
                    attr,
                    "`#[paid]` needs `#[tool]` on the same method: a payment gate guards a tool",
                );
            }
            return None;
        };
        for extra in &tool_attrs[1..] {
            errors.at(
                extra,
                "duplicate `#[tool]` attribute: put all options in one `#[tool(...)]`",
            );
        }
        let method_name = method.sig.ident.clone();
        let mut tool = Tool {
            name: LitStr::new(&method_name.to_string(), method_name.span()),
            method: method_name,
            title: None,
            description: doc_comment(&method.attrs),
            track_results: true,
            redact: Vec::new(),
            annotations: Annotations::default(),
            meta: None,
            args: None,
            takes_context: false,
            output: output_type(&method.sig.output),
            paid: None,
        };
        if let Some((first_paid, extra)) = paid.split_first() {
            for attr in extra {
                errors.at(attr, "duplicate `#[paid]` attribute: a tool has one pricing; put it in one `#[paid(...)]`");
            }
            tool.paid = Pricing::read(first_paid, errors);
        }
        tool.read_options(first, errors);
        tool.read_signature(method, errors);
        Some(tool)
    }

    fn read_options(&mut self, attr: &syn::Attribute, errors: &mut Errors) {
        let tokens = match &attr.meta {
            syn::Meta::Path(_) => return,
            syn::Meta::List(list) => list.tokens.clone(),
            syn::Meta::NameValue(name_value) => {
                errors.at(
                    name_value,
                    "expected `#[tool]` or `#[tool(option = value, ...)]`",
                );
                return;
            }
        };
        let mut keys = Keys::new("tool", TOOL_KEYS);
        for arg in parse::args(tokens, errors) {
            match keys.check(&arg.key, errors).as_deref() {
                Some("name") => {
                    if let Some(name) = parse::string(&arg, errors) {
                        self.name = name;
                    }
                }
                Some("title") => self.title = parse::string(&arg, errors),
                Some("description") => {
                    self.description = parse::string(&arg, errors).map(|lit| lit.value());
                }
                Some("track_results") => {
                    self.track_results = parse::boolean(&arg, errors).is_none_or(|lit| lit.value);
                }
                Some("redact") => self.redact = parse::strings(&arg, errors).unwrap_or_default(),
                Some("annotations") => self.read_annotations(&arg, errors),
                Some("meta") => {
                    self.meta = parse::expr(&arg, "meta = <expression>", errors).cloned()
                }
                _ => {}
            }
        }
    }

    fn read_annotations(&mut self, arg: &Arg, errors: &mut Errors) {
        let form = "annotations(read_only_hint = true, ...)";
        let Some(args) = parse::list(arg, form, errors) else {
            return;
        };
        let mut keys = Keys::new("annotations", ANNOTATION_KEYS);
        let annotations = &mut self.annotations;
        for arg in args {
            match keys.check(&arg.key, errors).as_deref() {
                Some("title") => annotations.title = parse::string(arg, errors),
                Some("read_only_hint") => annotations.read_only = parse::boolean(arg, errors),
                Some("destructive_hint") => annotations.destructive = parse::boolean(arg, errors),
                Some("idempotent_hint") => annotations.idempotent = parse::boolean(arg, errors),
                Some("open_world_hint") => annotations.open_world = parse::boolean(arg, errors),
                _ => {}
            }
        }
    }

    /// Accepts `async fn name(&self [, args: T] [, cx: CallContext]) -> R`.
    fn read_signature(&mut self, method: &ImplItemFn, errors: &mut Errors) {
        let sig = &method.sig;
        if sig.asyncness.is_none() {
            errors.at(
                sig.fn_token,
                format!(
                    "a `#[tool]` method must be `async`: write `async fn {}(&self, ...)`",
                    sig.ident
                ),
            );
        }
        if !sig.generics.params.is_empty() {
            errors.at(&sig.generics, "a `#[tool]` method cannot be generic: its argument type must be known to build the input schema");
        }
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(FnArg::Receiver(receiver))
                if receiver.reference.is_some() && receiver.mutability.is_none() => {}
            Some(other @ FnArg::Receiver(_)) => {
                errors.at(
                    other,
                    "a `#[tool]` method takes `&self`: tools of one server run concurrently",
                );
            }
            _ => errors.at(
                sig.ident.clone(),
                format!(
                    "a `#[tool]` method takes `&self` first: `async fn {}(&self, args: Args)`",
                    sig.ident
                ),
            ),
        }
        let rest: Vec<&FnArg> = inputs.collect();
        for (position, input) in rest.iter().enumerate() {
            let FnArg::Typed(typed) = input else { continue };
            if is_call_context(&typed.ty) {
                if position + 1 != rest.len() {
                    errors.at(
                        &typed.ty,
                        "`CallContext` must be the last parameter of a `#[tool]` method",
                    );
                }
                self.takes_context = true;
            } else if position == 0 {
                self.args = Some((*typed.ty).clone());
            } else {
                errors.at(input, "a `#[tool]` method takes at most one argument type (a struct deriving `Deserialize` and `JsonSchema`) and an optional `CallContext`");
            }
        }
    }
}

/// The argument of the `#[tool(...)]` that `#[mcp_server]` leaves on processed methods.
pub(crate) const MARKER: &str = "__expanded_by_mcp_server";

/// `#[path(__expanded_by_mcp_server)]` for the attribute `attr`.
fn marker(attr: &syn::Attribute) -> syn::Attribute {
    let path = attr.path();
    let marker = syn::Ident::new(MARKER, path.segments[0].ident.span());
    syn::parse_quote!(#[#path(#marker)])
}

/// Removes and returns the attributes named `name` or `mcp_analytics::name` (markers left by
/// an earlier expansion are dropped).
fn take_attrs(attrs: &mut Vec<syn::Attribute>, name: &str) -> Vec<syn::Attribute> {
    let (ours, others): (Vec<_>, _) = std::mem::take(attrs)
        .into_iter()
        .partition(|attr| is_ours(attr, name));
    let ours = ours.into_iter().filter(|attr| !is_marker(attr)).collect();
    *attrs = others;
    ours
}

/// Whether `attr` is `#[name]` or `#[mcp_analytics::name]`.
pub(crate) fn is_ours(attr: &syn::Attribute, name: &str) -> bool {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    match segments.as_slice() {
        [only] => only == name,
        [krate, last] => krate == "mcp_analytics" && last == name,
        _ => false,
    }
}

/// Whether `attr` is the marker `#[tool(__expanded_by_mcp_server)]`.
pub(crate) fn is_marker(attr: &syn::Attribute) -> bool {
    matches!(&attr.meta, syn::Meta::List(list) if list.tokens.to_string() == MARKER)
}

fn doc_comment(attrs: &[syn::Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(lit),
                        ..
                    }),
                ..
            }) => Some(lit.value()),
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_owned()
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

fn is_call_context(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|segment| segment.ident == "CallContext")
}

fn first_type_argument(segment: &syn::PathSegment) -> Option<&Type> {
    match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
            syn::GenericArgument::Type(ty) => Some(ty),
            _ => None,
        }),
        _ => None,
    }
}

/// `T` for a return type written `Json<T>` or `Result<Json<T>, E>`.
fn output_type(output: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let mut segment = last_segment(ty)?;
    if segment.ident == "Result" {
        segment = last_segment(first_type_argument(segment)?)?;
    }
    (segment.ident == "Json")
        .then(|| first_type_argument(segment).cloned())
        .flatten()
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn read(args: TokenStream, item: TokenStream) -> (Server, Result<(), syn::Error>) {
        let mut errors = Errors::default();
        let server = Server::read(args, syn::parse2(item).unwrap(), &mut errors);
        (server, errors.finish())
    }

    #[test]
    fn reads_tools_and_strips_attributes() {
        let (server, result) = read(
            quote!(name = "Calc", version = "1.2.3"),
            quote! {
                impl Calc {
                    /// Adds two numbers.
                    ///
                    /// Exactly.
                    #[tool]
                    async fn add(&self, args: AddArgs) -> String { todo!() }
                    #[mcp_analytics::tool(name = "doc", track_results = false, redact = ["document"])]
                    async fn process(&self, args: Doc, cx: CallContext) -> Json<Out> { todo!() }
                    #[tool(description = "Ping", annotations(read_only_hint = true))]
                    async fn ping(&self) -> String { todo!() }
                    fn helper(&self) {}
                }
            },
        );
        assert!(result.is_ok());
        assert_eq!(server.name.unwrap().value(), "Calc");
        let tools = &server.tools;
        assert_eq!(tools.len(), 3);
        assert_eq!(
            tools[0].description.as_deref(),
            Some("Adds two numbers.\n\nExactly.")
        );
        assert!(tools[0].args.is_some() && !tools[0].takes_context && tools[0].track_results);
        assert_eq!(tools[1].name.value(), "doc");
        assert!(!tools[1].track_results && tools[1].takes_context);
        assert_eq!(tools[1].redact[0].value(), "document");
        assert!(tools[1].output.is_some());
        assert!(tools[2].args.is_none());
        assert!(tools[2].annotations.read_only.as_ref().unwrap().value);
        let rendered = quote::ToTokens::to_token_stream(&server.item).to_string();
        assert_eq!(
            rendered.matches("tool").count(),
            3,
            "only markers remain: {rendered}"
        );
        assert_eq!(
            rendered.matches(MARKER).count(),
            3,
            "only markers remain: {rendered}"
        );
    }

    #[test]
    fn reports_every_mistake() {
        let (_, result) = read(
            quote!(nme = "x"),
            quote! {
                impl S {
                    #[tool(trak_results = false)]
                    fn sync_tool(&self) {}
                    #[tool]
                    async fn owned(self, a: A, b: B) {}
                }
            },
        );
        let messages: Vec<String> = result
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages.len(), 5, "{messages:#?}");
        assert!(messages[0].contains("did you mean `name`?"));
        assert!(messages[1].contains("did you mean `track_results`?"));
        assert!(messages[2].contains("must be `async`"));
        assert!(messages[3].contains("takes `&self`"));
        assert!(messages[4].contains("at most one argument type"));
    }

    #[test]
    fn finds_output_schema_types() {
        let ty = |tokens: TokenStream| output_type(&syn::parse2(tokens).unwrap());
        assert!(ty(quote!(-> Json<Out>)).is_some());
        assert!(ty(quote!(-> Result<rmcp::Json<Out>, String>)).is_some());
        assert!(ty(quote!(-> String)).is_none());
        assert!(ty(quote!()).is_none());
    }
}
