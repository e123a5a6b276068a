//! `#[tool(...)]` on a method: reads its options, its `#[paid]` and its signature
//! (`async fn name(&self [, args: T] [, cx: CallContext]) -> R`).

use syn::{ImplItemFn, LitStr, ReturnType, Type};

use super::{
    Field, boolean, expr, map,
    method::{Kind, doc_comment, first_type_argument, last_segment, options, signature},
    paid, read_keys, string, strings,
};
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

/// Reads a `#[tool]` method: `attr` is its `#[tool]`, `paid` its `#[paid]`.
pub(crate) fn read(
    method: &ImplItemFn,
    attr: &syn::Attribute,
    paid: Option<&syn::Attribute>,
    cx: &mut Ctxt,
) -> Tool {
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
        returns: None,
        output: output_type(&method.sig.output),
        paid: paid.and_then(|attr| paid::read(attr, cx)),
    };
    read_options(&mut tool, attr, cx);
    let signature = signature(method, Kind::Tool, cx);
    tool.args = signature.args_type(Kind::Tool, cx);
    tool.takes_context = signature.takes_context;
    tool.returns = signature.returns;
    tool
}

fn read_options(tool: &mut Tool, attr: &syn::Attribute, cx: &mut Ctxt) {
    let Some(tokens) = options(attr, Kind::Tool, cx) else {
        return;
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
    use crate::{
        ast::Server,
        attr::{method::MARKER, server},
    };

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
