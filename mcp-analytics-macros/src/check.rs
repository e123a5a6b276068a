//! Rules that need more than one value: where `#[mcp_server]` sits, tool names across the
//! server, and the pricing rules between the values of one `#[paid]`.

use crate::{
    ast::{Mode, Price, Pricing, Server},
    ctxt::Ctxt,
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

/// Checks tool names across all tools and each tool's pricing.
pub(crate) fn server(server: &Server, cx: &mut Ctxt) {
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
