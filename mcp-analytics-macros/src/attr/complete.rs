//! `#[complete(...)]` on a method: which prompt argument or resource template variable it
//! completes, and its signature (`async fn name(&self [, value: &str] [, cx: CallContext]) -> R`,
//! `value` being what the user typed so far). Whether the target exists is checked in `check`.

use syn::{ImplItemFn, LitStr};

use super::{
    method::{Kind, options, signature},
    read_keys, string,
};
use crate::{
    ast::{Completion, CompletionTarget},
    ctxt::Ctxt,
    keys::keys,
};

keys! {
    /// The options of `#[complete(...)]`.
    pub(crate) enum CompleteKey {
        Prompt = "prompt",
        Resource = "resource",
        Argument = "argument",
    }
}

const FORM: &str = "#[complete(prompt = \"prompt_name\", argument = \"argument\")]` or `#[complete(resource = \"scheme://items/{id}\", argument = \"id\")]";

/// Reads a `#[complete]` method; `None` when its target is incomplete (reported).
pub(crate) fn read(
    method: &ImplItemFn,
    attr: &syn::Attribute,
    cx: &mut Ctxt,
) -> Option<Completion> {
    let mut target = None;
    let mut argument: Option<Option<LitStr>> = None;
    if let Some(tokens) = options(attr, Kind::Complete, cx) {
        let fields = super::fields(tokens, cx);
        read_keys("complete", &fields, cx, |key, field, cx| match key {
            // #[complete(prompt = "code_review", ...)]
            // #[complete(resource = "test://template/{id}/data", ...)]
            CompleteKey::Prompt | CompleteKey::Resource => {
                if target.is_some() {
                    cx.at(
                        &field.key,
                        "a completion completes one prompt or one resource template, not both",
                    );
                    return;
                }
                target = Some(string(field, cx).map(|lit| match key {
                    CompleteKey::Prompt => CompletionTarget::Prompt(lit),
                    _ => CompletionTarget::Resource(lit),
                }));
            }
            // #[complete(..., argument = "language")]
            CompleteKey::Argument => argument = Some(string(field, cx)),
        });
    }
    if target.is_none() {
        cx.at(
            attr,
            format!("`#[complete]` needs what it completes: `{FORM}`"),
        );
    }
    if target.is_some() && argument.is_none() {
        cx.at(
            attr,
            format!("`#[complete]` needs the `argument` it completes: `{FORM}`"),
        );
    }
    let signature = signature(method, Kind::Complete, cx);
    let mut params = signature.params.into_iter();
    let value = params.next().map(|(param, _)| param);
    for (_, input) in params {
        cx.at(input, "a `#[complete]` method takes at most the value typed so far (`value: &str`) and an optional `CallContext`");
    }
    Some(Completion {
        method: method.sig.ident.clone(),
        target: target??,
        argument: argument??,
        value,
        takes_context: signature.takes_context,
        returns: signature.returns,
    })
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::{ast::Server, attr::server};

    fn read(item: TokenStream) -> (Server, Vec<String>) {
        let mut cx = Ctxt::new();
        let server = server::read(TokenStream::new(), syn::parse2(item).unwrap(), &mut cx);
        (server, cx.messages())
    }

    #[test]
    fn reads_completions() {
        let (server, messages) = read(quote! {
            impl S {
                #[complete(prompt = "review", argument = "language")]
                async fn languages(&self, value: &str) -> Vec<String> { todo!() }
                #[complete(resource = "test://items/{id}", argument = "id")]
                async fn ids(&self, cx: CallContext) -> Vec<String> { todo!() }
            }
        });
        assert!(messages.is_empty(), "{messages:?}");
        let [languages, ids] = &server.completions[..] else {
            panic!("two completions")
        };
        assert!(
            matches!(&languages.target, CompletionTarget::Prompt(lit) if lit.value() == "review")
        );
        assert_eq!(languages.argument.value(), "language");
        assert!(languages.value.is_some() && !languages.takes_context);
        assert!(matches!(&ids.target, CompletionTarget::Resource(_)));
        assert!(ids.value.is_none() && ids.takes_context);
    }

    #[test]
    fn reports_completion_mistakes() {
        let (_, messages) = read(quote! {
            impl S {
                #[complete(argument = "x")]
                async fn a(&self) -> Vec<String> { todo!() }
                #[complete(prompt = "p")]
                async fn b(&self) -> Vec<String> { todo!() }
                #[complete(prompt = "p", resource = "r://{x}", argument = "x", argumnet = "y")]
                async fn c(&self, value: &str, other: &str) -> Vec<String> { todo!() }
                #[complete(prompt = "p", argument = "x")]
                #[paid(reason = "no")]
                async fn d(&self) -> Vec<String> { todo!() }
            }
        });
        let all = messages.join("\n");
        for expected in [
            "needs what it completes",
            "needs the `argument` it completes",
            "not both",
            "unknown `complete` option `argumnet`; did you mean `argument`?",
            "takes at most the value typed so far",
            "cannot be `#[paid]`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(messages.len(), 6, "{all}");
    }
}
