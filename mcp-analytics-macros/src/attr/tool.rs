//! `#[tool(...)]` on a method: reads its options, its `#[paid]` and its signature, and replaces
//! both attributes by markers.

use syn::{Expr, FnArg, ImplItemFn, LitStr, ReturnType, Type};

use super::{Field, boolean, expr, map, paid, read_keys, string, strings};
use crate::{
    ast::{Annotations, Tool},
    ctxt::Ctxt,
    keys::keys,
};

keys! {
    /// The options of `#[tool(...)]`.
    pub(crate) enum ToolKey {
        Name = "name",
        Title = "title",
        Description = "description",
        TrackResults = "track_results",
        Redact = "redact",
        Annotations = "annotations",
        Meta = "meta",
    }
}

keys! {
    /// The options of `#[tool(annotations(...))]`.
    pub(crate) enum AnnotationKey {
        Title = "title",
        ReadOnlyHint = "read_only_hint",
        DestructiveHint = "destructive_hint",
        IdempotentHint = "idempotent_hint",
        OpenWorldHint = "open_world_hint",
    }
}

/// Reads `#[tool]`/`#[paid]` from a method (replacing them by markers); `None` when it is not a
/// tool.
pub(crate) fn read(method: &mut ImplItemFn, cx: &mut Ctxt) -> Option<Tool> {
    let tool_attrs = take_attrs(&mut method.attrs, "tool");
    let paid_attrs = take_attrs(&mut method.attrs, "paid");
    // Put back markers so the user's `tool`/`paid` imports stay used; those macros pass
    // marked items through unchanged.
    for attr in tool_attrs.first().into_iter().chain(paid_attrs.first()) {
        method.attrs.push(marker(attr));
    }
    let Some(first) = tool_attrs.first() else {
        for attr in &paid_attrs {
            cx.at(
                attr,
                "`#[paid]` needs `#[tool]` on the same method: a payment gate guards a tool",
            );
        }
        return None;
    };
    for extra in &tool_attrs[1..] {
        cx.at(
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
        returns: returns(&method.sig.output),
        output: output_type(&method.sig.output),
        paid: None,
    };
    if let Some((first_paid, extra)) = paid_attrs.split_first() {
        for attr in extra {
            cx.at(attr, "duplicate `#[paid]` attribute: a tool has one pricing; put it in one `#[paid(...)]`");
        }
        tool.paid = paid::read(first_paid, cx);
    }
    read_options(&mut tool, first, cx);
    read_signature(&mut tool, method, cx);
    Some(tool)
}

fn read_options(tool: &mut Tool, attr: &syn::Attribute, cx: &mut Ctxt) {
    let tokens = match &attr.meta {
        syn::Meta::Path(_) => return,
        syn::Meta::List(list) => list.tokens.clone(),
        syn::Meta::NameValue(name_value) => {
            cx.at(
                name_value,
                "expected `#[tool]` or `#[tool(option = value, ...)]`",
            );
            return;
        }
    };
    let fields = super::fields(tokens, cx);
    read_keys("tool", &fields, cx, |key, field, cx| {
        option(tool, key, field, cx);
    });
}

fn option(tool: &mut Tool, key: ToolKey, field: &Field, cx: &mut Ctxt) {
    match key {
        // #[tool(name = "get_weather")]
        ToolKey::Name => {
            if let Some(name) = string(field, cx) {
                tool.name = name;
            }
        }
        // #[tool(title = "Get weather")]
        ToolKey::Title => tool.title = string(field, cx),
        // #[tool(description = "...")]
        ToolKey::Description => tool.description = string(field, cx).map(|lit| lit.value()),
        // #[tool(track_results = false)]
        ToolKey::TrackResults => {
            tool.track_results = boolean(field, cx).is_none_or(|lit| lit.value);
        }
        // #[tool(redact = ["document"])]
        ToolKey::Redact => tool.redact = strings(field, cx).unwrap_or_default(),
        // #[tool(annotations(read_only_hint = true, ...))]
        ToolKey::Annotations => {
            let form = "annotations(read_only_hint = true, ...)";
            if let Some(map) = map(field, form, cx) {
                let annotations = &mut tool.annotations;
                read_keys("annotations", &map.fields, cx, |key, field, cx| {
                    annotation(annotations, key, field, cx);
                });
            }
        }
        // #[tool(meta = serde_json::json!({ ... }))]
        ToolKey::Meta => tool.meta = expr(field, "meta = <expression>", cx),
    }
}

fn annotation(annotations: &mut Annotations, key: AnnotationKey, field: &Field, cx: &mut Ctxt) {
    match key {
        AnnotationKey::Title => annotations.title = string(field, cx),
        AnnotationKey::ReadOnlyHint => annotations.read_only = boolean(field, cx),
        AnnotationKey::DestructiveHint => annotations.destructive = boolean(field, cx),
        AnnotationKey::IdempotentHint => annotations.idempotent = boolean(field, cx),
        AnnotationKey::OpenWorldHint => annotations.open_world = boolean(field, cx),
    }
}

/// Accepts `async fn name(&self [, args: T] [, cx: CallContext]) -> R`.
fn read_signature(tool: &mut Tool, method: &ImplItemFn, cx: &mut Ctxt) {
    let sig = &method.sig;
    if sig.asyncness.is_none() {
        cx.at(
            sig.fn_token,
            format!(
                "a `#[tool]` method must be `async`: write `async fn {}(&self, ...)`",
                sig.ident
            ),
        );
    }
    if !sig.generics.params.is_empty() {
        cx.at(&sig.generics, "a `#[tool]` method cannot be generic: its argument type must be known to build the input schema");
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_some() && receiver.mutability.is_none() => {}
        Some(other @ FnArg::Receiver(_)) => {
            cx.at(
                other,
                "a `#[tool]` method takes `&self`: tools of one server run concurrently",
            );
        }
        _ => cx.at(
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
                cx.at(
                    &typed.ty,
                    "`CallContext` must be the last parameter of a `#[tool]` method",
                );
            }
            tool.takes_context = true;
        } else if position == 0 {
            tool.args = Some((*typed.ty).clone());
        } else {
            cx.at(input, "a `#[tool]` method takes at most one argument type (a struct deriving `Deserialize` and `JsonSchema`) and an optional `CallContext`");
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
fn is_ours(attr: &syn::Attribute, name: &str) -> bool {
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
fn is_marker(attr: &syn::Attribute) -> bool {
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

/// The written return type, unless it is `impl Trait` (which cannot be named elsewhere).
fn returns(output: &ReturnType) -> Option<Type> {
    match output {
        ReturnType::Type(_, ty) if !matches!(**ty, Type::ImplTrait(_)) => Some((**ty).clone()),
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
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::{ast::Server, attr::server};

    fn read(args: TokenStream, item: TokenStream) -> (Server, Vec<String>) {
        let mut cx = Ctxt::new();
        let server = server::read(args, syn::parse2(item).unwrap(), &mut cx);
        (server, cx.messages())
    }

    #[test]
    fn reads_tools_and_strips_attributes() {
        let (server, messages) = read(
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
                    async fn ping(&self) -> impl Into<String> { "" }
                    fn helper(&self) {}
                }
            },
        );
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(server.name.unwrap().value(), "Calc");
        let tools = &server.tools;
        assert_eq!(tools.len(), 3);
        assert_eq!(
            tools[0].description.as_deref(),
            Some("Adds two numbers.\n\nExactly.")
        );
        assert!(tools[0].args.is_some() && !tools[0].takes_context && tools[0].track_results);
        assert!(tools[0].returns.is_some());
        assert_eq!(tools[1].name.value(), "doc");
        assert!(!tools[1].track_results && tools[1].takes_context);
        assert_eq!(tools[1].redact[0].value(), "document");
        assert!(tools[1].output.is_some());
        assert!(tools[2].args.is_none() && tools[2].returns.is_none());
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
    fn annotations_read_as_a_map_in_either_spelling() {
        let (server, messages) = read(
            quote!(),
            quote! {
                impl S {
                    #[tool(annotations = { title = "T", open_world_hint = false })]
                    async fn a(&self) {}
                }
            },
        );
        assert!(messages.is_empty(), "{messages:?}");
        let annotations = &server.tools[0].annotations;
        assert!(annotations.title.is_some() && !annotations.open_world.as_ref().unwrap().value);
    }

    #[test]
    fn reports_every_mistake() {
        let (_, messages) = read(
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
