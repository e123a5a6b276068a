//! `#[prompt(...)]` on a method: reads its options, its `#[paid]` and its signature
//! (`async fn name(&self [, args: T] [, cx: CallContext]) -> R`, like a tool's).

use syn::{ImplItemFn, LitStr};

use super::{
    method::{Kind, doc_comment, options, signature},
    paid, read_keys, string,
};
use crate::{ast::Prompt, ctxt::Ctxt, keys::keys};

keys! {
    /// The options of `#[prompt(...)]`.
    pub(crate) enum PromptKey {
        Name = "name",
        Title = "title",
        Description = "description",
    }
}

/// Reads a `#[prompt]` method: `attr` is its `#[prompt]`, `paid` its `#[paid]`.
pub(crate) fn read(
    method: &ImplItemFn,
    attr: &syn::Attribute,
    paid: Option<&syn::Attribute>,
    cx: &mut Ctxt,
) -> Prompt {
    let method_name = method.sig.ident.clone();
    let mut prompt = Prompt {
        name: LitStr::new(&method_name.to_string(), method_name.span()),
        method: method_name,
        title: None,
        description: doc_comment(&method.attrs),
        args: None,
        takes_context: false,
        returns: None,
        paid: paid.and_then(|attr| paid::read(attr, cx)),
    };
    if let Some(tokens) = options(attr, Kind::Prompt, cx) {
        let fields = super::fields(tokens, cx);
        read_keys("prompt", &fields, cx, |key, field, cx| match key {
            // #[prompt(name = "code_review")]
            PromptKey::Name => {
                if let Some(name) = string(field, cx) {
                    prompt.name = name;
                }
            }
            // #[prompt(title = "Code review")]
            PromptKey::Title => prompt.title = string(field, cx),
            // #[prompt(description = "...")]
            PromptKey::Description => {
                prompt.description = string(field, cx).map(|lit| lit.value());
            }
        });
    }
    let signature = signature(method, Kind::Prompt, cx);
    prompt.args = signature.args_type(Kind::Prompt, cx);
    prompt.takes_context = signature.takes_context;
    prompt.returns = signature.returns;
    prompt
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use crate::{ast::Server, attr::server, ctxt::Ctxt};

    fn read(item: TokenStream) -> (Server, Vec<String>) {
        let mut cx = Ctxt::new();
        let server = server::read(TokenStream::new(), syn::parse2(item).unwrap(), &mut cx);
        (server, cx.messages())
    }

    #[test]
    fn reads_prompts_with_and_without_arguments() {
        let (server, messages) = read(quote! {
            impl S {
                /// Reviews code.
                #[prompt(title = "Code review")]
                async fn review(&self, args: ReviewArgs, cx: CallContext) -> Vec<PromptMessage> { todo!() }
                #[mcp_analytics::prompt(name = "hello", description = "Says hello")]
                async fn greeting(&self) -> String { todo!() }
            }
        });
        assert!(messages.is_empty(), "{messages:?}");
        let prompts = &server.prompts;
        assert_eq!(prompts.len(), 2);
        assert_eq!(prompts[0].name.value(), "review");
        assert_eq!(prompts[0].description.as_deref(), Some("Reviews code."));
        assert!(prompts[0].args.is_some() && prompts[0].takes_context);
        assert_eq!(prompts[1].name.value(), "hello");
        assert!(prompts[1].args.is_none() && prompts[1].returns.is_some());
        assert!(server.tools.is_empty());
    }

    #[test]
    fn reports_prompt_mistakes() {
        let (_, messages) = read(quote! {
            impl S {
                #[prompt(nmae = "x", title = 1)]
                fn sync_prompt(&mut self, a: A, b: B) -> String { todo!() }
                #[prompt]
                #[tool]
                async fn both(&self) -> String { todo!() }
            }
        });
        let all = messages.join("\n");
        for expected in [
            "unknown `prompt` option `nmae`; did you mean `name`?",
            "`title` expects a string literal",
            "a `#[prompt]` method must be `async`",
            "a `#[prompt]` method takes `&self`: prompts of one server run concurrently",
            "a `#[prompt]` method takes at most one argument type",
            "a method serves one thing: it is already a `#[prompt]`; write a second method for the `#[tool]`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(messages.len(), 6, "{all}");
    }
}
