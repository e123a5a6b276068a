//! The one grammar of attribute arguments, shared by `#[mcp_server]`, `#[tool]`, `#[prompt]`,
//! `#[resource]`, `#[complete]` and `#[paid]`, and the typed readers over it. Each attribute's
//! own keys are read in its module; [`method`] holds what the method attributes share.
//!
//! ```text
//! fields := field ("," field)* ","?
//! field  := key                      (a flag: `track_results` means `track_results = true`)
//!         | key "=" value
//!         | key "(" fields ")"       (same as `key = { fields }`)
//! value  := "text" | 1 | true | false
//!         | "{" fields "}"           (a map)
//!         | "[" value ("," value)* "]"   (a list)
//!         | name "(" value, ... ")"  (a call, e.g. `env("STRIPE_PRICE")`)
//!         | word | any other Rust expression (e.g. `self.analytics`)
//! ```

pub(crate) mod complete;
pub(crate) mod method;
pub(crate) mod paid;
pub(crate) mod prompt;
pub(crate) mod resource;
pub(crate) mod server;
pub(crate) mod tool;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{
    Expr, Ident, LitBool, LitInt, LitStr, Token, braced, bracketed,
    buffer::Cursor,
    parenthesized,
    parse::{Parse, ParseStream, Parser},
    punctuated::Punctuated,
};

use crate::{
    ctxt::Ctxt,
    keys::{self, Keys, Word},
};

/// `key`, `key = value` or `key(fields)`.
pub(crate) struct Field {
    /// The key as written.
    pub key: Ident,
    /// The value; `None` for a bare `key`.
    pub value: Option<Value>,
}

/// A value and the tokens it was read from (errors span them; expressions re-parse them).
pub(crate) struct Value {
    pub node: Node,
    pub tokens: TokenStream,
}

/// The shape of a value.
pub(crate) enum Node {
    /// `"text"`.
    Str(LitStr),
    /// `1`.
    Int(LitInt),
    /// `true` / `false`.
    Bool(LitBool),
    /// `{ key = value, ... }`, or the `( ... )` of `key(...)`.
    Map(Map),
    /// `[value, ...]`.
    List(Vec<Value>),
    /// `name(value, ...)`, e.g. `env("STRIPE_PRICE_IMAGE")`.
    Call(Ident, Vec<Value>),
    /// A bare word, e.g. `unlimited` or `ANALYTICS`.
    Word(Ident),
    /// Any other expression, e.g. `self.analytics`.
    Expr(Expr),
}

/// The fields of `{ ... }` or `key( ... )`.
pub(crate) struct Map {
    /// The delimiters, for "missing key" errors.
    pub span: Span,
    pub fields: Vec<Field>,
}

/// Parses a comma-separated field list (the inside of `#[attr(...)]`); a syntax error is
/// recorded and reads as no fields.
pub(crate) fn fields(tokens: TokenStream, cx: &mut Ctxt) -> Vec<Field> {
    parse_fields(tokens).unwrap_or_else(|error| {
        cx.push(error);
        Vec::new()
    })
}

/// Parses a comma-separated field list, or the syntax error (for callers that must know the
/// options could not be read at all).
pub(crate) fn parse_fields(tokens: TokenStream) -> syn::Result<Vec<Field>> {
    let fields = Punctuated::<Field, Token![,]>::parse_terminated.parse2(tokens)?;
    Ok(fields.into_iter().collect())
}

impl Parse for Field {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else if input.peek(syn::token::Paren) {
            let begin = input.cursor();
            let content;
            let paren = parenthesized!(content in input);
            let fields = Punctuated::<Field, Token![,]>::parse_terminated(&content)?;
            Some(Value {
                node: Node::Map(Map {
                    span: paren.span.join(),
                    fields: fields.into_iter().collect(),
                }),
                tokens: tokens_between(begin, input.cursor()),
            })
        } else {
            None
        };
        Ok(Field { key, value })
    }
}

impl Parse for Value {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let begin = input.cursor();
        let node = node(input)?;
        Ok(Value {
            node,
            tokens: tokens_between(begin, input.cursor()),
        })
    }
}

fn node(input: ParseStream) -> syn::Result<Node> {
    if input.peek(syn::token::Brace) {
        // `{ key = value }` is a map; anything else in braces (`{ let m = ...; m }`, `{ &self.a }`)
        // is a block expression, as Rust's own attribute grammar reads it.
        let fork = input.fork();
        let content;
        let brace = braced!(content in fork);
        return match Punctuated::<Field, Token![,]>::parse_terminated(&content) {
            Ok(fields) => {
                syn::parse::discouraged::Speculative::advance_to(input, &fork);
                Ok(Node::Map(Map {
                    span: brace.span.join(),
                    fields: fields.into_iter().collect(),
                }))
            }
            // Neither a map nor a block: the map's error is the useful one.
            Err(error) => match input.parse::<syn::ExprBlock>() {
                Ok(block) => Ok(Node::Expr(Expr::Block(block))),
                Err(_) => Err(error),
            },
        };
    }
    if input.peek(syn::token::Bracket) {
        let content;
        bracketed!(content in input);
        let values = Punctuated::<Value, Token![,]>::parse_terminated(&content)?;
        return Ok(Node::List(values.into_iter().collect()));
    }
    if input.peek(Ident) && input.peek2(syn::token::Paren) {
        // `name(...)` alone is a call; followed by more (`make().field`) it is an expression.
        let fork = input.fork();
        let name: Ident = fork.parse()?;
        let content;
        parenthesized!(content in fork);
        if (fork.is_empty() || fork.peek(Token![,]))
            && let Ok(arguments) = Punctuated::<Value, Token![,]>::parse_terminated(&content)
        {
            syn::parse::discouraged::Speculative::advance_to(input, &fork);
            return Ok(Node::Call(name, arguments.into_iter().collect()));
        }
    }
    Ok(match input.parse::<Expr>()? {
        Expr::Lit(syn::ExprLit { lit, .. }) => match lit {
            syn::Lit::Str(lit) => Node::Str(lit),
            syn::Lit::Int(lit) => Node::Int(lit),
            syn::Lit::Bool(lit) => Node::Bool(lit),
            other => Node::Expr(syn::parse_quote!(#other)),
        },
        Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
            Node::Word(path.path.segments[0].ident.clone())
        }
        other => Node::Expr(other),
    })
}

/// The tokens from `begin` up to (not including) `end`.
fn tokens_between(begin: Cursor, end: Cursor) -> TokenStream {
    let mut tokens = TokenStream::new();
    let mut cursor = begin;
    while cursor < end {
        let Some((token, next)) = cursor.token_tree() else {
            break;
        };
        tokens.extend([token]);
        cursor = next;
    }
    tokens
}

impl Value {
    /// What kind of value this is, for "expected X, found Y" messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self.node {
            Node::Str(_) => "a string",
            Node::Int(_) => "an integer",
            Node::Bool(_) => "a boolean",
            Node::Map(_) => "an object `{ ... }`",
            Node::List(_) => "an array `[ ... ]`",
            Node::Call(..) => "a call",
            Node::Word(_) => "a bare word",
            Node::Expr(_) => "an expression",
        }
    }
}

impl ToTokens for Value {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.tokens.to_tokens(tokens);
    }
}

/// Reads the fields of one map with the keys `K`: calls `read` for every accepted, first-time
/// key (unknown and repeated keys are reported). Returns the keys seen.
pub(crate) fn read_keys<'a, K: Word>(
    owner: &'static str,
    fields: &'a [Field],
    cx: &mut Ctxt,
    mut read: impl FnMut(K, &'a Field, &mut Ctxt),
) -> Keys<K> {
    let mut keys = Keys::new(owner);
    for field in fields {
        if let Some(key) = keys.read(&field.key, cx) {
            read(key, field, cx);
        }
    }
    keys
}

/// The value of `key = value`, or an error showing `form` for a bare `key`.
pub(crate) fn value<'a>(field: &'a Field, form: &str, cx: &mut Ctxt) -> Option<&'a Value> {
    if field.value.is_none() {
        cx.at(
            &field.key,
            format!("`{}` expects a value: `{form}`", field.key),
        );
    }
    field.value.as_ref()
}

/// A string literal (`key = "..."`).
pub(crate) fn string(field: &Field, cx: &mut Ctxt) -> Option<LitStr> {
    let key = &field.key;
    let form = format!("{key} = \"...\"");
    let value = value(field, &form, cx)?;
    match &value.node {
        Node::Str(lit) => Some(lit.clone()),
        _ => {
            let kind = value.kind();
            cx.at(
                value,
                format!("`{key}` expects a string literal, found {kind}: `{form}`"),
            );
            None
        }
    }
}

/// A boolean literal (`key = true`); a bare `key` means `true`.
pub(crate) fn boolean(field: &Field, cx: &mut Ctxt) -> Option<LitBool> {
    let key = &field.key;
    match &field.value {
        None => Some(LitBool::new(true, key.span())),
        Some(Value {
            node: Node::Bool(lit),
            ..
        }) => Some(lit.clone()),
        Some(other) => {
            cx.at(
                other,
                format!("`{key}` expects `true` or `false`: `{key} = false`"),
            );
            None
        }
    }
}

/// A Rust expression (`key = self.field`); `form` shows the accepted form.
pub(crate) fn expr(field: &Field, form: &str, cx: &mut Ctxt) -> Option<Expr> {
    let value = value(field, form, cx)?;
    match &value.node {
        Node::Expr(expr) => Some(expr.clone()),
        // `{ m }` reads as a map with the flag `m`; where an expression is expected it is the
        // block expression it also is (re-parsed below).
        _ => match syn::parse2(value.tokens.clone()) {
            Ok(expr) => Some(expr),
            Err(error) => {
                cx.push(error);
                None
            }
        },
    }
}

/// The fields of `key = { ... }` or `key(...)`; `form` shows the accepted form.
pub(crate) fn map<'a>(field: &'a Field, form: &str, cx: &mut Ctxt) -> Option<&'a Map> {
    let value = value(field, form, cx)?;
    match &value.node {
        Node::Map(map) => Some(map),
        _ => {
            let kind = value.kind();
            cx.at(
                value,
                format!("`{}` expects an object, found {kind}: `{form}`", field.key),
            );
            None
        }
    }
}

/// The elements of `key = [ ... ]`; `form` shows the accepted form.
pub(crate) fn list<'a>(field: &'a Field, form: &str, cx: &mut Ctxt) -> Option<&'a [Value]> {
    let value = value(field, form, cx)?;
    match &value.node {
        Node::List(values) => Some(values),
        _ => {
            let kind = value.kind();
            cx.at(
                value,
                format!("`{}` expects an array, found {kind}: `{form}`", field.key),
            );
            None
        }
    }
}

/// A list of non-empty string literals (`key = ["a", "b"]`).
pub(crate) fn strings(field: &Field, cx: &mut Ctxt) -> Option<Vec<LitStr>> {
    let form = format!("{} = [\"field\", ...]", field.key);
    let values = list(field, &form, cx)?;
    let mut out = Vec::new();
    for value in values {
        match &value.node {
            Node::Str(lit) if !lit.value().is_empty() => out.push(lit.clone()),
            _ => cx.at(
                value,
                format!("expected a non-empty string literal: `{form}`"),
            ),
        }
    }
    Some(out)
}

/// One of the words `W` (written as a string, or as a bare word).
pub(crate) fn choice<W: Word>(field: &Field, cx: &mut Ctxt) -> Option<W> {
    choice_or(field, None, cx)
}

/// [`choice`] for a key that also takes `other`, a form listed after the words in messages
/// (`grant` also takes `{ credits = 50 }`).
pub(crate) fn choice_or<W: Word>(field: &Field, other: Option<&str>, cx: &mut Ctxt) -> Option<W> {
    let key = &field.key;
    let quoted = |word: &str| format!("`\"{word}\"`");
    let expected = choices::<W>(other);
    let value = value(field, &format!("{key} = \"...\""), cx)?;
    let text = match &value.node {
        Node::Str(lit) => lit.value(),
        Node::Word(word) => word.to_string(),
        _ => {
            let kind = value.kind();
            cx.at(value, format!("`{key}` expects {expected}, found {kind}"));
            return None;
        }
    };
    if let Some(word) = W::from_name(&text) {
        return Some(word);
    }
    cx.at(
        value,
        format!(
            "unknown `{key}` `{text}`; {}expected {expected}",
            keys::did_you_mean::<W>(&text, quoted),
        ),
    );
    None
}

/// The words `W` quoted, then `other`: "`\"a\"`, `\"b\"` or other".
pub(crate) fn choices<W: Word>(other: Option<&str>) -> String {
    let forms: Vec<String> = W::NAMES
        .iter()
        .map(|word| format!("`\"{word}\"`"))
        .chain(other.map(str::to_owned))
        .collect();
    let forms: Vec<&str> = forms.iter().map(String::as_str).collect();
    keys::one_of(&forms, str::to_owned)
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse(tokens: TokenStream) -> Vec<Field> {
        let mut cx = Ctxt::new();
        let fields = fields(tokens, &mut cx);
        assert_eq!(cx.messages(), Vec::<String>::new());
        fields
    }

    #[test]
    fn reads_nested_values() {
        let fields = parse(quote!(
            checkout = { mode = "payment", line_items = [{ price = env("P"), quantity = 2 }] },
            meter = "api_call",
            grant = unlimited,
            flag,
            annotations(read_only_hint = true)
        ));
        let keys: Vec<String> = fields.iter().map(|f| f.key.to_string()).collect();
        assert_eq!(keys, ["checkout", "meter", "grant", "flag", "annotations"]);
        let Some(Node::Map(checkout)) = fields[0].value.as_ref().map(|v| &v.node) else {
            panic!("checkout is a map")
        };
        let Some(Node::List(items)) = checkout.fields[1].value.as_ref().map(|v| &v.node) else {
            panic!("line_items is a list")
        };
        let Node::Map(item) = &items[0].node else {
            panic!("an item is a map")
        };
        assert!(matches!(
            item.fields[0].value.as_ref().map(|v| &v.node),
            Some(Node::Call(name, args)) if name == "env" && args.len() == 1
        ));
        assert!(matches!(
            item.fields[1].value.as_ref().map(|v| &v.node),
            Some(Node::Int(lit)) if lit.base10_digits() == "2"
        ));
        assert!(
            matches!(fields[2].value.as_ref().map(|v| &v.node), Some(Node::Word(w)) if w == "unlimited")
        );
        assert!(fields[3].value.is_none());
        assert!(
            matches!(fields[4].value.as_ref().map(|v| &v.node), Some(Node::Map(m)) if m.fields.len() == 1)
        );
    }

    #[test]
    fn expressions_keep_their_tokens() {
        let fields = parse(quote!(
            analytics = self.analytics,
            payments = make().payments,
            meta = serde_json::json!({"x": 1}),
            quantity = 1 + 1,
            q = -1,
            call = make(1, 2)
        ));
        let mut cx = Ctxt::new();
        for field in &fields {
            let expr = expr(field, "x = <expression>", &mut cx).unwrap();
            assert_eq!(
                expr.to_token_stream().to_string(),
                field.value.as_ref().unwrap().tokens.to_string()
            );
        }
        assert!(cx.check().is_ok());
        assert!(matches!(
            fields[3].value.as_ref().unwrap().node,
            Node::Expr(_)
        ));
        assert!(matches!(
            fields[5].value.as_ref().unwrap().node,
            Node::Call(..)
        ));
    }

    #[test]
    fn braces_that_are_not_a_map_are_a_block_expression() {
        let fields = parse(quote!(
            meta = {
                let m = make();
                m
            },
            analytics = { &self.a },
            payments = { p },
            name = "x"
        ));
        assert_eq!(fields.len(), 4, "one bad value does not discard the others");
        assert!(matches!(
            fields[0].value.as_ref().unwrap().node,
            Node::Expr(Expr::Block(_))
        ));
        let mut cx = Ctxt::new();
        for field in &fields[..3] {
            let expr = expr(field, "x = <expression>", &mut cx).unwrap();
            assert!(matches!(expr, Expr::Block(_)), "{}", field.key);
        }
        assert!(cx.check().is_ok());
    }

    #[test]
    fn typed_readers_report_wrong_types() {
        let fields = parse(quote!(
            track_results = "no",
            name = 3,
            redact = ["a", 1],
            mode = "x"
        ));
        keys::keys! {
            enum Mode {
                Payment = "payment",
            }
        }
        let mut cx = Ctxt::new();
        assert!(boolean(&fields[0], &mut cx).is_none());
        assert!(string(&fields[1], &mut cx).is_none());
        assert_eq!(strings(&fields[2], &mut cx).map(|v| v.len()), Some(1));
        assert!(choice::<Mode>(&fields[3], &mut cx).is_none());
        let messages = cx.messages();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(
            messages[0].contains("`track_results = false`"),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("string literal, found an integer"),
            "{messages:?}"
        );
        assert!(
            messages[3].contains("expected `\"payment\"`"),
            "{messages:?}"
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        for tokens in [
            quote!(checkout = { mode = }),
            quote!(= "x"),
            quote!(name = ),
        ] {
            let mut cx = Ctxt::new();
            assert!(fields(tokens, &mut cx).is_empty());
            assert_eq!(cx.messages().len(), 1);
        }
    }
}
