//! What every served method shares: which of our attributes it carries (removed and replaced
//! by markers), its doc comment, and its signature (`async fn name(&self, ...) -> R` with an
//! optional trailing `CallContext`). The kind-specific rules on the remaining parameters are in
//! `tool`, `prompt`, `resource` and `complete`.

use syn::{Attribute, Expr, FnArg, ImplItemFn, ReturnType, Type};

use crate::{ast::Param, ctxt::Ctxt};

/// The argument of the attribute that `#[mcp_server]` leaves on processed methods.
pub(crate) const MARKER: &str = "__expanded_by_mcp_server";

/// What a method serves: the attribute that says so.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tool,
    Prompt,
    Resource,
    Complete,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Tool, Kind::Prompt, Kind::Resource, Kind::Complete];

    /// The attribute's name.
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
            Kind::Complete => "complete",
        }
    }

    /// What a method of this kind serves.
    fn singular(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
            Kind::Complete => "completion",
        }
    }

    /// What the methods of this kind serve, in the plural ("tools of one server run
    /// concurrently").
    fn plural(self) -> &'static str {
        match self {
            Kind::Tool => "tools",
            Kind::Prompt => "prompts",
            Kind::Resource => "resources",
            Kind::Complete => "completions",
        }
    }

    /// Why the method cannot be generic.
    fn why_not_generic(self) -> &'static str {
        match self {
            Kind::Tool => "its argument type must be known to build the input schema",
            Kind::Prompt => "its argument type must be known to list the prompt's arguments",
            Kind::Resource | Kind::Complete => "its parameter types must be known",
        }
    }
}

/// Our attributes on one method, taken off it.
pub(crate) struct Attrs {
    /// `(kind, attribute)` in the order written.
    kinds: Vec<(Kind, Attribute)>,
    paid: Vec<Attribute>,
}

impl Attrs {
    /// Removes `#[tool]`, `#[prompt]`, `#[resource]`, `#[complete]` and `#[paid]` (also written
    /// `#[mcp_analytics::...]`) from `method`, and puts back one marker per attribute name so
    /// the user's imports of those macros stay used; the macros pass marked items through.
    pub(crate) fn take(method: &mut ImplItemFn) -> Self {
        let mut attrs = Attrs {
            kinds: Vec::new(),
            paid: Vec::new(),
        };
        let mut markers: Vec<Attribute> = Vec::new();
        for attr in std::mem::take(&mut method.attrs) {
            let Some(name) = our_name(&attr) else {
                method.attrs.push(attr);
                continue;
            };
            if is_marker(&attr) {
                continue; // left by an earlier expansion
            }
            if !markers.iter().any(|marker| our_name(marker) == Some(name)) {
                markers.push(marker(&attr));
            }
            match Kind::ALL.into_iter().find(|kind| kind.attr() == name) {
                Some(kind) => attrs.kinds.push((kind, attr)),
                None => attrs.paid.push(attr),
            }
        }
        method.attrs.extend(markers);
        attrs
    }

    /// What the method serves, from its first kind attribute; every further one is an error.
    /// `None` (with `#[paid]` reported) when it serves nothing.
    pub(crate) fn kind(&self, cx: &mut Ctxt) -> Option<(Kind, &Attribute)> {
        let Some(((kind, first), rest)) = self.kinds.split_first() else {
            for attr in &self.paid {
                cx.at(attr, "`#[paid]` needs `#[tool]`, `#[prompt]` or `#[resource]` on the same method: a payment gate guards what the method serves");
            }
            return None;
        };
        for (other, attr) in rest {
            if other == kind {
                cx.at(
                    attr,
                    format!(
                        "duplicate `#[{name}]` attribute: put all options in one `#[{name}(...)]`",
                        name = kind.attr()
                    ),
                );
            } else {
                cx.at(
                    attr,
                    format!(
                        "a method serves one thing: it is already a `#[{}]`; write a second method for the `#[{}]`",
                        kind.attr(),
                        other.attr()
                    ),
                );
            }
        }
        Some((*kind, first))
    }

    /// The `#[paid]` of a method of `kind`, if any; repeats and a `#[paid]` completion are
    /// errors.
    pub(crate) fn paid(&self, kind: Kind, cx: &mut Ctxt) -> Option<&Attribute> {
        let (first, extra) = self.paid.split_first()?;
        for attr in extra {
            cx.at(attr, format!("duplicate `#[paid]` attribute: a {} has one pricing; put it in one `#[paid(...)]`", kind.singular()));
        }
        if kind == Kind::Complete {
            cx.at(first, "a `#[complete]` method cannot be `#[paid]`: completions help the user fill in arguments; put `#[paid]` on the prompt or resource");
            return None;
        }
        Some(first)
    }
}

/// The token list of `#[attr(...)]`; empty for a bare `#[attr]`; `None` (reported) for
/// `#[attr = ...]`.
pub(crate) fn options(
    attr: &Attribute,
    kind: Kind,
    cx: &mut Ctxt,
) -> Option<proc_macro2::TokenStream> {
    match &attr.meta {
        syn::Meta::Path(_) => Some(proc_macro2::TokenStream::new()),
        syn::Meta::List(list) => Some(list.tokens.clone()),
        syn::Meta::NameValue(name_value) => {
            let name = kind.attr();
            cx.at(
                name_value,
                format!("expected `#[{name}]` or `#[{name}(option = value, ...)]`"),
            );
            None
        }
    }
}

/// A method's signature, once the parts every kind shares are checked.
pub(crate) struct Signature {
    /// The parameters after `&self`, except a trailing `CallContext`.
    pub params: Vec<(Param, FnArg)>,
    /// Whether the method takes a trailing `CallContext` parameter.
    pub takes_context: bool,
    /// The declared return type, when it is written and nameable (not `impl Trait`).
    pub returns: Option<Type>,
}

/// Accepts `async fn name(&self, ... [, cx: CallContext]) -> R` for a method of `kind`; the
/// parameters in between are left to the kind's own rules.
pub(crate) fn signature(method: &ImplItemFn, kind: Kind, cx: &mut Ctxt) -> Signature {
    let sig = &method.sig;
    let attr = kind.attr();
    if sig.asyncness.is_none() {
        cx.at(
            sig.fn_token,
            format!(
                "a `#[{attr}]` method must be `async`: write `async fn {}(&self, ...)`",
                sig.ident
            ),
        );
    }
    if !sig.generics.params.is_empty() {
        cx.at(
            &sig.generics,
            format!(
                "a `#[{attr}]` method cannot be generic: {}",
                kind.why_not_generic()
            ),
        );
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_some() && receiver.mutability.is_none() => {}
        Some(other @ FnArg::Receiver(_)) => {
            cx.at(
                other,
                format!(
                    "a `#[{attr}]` method takes `&self`: {} of one server run concurrently",
                    kind.plural()
                ),
            );
        }
        _ => cx.at(
            sig.ident.clone(),
            format!(
                "a `#[{attr}]` method takes `&self` first: `async fn {}(&self, ...)`",
                sig.ident
            ),
        ),
    }
    let rest: Vec<&FnArg> = inputs.collect();
    let mut signature = Signature {
        params: Vec::new(),
        takes_context: false,
        returns: returns(&sig.output),
    };
    for (position, input) in rest.iter().enumerate() {
        let FnArg::Typed(typed) = input else { continue };
        if is_call_context(&typed.ty) {
            if position + 1 != rest.len() {
                cx.at(
                    &typed.ty,
                    format!("`CallContext` must be the last parameter of a `#[{attr}]` method"),
                );
            }
            signature.takes_context = true;
            continue;
        }
        let name = match &*typed.pat {
            syn::Pat::Ident(pat) => pat.ident.clone(),
            _ => syn::Ident::new("_", proc_macro2::Span::call_site()),
        };
        let param = Param {
            name,
            ty: (*typed.ty).clone(),
        };
        signature.params.push((param, (*input).clone()));
    }
    signature
}

impl Signature {
    /// The arguments type of a tool or prompt: at most one parameter besides `CallContext`.
    pub(crate) fn args_type(&self, kind: Kind, cx: &mut Ctxt) -> Option<Type> {
        let mut params = self.params.iter();
        let first = params.next().map(|(param, _)| param.ty.clone());
        for (_, input) in params {
            cx.at(input, format!("a `#[{}]` method takes at most one argument type (a struct deriving `Deserialize` and `JsonSchema`) and an optional `CallContext`", kind.attr()));
        }
        first
    }
}

/// `#[path(__expanded_by_mcp_server)]` for the attribute `attr`.
fn marker(attr: &Attribute) -> Attribute {
    let path = attr.path();
    let marker = syn::Ident::new(MARKER, path.segments[0].ident.span());
    syn::parse_quote!(#[#path(#marker)])
}

/// `name` when `attr` is `#[name]` or `#[mcp_analytics::name]` for one of our attributes.
fn our_name(attr: &Attribute) -> Option<&'static str> {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let name = match segments.as_slice() {
        [only] => only,
        [krate, last] if krate == "mcp_analytics" => last,
        _ => return None,
    };
    Kind::ALL
        .into_iter()
        .map(Kind::attr)
        .chain(["paid"])
        .find(|ours| name == ours)
}

/// Whether `attr` is a marker `#[tool(__expanded_by_mcp_server)]`.
fn is_marker(attr: &Attribute) -> bool {
    matches!(&attr.meta, syn::Meta::List(list) if list.tokens.to_string() == MARKER)
}

/// The doc comment, trimmed, when there is one.
pub(crate) fn doc_comment(attrs: &[Attribute]) -> Option<String> {
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

pub(crate) fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

fn is_call_context(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|segment| segment.ident == "CallContext")
}

pub(crate) fn first_type_argument(segment: &syn::PathSegment) -> Option<&Type> {
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
