//! The value grammar of `#[paid(...)]`, which mirrors Stripe's JSON-like parameters:
//! `key = value` fields where a value is a literal, `{ key = value, ... }`, `[value, ...]` or a
//! call such as `env("STRIPE_PRICE")`. Every node keeps its span for errors.

use proc_macro2::{Span, TokenStream};
use syn::{
    Ident, LitBool, LitInt, LitStr, Token, braced, bracketed, parenthesized,
    parse::{Parse, ParseStream, Parser},
    punctuated::Punctuated,
};

/// `key = value` (or a bare `key`, kept so it can be reported as missing its value).
pub(crate) struct Field {
    /// The key as written.
    pub key: Ident,
    /// The value; `None` for a bare `key`.
    pub value: Option<Value>,
}

/// A value with the span of its tokens.
pub(crate) enum Value {
    /// `"text"`.
    Str(LitStr),
    /// `1`.
    Int(LitInt),
    /// `true` / `false`.
    Bool(LitBool),
    /// `{ key = value, ... }`.
    Object(Span, Vec<Field>),
    /// `[value, ...]`.
    Array(Span, Vec<Value>),
    /// `name(arguments)`, e.g. `env("STRIPE_PRICE_IMAGE")`.
    Call(Ident, Span, Vec<Value>),
    /// A bare word, e.g. `payment` written without quotes.
    Word(Ident),
    /// Anything else (a path, an expression); only its span matters.
    Other(Span),
}

impl Value {
    /// The span covering the value, for errors.
    pub(crate) fn span(&self) -> Span {
        match self {
            Value::Str(lit) => lit.span(),
            Value::Int(lit) => lit.span(),
            Value::Bool(lit) => lit.span,
            Value::Object(span, _) | Value::Array(span, _) | Value::Other(span) => *span,
            Value::Call(name, span, _) => name.span().join(*span).unwrap_or(*span),
            Value::Word(word) => word.span(),
        }
    }

    /// What kind of value this is, for "expected X, found Y" messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Bool(_) => "a boolean",
            Value::Object(..) => "an object `{ ... }`",
            Value::Array(..) => "an array `[ ... ]`",
            Value::Call(..) => "a call",
            Value::Word(_) => "a bare word",
            Value::Other(_) => "an expression",
        }
    }
}

/// Parses a comma-separated field list (the inside of `#[paid(...)]` or of `{ ... }`).
pub(crate) fn fields(tokens: TokenStream) -> syn::Result<Vec<Field>> {
    let parser = Punctuated::<Field, Token![,]>::parse_terminated;
    Ok(parser.parse2(tokens)?.into_iter().collect())
}

impl Parse for Field {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Field { key, value })
    }
}

impl Parse for Value {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(syn::token::Brace) {
            let content;
            let brace = braced!(content in input);
            let fields = Punctuated::<Field, Token![,]>::parse_terminated(&content)?;
            return Ok(Value::Object(
                brace.span.join(),
                fields.into_iter().collect(),
            ));
        }
        if input.peek(syn::token::Bracket) {
            let content;
            let bracket = bracketed!(content in input);
            let values = Punctuated::<Value, Token![,]>::parse_terminated(&content)?;
            return Ok(Value::Array(
                bracket.span.join(),
                values.into_iter().collect(),
            ));
        }
        if input.peek(Ident) && input.peek2(syn::token::Paren) {
            let name: Ident = input.parse()?;
            let content;
            let paren = parenthesized!(content in input);
            let arguments = Punctuated::<Value, Token![,]>::parse_terminated(&content)?;
            return Ok(Value::Call(
                name,
                paren.span.join(),
                arguments.into_iter().collect(),
            ));
        }
        if input.peek(Ident) && {
            let fork = input.fork();
            fork.parse::<Ident>().is_ok() && (fork.is_empty() || fork.peek(Token![,]))
        } {
            return Ok(Value::Word(input.parse()?));
        }
        // A literal, or any other expression (kept as a span so the reader can say what is
        // expected instead).
        let expr: syn::Expr = input.parse()?;
        Ok(match expr {
            syn::Expr::Lit(syn::ExprLit { lit, .. }) => match lit {
                syn::Lit::Str(lit) => Value::Str(lit),
                syn::Lit::Int(lit) => Value::Int(lit),
                syn::Lit::Bool(lit) => Value::Bool(lit),
                other => Value::Other(other.span()),
            },
            other => Value::Other(syn::spanned::Spanned::span(&other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[test]
    fn reads_nested_values() {
        let fields = fields(quote!(
            checkout = { mode = "payment", line_items = [{ price = env("P"), quantity = 2 }] },
            meter = "api_call",
            grant = unlimited,
            flag
        ))
        .unwrap();
        let keys: Vec<String> = fields.iter().map(|f| f.key.to_string()).collect();
        assert_eq!(keys, ["checkout", "meter", "grant", "flag"]);
        let Some(Value::Object(_, checkout)) = &fields[0].value else {
            panic!("checkout is an object")
        };
        let Some(Value::Array(_, items)) = &checkout[1].value else {
            panic!("line_items is an array")
        };
        let Value::Object(_, item) = &items[0] else {
            panic!("an item is an object")
        };
        assert!(
            matches!(&item[0].value, Some(Value::Call(name, _, args)) if name == "env" && args.len() == 1)
        );
        assert!(matches!(&item[1].value, Some(Value::Int(lit)) if lit.base10_digits() == "2"));
        assert!(matches!(&fields[2].value, Some(Value::Word(word)) if word == "unlimited"));
        assert!(fields[3].value.is_none());
    }

    #[test]
    fn other_expressions_are_kept_as_spans() {
        let fields = fields(quote!(
            reason = format!("x"),
            quantity = 1 + 1,
            q = -1,
            s = "x"
        ))
        .unwrap();
        assert!(matches!(fields[0].value, Some(Value::Other(_))));
        assert!(matches!(fields[1].value, Some(Value::Other(_))));
        assert!(matches!(fields[2].value, Some(Value::Other(_))));
        assert!(matches!(fields[3].value, Some(Value::Str(_))));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(fields(quote!(checkout = { mode = })).is_err());
        assert!(fields(quote!(= "x")).is_err());
    }
}
