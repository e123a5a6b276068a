//! Rules that need more than one value: where `#[mcp_server]` sits, tool and prompt names and
//! resource URIs across the server, what each `#[complete]` completes, and the pricing rules
//! between the values of one `#[paid]`.

use crate::{
    ast::{CompletionTarget, Mode, Price, Pricing, Server, Uri},
    ctxt::Ctxt,
    keys::{did_you_mean_among, listed},
};

/// The longest tool name MCP clients accept.
const MAX_TOOL_NAME: usize = 128;
/// Stripe's limits on line items per Checkout Session.
const MAX_PAYMENT_ITEMS: usize = 100;
const MAX_SUBSCRIPTION_ITEMS: usize = 20;

/// Checks that `#[mcp_server]` sits on an inherent, non-generic impl block.
pub(crate) fn placement(item: &syn::ItemImpl, cx: &mut Ctxt) {
    if let Some((_, path, _)) = &item.trait_ {
        cx.at(path, "`#[mcp_server]` goes on an inherent impl block (`impl MyServer { ... }`), not on a trait impl: it generates the `ServerHandler` impl itself");
    }
    if !item.generics.params.is_empty() {
        cx.at(&item.generics, "`#[mcp_server]` does not support generic impl blocks: implement it for a concrete type");
    }
}

/// Checks names and URIs across the server, completion targets and every pricing.
pub(crate) fn server(server: &Server, cx: &mut Ctxt) {
    tools(server, cx);
    prompts(server, cx);
    resources(server, cx);
    completions(server, cx);
}

fn tools(server: &Server, cx: &mut Ctxt) {
    let mut names: Vec<String> = Vec::new();
    for tool in &server.tools {
        let name = tool.name.value();
        if let Some(problem) = name_problem(&name) {
            cx.at(&tool.name, format!("invalid tool name `{name}`: {problem}"));
        }
        if names.contains(&name) {
            cx.at(&tool.name, format!("duplicate tool name `{name}`: each tool of a server needs its own name (set one with `#[tool(name = \"...\")]`)"));
        }
        names.push(name);
        if let Some(pricing) = &tool.paid {
            self::pricing(pricing, cx);
        }
    }
}

fn prompts(server: &Server, cx: &mut Ctxt) {
    let mut names: Vec<String> = Vec::new();
    for prompt in &server.prompts {
        let name = prompt.name.value();
        if name.trim().is_empty() {
            cx.at(&prompt.name, "a prompt name cannot be empty");
        }
        if names.contains(&name) {
            cx.at(&prompt.name, format!("duplicate prompt name `{name}`: each prompt of a server needs its own name (set one with `#[prompt(name = \"...\")]`)"));
        }
        names.push(name);
        if let Some(pricing) = &prompt.paid {
            self::pricing(pricing, cx);
        }
    }
}

fn resources(server: &Server, cx: &mut Ctxt) {
    let mut uris: Vec<String> = Vec::new();
    for resource in &server.resources {
        let lit = resource.uri.lit();
        let uri = lit.value();
        if uris.contains(&uri) {
            let what = match resource.uri {
                Uri::Fixed(_) => "resource URI",
                Uri::Template(..) => "resource URI template",
            };
            cx.at(lit, format!("duplicate {what} `{uri}`: another `#[resource]` of this server already serves it"));
        }
        uris.push(uri);
        if let Some(pricing) = &resource.paid {
            self::pricing(pricing, cx);
        }
    }
}

/// Each completion names an existing prompt (that takes arguments) or resource template and,
/// for a template, one of its variables; one completion per argument. (A prompt's argument
/// names come from its arguments type, which the macro cannot see: they are checked when the
/// server starts.)
fn completions(server: &Server, cx: &mut Ctxt) {
    let prompts: Vec<String> = server.prompts.iter().map(|p| p.name.value()).collect();
    let templates: Vec<String> = server
        .resources
        .iter()
        .filter(|r| matches!(r.uri, Uri::Template(..)))
        .map(|r| r.uri.lit().value())
        .collect();
    let mut seen: Vec<(bool, String, String)> = Vec::new();
    for completion in &server.completions {
        let target = completion.target.lit();
        let name = target.value();
        let argument = completion.argument.value();
        let is_prompt = matches!(completion.target, CompletionTarget::Prompt(_));
        if is_prompt {
            match server.prompts.iter().find(|p| p.name.value() == name) {
                None => cx.at(target, format!("no prompt named `{name}` in this server; {}", choices(&name, &prompts, "prompts"))),
                Some(prompt) if prompt.args.is_none() => cx.at(&completion.argument, format!("prompt `{name}` takes no arguments: there is nothing to complete (give its method an arguments type)")),
                Some(_) => {}
            }
        } else {
            match server.resources.iter().find(|r| r.uri.lit().value() == name) {
                None => cx.at(target, format!("no resource template `{name}` in this server; {}", choices(&name, &templates, "resource templates"))),
                Some(resource) => match &resource.uri {
                    Uri::Fixed(_) => cx.at(target, format!("`{name}` is a fixed URI: completions fill in the variables of a `uri_template`")),
                    Uri::Template(_, variables) => {
                        let names: Vec<&str> = variables.iter().map(|v| v.name.as_str()).collect();
                        if !names.contains(&argument.as_str()) {
                            cx.at(&completion.argument, format!(
                                "`{argument}` is not a variable of `{name}`; {}its variables: {}",
                                did_you_mean_among(&argument, &names, |close| format!("`{close}`")),
                                listed(&names, |v| format!("`{v}`"))
                            ));
                        }
                    }
                },
            }
        }
        let key = (is_prompt, name, argument);
        if seen.contains(&key) {
            cx.at(&completion.argument, format!("`{}` of `{}` already has a `#[complete]` method: one method completes one argument", key.2, key.1));
        }
        seen.push(key);
    }
}

/// "did you mean `x`? this server's prompts: `a`, `b`" for a name not found.
fn choices(name: &str, known: &[String], what: &str) -> String {
    let mut known: Vec<&str> = known.iter().map(String::as_str).collect();
    known.dedup();
    if known.is_empty() {
        return format!("this server has no {what}");
    }
    format!(
        "{}this server's {what}: {}",
        did_you_mean_among(name, &known, |close| format!("`{close}`")),
        listed(&known, |k| format!("`{k}`"))
    )
}

/// Why `name` is not a valid MCP tool name, if it is not.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a tool name cannot be empty".into());
    }
    if name.len() > MAX_TOOL_NAME {
        return Some(format!(
            "a tool name has at most {MAX_TOOL_NAME} characters"
        ));
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .map(|c| format!("`{c}` is not allowed; use ASCII letters, digits, `_`, `-` or `.`"))
}

/// Stripe's rules between the checkout mode, `meter`, `grant` and the line items.
pub(crate) fn pricing(pricing: &Pricing, cx: &mut Ctxt) {
    let checkout = &pricing.checkout;
    if let Some((_, key)) = pricing.grant
        && checkout.mode != Mode::Payment
    {
        cx.at_span(key, "`grant` applies to one-time payments (`mode = \"payment\"`); a subscription grants use while it is active");
    }
    if let Some(meter) = &pricing.meter {
        if checkout.mode != Mode::Subscription {
            cx.at(meter, "`meter` needs `mode = \"subscription\"`: usage is billed through a metered subscription price");
        }
        for quantity in checkout
            .line_items
            .iter()
            .filter_map(|item| item.quantity.as_ref())
        {
            cx.at(
                quantity,
                "metered prices take no `quantity` (Stripe bills the metered usage): remove it",
            );
        }
    } else if checkout.mode == Mode::Payment {
        for item in checkout
            .line_items
            .iter()
            .filter(|item| item.quantity.is_none())
        {
            let (Price::Id(price) | Price::Env(price)) = &item.price;
            cx.at(
                price,
                "in `payment` mode every line item needs a quantity: `{ price = \"price_...\", quantity = 1 }`",
            );
        }
    }
    let limit = match checkout.mode {
        Mode::Payment => MAX_PAYMENT_ITEMS,
        Mode::Subscription => MAX_SUBSCRIPTION_ITEMS,
    };
    if checkout.line_items.len() > limit {
        cx.at_span(
            checkout.line_items_span,
            format!("Stripe accepts at most {limit} line items in this mode"),
        );
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::attr::paid::tests::read_paid;

    fn rules(tokens: proc_macro2::TokenStream) -> Vec<String> {
        let (read, messages) = read_paid(tokens);
        assert!(messages.is_empty(), "{messages:?}");
        let mut cx = Ctxt::new();
        pricing(&read.expect("a complete pricing"), &mut cx);
        cx.messages()
    }

    fn server_messages(item: proc_macro2::TokenStream) -> Vec<String> {
        let mut cx = Ctxt::new();
        let read = crate::attr::server::read(
            proc_macro2::TokenStream::new(),
            syn::parse2(item).unwrap(),
            &mut cx,
        );
        server(&read, &mut cx);
        cx.messages()
    }

    #[test]
    fn prompt_names_and_resource_uris_are_unique() {
        let messages = server_messages(quote! {
            impl S {
                #[prompt(name = "greet")]
                async fn a(&self) -> String { todo!() }
                #[prompt(name = "greet")]
                async fn b(&self) -> String { todo!() }
                #[resource(uri = "test://x")]
                async fn c(&self) -> String { todo!() }
                #[resource(uri = "test://x")]
                async fn d(&self) -> String { todo!() }
                #[resource(uri_template = "test://{id}")]
                async fn e(&self, id: String) -> String { todo!() }
                #[resource(uri_template = "test://{id}")]
                async fn f(&self, id: String) -> String { todo!() }
                #[tool(name = "greet")]
                async fn g(&self) -> String { todo!() }
            }
        });
        let all = messages.join("\n");
        assert!(all.contains("duplicate prompt name `greet`"), "{all}");
        assert!(all.contains("duplicate resource URI `test://x`"), "{all}");
        assert!(
            all.contains("duplicate resource URI template `test://{id}`"),
            "{all}"
        );
        assert_eq!(messages.len(), 3, "a tool may share a prompt's name: {all}");
    }

    #[test]
    fn completions_name_what_exists() {
        let messages = server_messages(quote! {
            impl S {
                #[prompt]
                async fn review(&self, args: Args) -> String { todo!() }
                #[prompt]
                async fn hello(&self) -> String { todo!() }
                #[resource(uri = "test://fixed")]
                async fn fixed(&self) -> String { todo!() }
                #[resource(uri_template = "test://items/{id}")]
                async fn item(&self, id: String) -> String { todo!() }
                #[complete(prompt = "reveiw", argument = "a")]
                async fn c1(&self) -> Vec<String> { todo!() }
                #[complete(prompt = "hello", argument = "a")]
                async fn c2(&self) -> Vec<String> { todo!() }
                #[complete(resource = "test://fixed", argument = "a")]
                async fn c3(&self) -> Vec<String> { todo!() }
                #[complete(resource = "test://items/{idd}", argument = "id")]
                async fn c4(&self) -> Vec<String> { todo!() }
                #[complete(resource = "test://items/{id}", argument = "idd")]
                async fn c5(&self) -> Vec<String> { todo!() }
                #[complete(prompt = "review", argument = "code")]
                async fn c6(&self) -> Vec<String> { todo!() }
                #[complete(prompt = "review", argument = "code")]
                async fn c7(&self) -> Vec<String> { todo!() }
            }
        });
        let all = messages.join("\n");
        for expected in [
            "no prompt named `reveiw` in this server; did you mean `review`? this server's prompts: `review`, `hello`",
            "prompt `hello` takes no arguments",
            "`test://fixed` is a fixed URI",
            "no resource template `test://items/{idd}` in this server; did you mean `test://items/{id}`?",
            "`idd` is not a variable of `test://items/{id}`; did you mean `id`?",
            "`code` of `review` already has a `#[complete]` method",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(messages.len(), 6, "{all}");
    }

    #[test]
    fn tool_names_follow_the_mcp_rules() {
        assert_eq!(name_problem("get_weather.v2-beta"), None);
        assert!(name_problem("").is_some());
        assert!(name_problem("has space").unwrap().contains("` `"));
        assert!(name_problem(&"x".repeat(129)).is_some());
    }

    #[test]
    fn mode_rules() {
        let messages = rules(quote!(
            checkout = { mode = "payment", success_url = "https://x.dev", line_items = [{ price = "price_1" }] },
            meter = "api_call"
        ));
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].contains("needs `mode = \"subscription\"`"));

        let messages = rules(quote!(
            checkout = { mode = "payment", success_url = "https://x.dev", line_items = [{ price = "price_1" }] }
        ));
        assert!(messages[0].contains("needs a quantity"), "{messages:?}");

        let messages = rules(quote!(
            checkout = { mode = "subscription", success_url = "https://x.dev", line_items = [{ price = "price_1", quantity = 2 }] },
            meter = "api_call", grant = "unlimited"
        ));
        let all = messages.join("\n");
        assert!(
            all.contains("take no `quantity`") && all.contains("`grant` applies to one-time"),
            "{all}"
        );
    }

    #[test]
    fn line_item_limits_depend_on_the_mode() {
        let items = (0..21).map(|_| quote!({ price = "price_1" }));
        let messages = rules(quote!(
            checkout = { mode = "subscription", success_url = "https://x.dev", line_items = [#(#items),*] }
        ));
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(
            messages[0].contains("at most 20 line items"),
            "{messages:?}"
        );
    }
}
