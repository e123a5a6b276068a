//! Reads attribute arguments (`key = value`, `flag`, `key(...)`) into a neutral form, and the
//! typed values inside them. Every reader reports into [`Errors`] and keeps going.

use proc_macro2::TokenStream;
use syn::{Expr, ExprLit, Lit, LitBool, LitStr, Meta, Token, punctuated::Punctuated};

use crate::{errors::Errors, suggest};

/// One `key = value`, `key` or `key(...)` argument of an attribute.
pub(crate) struct Arg {
    /// The key as written (used for spans and messages).
    pub key: syn::Ident,
    /// What follows the key.
    pub value: ArgValue,
}

/// The shape of an argument's value.
pub(crate) enum ArgValue {
    /// `key` alone.
    Flag,
    /// `key = expr`.
    Expr(Expr),
    /// `key(a = 1, b)`.
    List(Vec<Arg>),
}

/// Parses a comma-separated argument list (the inside of `#[attr(...)]`).
pub(crate) fn args(tokens: TokenStream, errors: &mut Errors) -> Vec<Arg> {
    if tokens.is_empty() {
        return Vec::new();
    }
    match syn::parse::Parser::parse2(Punctuated::<Meta, Token![,]>::parse_terminated, tokens) {
        Ok(metas) => metas
            .into_iter()
            .filter_map(|meta| arg(meta, errors))
            .collect(),
        Err(error) => {
            errors.push(error);
            Vec::new()
        }
    }
}

fn arg(meta: Meta, errors: &mut Errors) -> Option<Arg> {
    let Some(key) = meta.path().get_ident().cloned() else {
        errors.at(
            meta.path(),
            "expected a plain option name such as `name = \"...\"`",
        );
        return None;
    };
    let value = match meta {
        Meta::Path(_) => ArgValue::Flag,
        Meta::NameValue(name_value) => ArgValue::Expr(name_value.value),
        Meta::List(list) => ArgValue::List(args(list.tokens, errors)),
    };
    Some(Arg { key, value })
}

/// Checks option names against the accepted set: unknown keys get a "did you mean", repeated
/// keys are reported at their second occurrence.
pub(crate) struct Keys {
    attribute: &'static str,
    accepted: &'static [&'static str],
    seen: Vec<String>,
}

impl Keys {
    /// A checker for the options of `#[attribute(...)]`.
    pub(crate) fn new(attribute: &'static str, accepted: &'static [&'static str]) -> Self {
        Self {
            attribute,
            accepted,
            seen: Vec::new(),
        }
    }

    /// The key's name when it is accepted and not a repeat; otherwise records why not.
    pub(crate) fn check(&mut self, key: &syn::Ident, errors: &mut Errors) -> Option<String> {
        let name = key.to_string();
        let attribute = self.attribute;
        if !self.accepted.contains(&name.as_str()) {
            let hint = match suggest::closest(&name, self.accepted) {
                Some(close) => format!("did you mean `{close}`? "),
                None => String::new(),
            };
            let accepted = suggest::one_of(self.accepted);
            errors.at(
                key,
                format!("unknown `{attribute}` option `{name}`; {hint}expected {accepted}"),
            );
            return None;
        }
        if self.seen.contains(&name) {
            errors.at(
                key,
                format!("duplicate `{attribute}` option `{name}`: it is already set"),
            );
            return None;
        }
        self.seen.push(name.clone());
        Some(name)
    }
}

/// The expression of `key = expr`, or an error showing the accepted form.
pub(crate) fn expr<'a>(arg: &'a Arg, form: &str, errors: &mut Errors) -> Option<&'a Expr> {
    match &arg.value {
        ArgValue::Expr(expr) => Some(expr),
        _ => {
            errors.at(&arg.key, format!("`{}` expects a value: `{form}`", arg.key));
            None
        }
    }
}

/// A string literal value (`key = "..."`).
pub(crate) fn string(arg: &Arg, errors: &mut Errors) -> Option<LitStr> {
    let form = format!("{} = \"...\"", arg.key);
    match expr(arg, &form, errors)? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Some(lit.clone()),
        other => {
            errors.at(
                other,
                format!("`{}` expects a string literal: `{form}`", arg.key),
            );
            None
        }
    }
}

/// A boolean literal value (`key = true`); a bare `key` means `true`.
pub(crate) fn boolean(arg: &Arg, errors: &mut Errors) -> Option<LitBool> {
    let key = &arg.key;
    match &arg.value {
        ArgValue::Flag => Some(LitBool::new(true, key.span())),
        ArgValue::Expr(Expr::Lit(ExprLit {
            lit: Lit::Bool(lit),
            ..
        })) => Some(lit.clone()),
        ArgValue::Expr(other) => {
            errors.at(
                other,
                format!("`{key}` expects `true` or `false`: `{key} = false`"),
            );
            None
        }
        ArgValue::List(_) => {
            errors.at(
                key,
                format!("`{key}` expects `true` or `false`: `{key} = false`"),
            );
            None
        }
    }
}

/// An array of string literals (`key = ["a", "b"]`).
pub(crate) fn strings(arg: &Arg, errors: &mut Errors) -> Option<Vec<LitStr>> {
    let form = format!("{} = [\"field\", ...]", arg.key);
    let Expr::Array(array) = expr(arg, &form, errors)? else {
        let value = expr(arg, &form, errors)?;
        errors.at(
            value,
            format!(
                "`{}` expects an array of string literals: `{form}`",
                arg.key
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    for element in &array.elems {
        match element {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) if !lit.value().is_empty() => {
                out.push(lit.clone());
            }
            other => errors.at(
                other,
                format!("expected a non-empty string literal: `{form}`"),
            ),
        }
    }
    Some(out)
}

/// The nested arguments of `key(...)`.
pub(crate) fn list<'a>(arg: &'a Arg, form: &str, errors: &mut Errors) -> Option<&'a [Arg]> {
    match &arg.value {
        ArgValue::List(args) => Some(args),
        _ => {
            errors.at(&arg.key, format!("`{}` expects a list: `{form}`", arg.key));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse(tokens: TokenStream) -> (Vec<Arg>, Result<(), syn::Error>) {
        let mut errors = Errors::default();
        let args = args(tokens, &mut errors);
        (args, errors.finish())
    }

    #[test]
    fn reads_all_shapes() {
        let (args, result) = parse(quote!(
            name = "x",
            track_results = false,
            flag,
            annotations(read_only_hint)
        ));
        assert!(result.is_ok());
        let keys: Vec<String> = args.iter().map(|arg| arg.key.to_string()).collect();
        assert_eq!(keys, ["name", "track_results", "flag", "annotations"]);
        assert!(matches!(args[2].value, ArgValue::Flag));
        assert!(matches!(&args[3].value, ArgValue::List(inner) if inner.len() == 1));
    }

    #[test]
    fn typed_readers_report_wrong_types() {
        let (args, _) = parse(quote!(track_results = "no", name = 3, redact = ["a", 1]));
        let mut errors = Errors::default();
        assert!(boolean(&args[0], &mut errors).is_none());
        assert!(string(&args[1], &mut errors).is_none());
        assert_eq!(strings(&args[2], &mut errors).map(|v| v.len()), Some(1));
        let message = errors
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>();
        assert_eq!(message.len(), 3);
        assert!(
            message[0].contains("`track_results = false`"),
            "{message:?}"
        );
        assert!(message[1].contains("string literal"), "{message:?}");
    }

    #[test]
    fn keys_reject_unknown_and_duplicates() {
        let (args, _) = parse(quote!(name = "a", nmae = "b", name = "c"));
        let mut keys = Keys::new("tool", &["name", "description"]);
        let mut errors = Errors::default();
        let accepted: Vec<_> = args
            .iter()
            .filter_map(|arg| keys.check(&arg.key, &mut errors))
            .collect();
        assert_eq!(accepted, ["name"]);
        let messages: Vec<String> = errors
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert!(messages[0].contains("did you mean `name`?"), "{messages:?}");
        assert!(
            messages[1].contains("duplicate `tool` option `name`"),
            "{messages:?}"
        );
    }

    #[test]
    fn malformed_arguments_are_an_error() {
        let (_, result) = parse(quote!(name = ));
        assert!(result.is_err());
    }
}
