//! `#[paid(...)]`: reads the pricing of a tool and checks each value by Stripe's rules (price
//! ids, URLs, meter names, positive counts), so a bad value is a compile error at the offending
//! token. Rules between values (mode against meter, grant and quantities) are in `check`.

use syn::{LitInt, LitStr};

use super::{
    Field, Map, Node, Value, choice, choice_or, choices, list, map, read_keys, string, value,
};
use crate::{
    ast::{Checkout, Grant, LineItem, Mode, Price, Pricing},
    ctxt::Ctxt,
    keys::keys,
};

keys! {
    /// The options of `#[paid(...)]`.
    pub(crate) enum PaidKey {
        Checkout = "checkout",
        Meter = "meter",
        Reason = "reason",
        Grant = "grant",
    }
}

keys! {
    /// The fields of `checkout = { ... }`.
    pub(crate) enum CheckoutKey {
        Mode = "mode",
        SuccessUrl = "success_url",
        CancelUrl = "cancel_url",
        LineItems = "line_items",
    }
}

keys! {
    /// The grants named by a word (`grant = "unlimited"`).
    pub(crate) enum GrantWord {
        Credits = "credits",
        Unlimited = "unlimited",
    }
}

keys! {
    /// The fields of a credit pack `grant = { credits = 50 }`.
    pub(crate) enum PackKey {
        Credits = "credits",
    }
}

keys! {
    /// The fields of a line item `{ price = ..., quantity = ... }`.
    pub(crate) enum LineItemKey {
        Price = "price",
        Quantity = "quantity",
    }
}

/// The whole accepted form, shown when `#[paid]` has no pricing.
const FORM: &str = "#[paid(checkout = { mode = \"payment\", success_url = \"https://...\", line_items = [{ price = \"price_...\", quantity = 1 }] })]";
const LINE_ITEMS_FORM: &str = "line_items = [{ price = \"price_...\", quantity = 1 }]";
const PRICE_FORM: &str = "`price = \"price_...\"` or `price = env(\"STRIPE_PRICE_...\")`";
/// The form of a credit pack, listed with the grants named by a word.
const PACK_FORM: &str = "a credit pack `{ credits = 50 }`";

/// Stripe's limit on a meter event name.
const MAX_METER_NAME: usize = 100;

/// Reads `#[paid(...)]`; every mistake goes to `cx`. `None` when no complete pricing remains
/// (then the rules between values are not checked: each mistake is reported once).
pub(crate) fn read(attr: &syn::Attribute, cx: &mut Ctxt) -> Option<Pricing> {
    let syn::Meta::List(list) = &attr.meta else {
        cx.at(attr, format!("`#[paid]` needs its pricing: `{FORM}`"));
        return None;
    };
    let fields = super::fields(list.tokens.clone(), cx);
    let mut checkout = None;
    let mut meter = None;
    let mut reason = None;
    let mut grant = None;
    let keys = read_keys("paid", &fields, cx, |key, field, cx| match key {
        // #[paid(checkout = { ... })]
        PaidKey::Checkout => checkout = Some(read_checkout(field, cx)),
        // #[paid(meter = "api_call")]
        PaidKey::Meter => meter = string(field, cx).and_then(|lit| meter_name(lit, cx)),
        // #[paid(reason = "High-quality image generation")]
        PaidKey::Reason => reason = string(field, cx).and_then(|lit| non_empty(lit, cx)),
        // #[paid(grant = "unlimited")], #[paid(grant = { credits = 50 })]
        PaidKey::Grant => grant = read_grant(field, cx).map(|g| (g, field.key.span())),
    });
    if !keys.saw(PaidKey::Checkout) {
        cx.at(
            attr,
            format!("`#[paid]` needs `checkout = {{ ... }}`: `{FORM}`"),
        );
    }
    Some(Pricing {
        checkout: checkout??,
        meter,
        reason,
        grant,
    })
}

fn read_checkout(field: &Field, cx: &mut Ctxt) -> Option<Checkout> {
    let form =
        "checkout = { mode = \"payment\", success_url = \"https://...\", line_items = [...] }";
    let Map { span, fields } = map(field, form, cx)?;
    let mut mode = None;
    let mut success_url = None;
    let mut cancel_url = None;
    let mut line_items = None;
    let keys = read_keys("checkout", fields, cx, |key, field, cx| match key {
        CheckoutKey::Mode => mode = read_mode(field, cx),
        CheckoutKey::SuccessUrl => success_url = string(field, cx).and_then(|lit| url(lit, cx)),
        CheckoutKey::CancelUrl => cancel_url = string(field, cx).and_then(|lit| url(lit, cx)),
        CheckoutKey::LineItems => line_items = read_line_items(field, cx),
    });
    let missing = [
        (
            CheckoutKey::Mode,
            "`mode = \"payment\"` or `mode = \"subscription\"`",
        ),
        (
            CheckoutKey::SuccessUrl,
            "`success_url = \"https://...\"` (where Stripe sends the buyer after paying)",
        ),
        (
            CheckoutKey::LineItems,
            "`line_items = [{ price = \"price_...\", quantity = 1 }]`",
        ),
    ];
    for (key, what) in missing {
        if !keys.saw(key) {
            cx.at_span(*span, format!("`checkout` is missing {what}"));
        }
    }
    let (line_items, line_items_span) = line_items?;
    Some(Checkout {
        mode: mode?,
        success_url: success_url?,
        cancel_url,
        line_items,
        line_items_span,
    })
}

fn read_mode(field: &Field, cx: &mut Ctxt) -> Option<Mode> {
    if let Some(Value {
        node: Node::Str(lit),
        ..
    }) = &field.value
        && lit.value() == "setup"
    {
        cx.at(lit, "`mode = \"setup\"` collects no payment and cannot gate a tool; use `\"payment\"` (one-time) or `\"subscription\"`");
        return None;
    }
    choice(field, cx)
}

/// The line items and the span of their list; `None` unless every item is complete.
fn read_line_items(field: &Field, cx: &mut Ctxt) -> Option<(Vec<LineItem>, proc_macro2::Span)> {
    let values = list(field, LINE_ITEMS_FORM, cx)?;
    let span = syn::spanned::Spanned::span(&field.value.as_ref()?.tokens);
    if values.is_empty() {
        let value = field.value.as_ref()?;
        cx.at(
            value,
            format!("`line_items` cannot be empty: `{LINE_ITEMS_FORM}`"),
        );
        return None;
    }
    let items: Vec<LineItem> = values
        .iter()
        .filter_map(|value| read_line_item(value, cx))
        .collect();
    (items.len() == values.len()).then_some((items, span))
}

fn read_line_item(value: &Value, cx: &mut Ctxt) -> Option<LineItem> {
    let Node::Map(Map { span, fields }) = &value.node else {
        let kind = value.kind();
        cx.at(
            value,
            format!(
                "a line item is an object, found {kind}: `{{ price = \"price_...\", quantity = 1 }}`"
            ),
        );
        return None;
    };
    let mut price = None;
    // `Some(None)`: a quantity was written but is not valid.
    let mut quantity: Option<Option<LitInt>> = None;
    let keys = read_keys("line item", fields, cx, |key, field, cx| match key {
        LineItemKey::Price => price = read_price(field, cx),
        LineItemKey::Quantity => quantity = Some(positive(field, "quantity = 1", cx)),
    });
    if !keys.saw(LineItemKey::Price) {
        cx.at_span(
            *span,
            "a line item needs `price = \"price_...\"` (or `price = env(\"VAR\")`)",
        );
    }
    let quantity = match quantity {
        Some(quantity) => Some(quantity?),
        None => None,
    };
    Some(LineItem {
        price: price?,
        quantity,
    })
}

fn read_price(field: &Field, cx: &mut Ctxt) -> Option<Price> {
    let value = value(field, "price = \"price_...\"", cx)?;
    match &value.node {
        Node::Str(lit) => {
            let id = lit.value();
            let valid = ["price_", "plan_"].iter().any(|prefix| {
                id.strip_prefix(prefix).is_some_and(|rest| {
                    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
            });
            if valid {
                Some(Price::Id(lit.clone()))
            } else {
                cx.at(lit, format!("`{id}` is not a Stripe price id: price ids look like `price_1Pq...` (legacy `plan_...` also works); write {PRICE_FORM}"));
                None
            }
        }
        Node::Call(name, arguments) if name == "env" => match arguments.as_slice() {
            [
                Value {
                    node: Node::Str(var),
                    ..
                },
            ] if is_env_name(&var.value()) => Some(Price::Env(var.clone())),
            [
                Value {
                    node: Node::Str(var),
                    ..
                },
            ] => {
                cx.at(var, format!("`{}` is not an environment variable name: use letters, digits and `_`, not starting with a digit", var.value()));
                None
            }
            _ => {
                cx.at(
                    value,
                    "`env(...)` takes one string: `env(\"STRIPE_PRICE_IMAGE\")`",
                );
                None
            }
        },
        Node::Call(name, _) => {
            cx.at(
                name,
                format!("unknown function `{name}`: write {PRICE_FORM}"),
            );
            None
        }
        _ => {
            let kind = value.kind();
            cx.at(
                value,
                format!("`price` expects a string, found {kind}: write {PRICE_FORM}"),
            );
            None
        }
    }
}

/// `grant = "credits"`, `grant = "unlimited"` or a credit pack `grant = { credits = 50 }`.
fn read_grant(field: &Field, cx: &mut Ctxt) -> Option<Grant> {
    match &value(field, "grant = { credits = 50 }", cx)?.node {
        Node::Map(Map { span, fields }) => {
            let mut credits = None;
            let keys = read_keys("grant", fields, cx, |key, field, cx| match key {
                PackKey::Credits => credits = positive(field, "credits = 50", cx),
            });
            if !keys.saw(PackKey::Credits) {
                cx.at_span(
                    *span,
                    "a credit pack needs its size: `grant = { credits = 50 }` (uses per purchase)",
                );
            }
            credits.map(Grant::Pack)
        }
        Node::Int(lit) => {
            let expected = choices::<GrantWord>(Some(PACK_FORM));
            cx.at(lit, format!("`grant` expects {expected}, found an integer; did you mean `grant = {{ credits = {lit} }}`?"));
            None
        }
        _ => choice_or::<GrantWord>(field, Some(PACK_FORM), cx).map(|word| match word {
            GrantWord::Credits => Grant::Credits,
            GrantWord::Unlimited => Grant::Unlimited,
        }),
    }
}

/// A count from 1 to `u32::MAX` (`quantity = 1`, `credits = 50`); `form` shows the accepted
/// form.
fn positive(field: &Field, form: &str, cx: &mut Ctxt) -> Option<LitInt> {
    let key = &field.key;
    let value = value(field, form, cx)?;
    let Node::Int(lit) = &value.node else {
        let kind = value.kind();
        cx.at(
            value,
            format!("`{key}` expects a positive integer, found {kind}: `{form}`"),
        );
        return None;
    };
    match lit.base10_parse::<u32>() {
        Ok(0) => {
            cx.at(lit, format!("`{key}` must be at least 1"));
            None
        }
        Ok(_) => Some(lit.clone()),
        Err(_) => {
            cx.at(
                lit,
                format!("`{key}` must be an integer from 1 to {}", u32::MAX),
            );
            None
        }
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn non_empty(lit: LitStr, cx: &mut Ctxt) -> Option<LitStr> {
    if lit.value().trim().is_empty() {
        cx.at(
            &lit,
            "`reason` cannot be empty: it tells the user what they pay for",
        );
        return None;
    }
    Some(lit)
}

/// An absolute `http(s)` URL with a host.
fn url(lit: LitStr, cx: &mut Ctxt) -> Option<LitStr> {
    let text = lit.value();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let host = rest.map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(host) if !host.is_empty() && !text.contains(char::is_whitespace) => Some(lit),
        _ => {
            cx.at(&lit, format!("`{text}` is not an absolute http(s) URL: Stripe redirects the buyer there, e.g. \"https://example.com/paid\""));
            None
        }
    }
}

/// A meter event name by Stripe's rules.
fn meter_name(lit: LitStr, cx: &mut Ctxt) -> Option<LitStr> {
    let name = lit.value();
    let problem = if name.is_empty() {
        Some("cannot be empty".to_owned())
    } else if name.len() > MAX_METER_NAME {
        Some(format!("has at most {MAX_METER_NAME} characters"))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
            .map(|c| {
                format!("cannot contain `{c}`; use ASCII letters, digits, `_`, `-`, `.` or `:`")
            })
    };
    match problem {
        None => Some(lit),
        Some(problem) => {
            cx.at(&lit, format!("invalid meter event name `{name}`: a meter event name {problem} (it must equal the `event_name` of your Stripe meter)"));
            None
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proc_macro2::{Span, TokenStream};
    use quote::quote;

    use super::*;

    /// Reads `#[paid(tokens)]` and returns the pricing with every message.
    pub(crate) fn read_paid(tokens: TokenStream) -> (Option<Pricing>, Vec<String>) {
        let attr: syn::Attribute = syn::parse_quote!(#[paid(#tokens)]);
        let mut cx = Ctxt::new();
        let pricing = read(&attr, &mut cx);
        (pricing, cx.messages())
    }

    #[test]
    fn reads_the_readme_examples() {
        let (pricing, messages) = read_paid(quote!(
            checkout = { mode = "payment", success_url = "https://yoursite.com/success",
                         line_items = [{ price = "price_123", quantity = 1 }] },
            reason = "High-quality AI image generation"
        ));
        assert!(messages.is_empty(), "{messages:?}");
        let pricing = pricing.unwrap();
        assert!(pricing.checkout.mode == Mode::Payment && pricing.grant.is_none());
        assert_eq!(pricing.checkout.line_items.len(), 1);

        let (pricing, messages) = read_paid(quote!(
            checkout(
                mode = "subscription",
                success_url = "https://yoursite.com/success",
                cancel_url = "http://localhost:8000/cancel",
                line_items = [{ price = env("STRIPE_PRICE_USAGE") }]
            ),
            meter = "api_call",
            reason = "Pay per API call",
            grant = unlimited
        ));
        assert!(messages.is_empty(), "{messages:?}");
        let pricing = pricing.unwrap();
        assert!(pricing.checkout.mode == Mode::Subscription && pricing.meter.is_some());
        assert!(matches!(
            pricing.checkout.line_items[0].price,
            Price::Env(_)
        ));
        assert!(matches!(pricing.grant, Some((Grant::Unlimited, _))));
    }

    #[test]
    fn reports_every_value_mistake() {
        let (pricing, messages) = read_paid(quote!(
            checkout = { mode = "paymnet", success_url = "/relative",
                         line_items = [{ price = "prod_1", quantity = 0 }, { quantity = 1 }] },
            meter = "bad name", grant = "forever", colour = "red"
        ));
        assert!(pricing.is_none());
        let all = messages.join("\n");
        for expected in [
            "did you mean `\"payment\"`",
            "not an absolute http(s) URL",
            "not a Stripe price id",
            "at least 1",
            "needs `price",
            "invalid meter event name",
            "unknown `grant` `forever`",
            "unknown `paid` option `colour`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(messages.len(), 8, "{all}");
    }

    #[test]
    fn reads_a_credit_pack_in_either_form() {
        for grant in [
            quote!(grant = { credits = 50 }),
            quote!(grant(credits = 50)),
        ] {
            let (pricing, messages) = read_paid(quote!(
                checkout = { mode = "payment", success_url = "https://x.dev",
                             line_items = [{ price = "price_pack", quantity = 1 }] },
                #grant
            ));
            assert!(messages.is_empty(), "{messages:?}");
            assert!(
                matches!(&pricing.unwrap().grant, Some((Grant::Pack(n), _)) if n.base10_digits() == "50")
            );
        }
    }

    #[test]
    fn credit_pack_mistakes_show_the_accepted_form() {
        for (grant, expected) in [
            (
                quote!(grant = { credits = 0 }),
                "`credits` must be at least 1",
            ),
            (
                quote!(grant = { credits = "50" }),
                "`credits` expects a positive integer, found a string: `credits = 50`",
            ),
            (
                quote!(grant = { credits = 4294967296 }),
                "`credits` must be an integer from 1 to 4294967295",
            ),
            (quote!(grant = { credit = 50 }), "did you mean `credits`?"),
            (
                quote!(grant = {}),
                "a credit pack needs its size: `grant = { credits = 50 }`",
            ),
            (
                quote!(grant = 50),
                "did you mean `grant = { credits = 50 }`?",
            ),
            (
                quote!(grant = "credit"),
                "did you mean `\"credits\"`? expected `\"credits\"`, `\"unlimited\"` or a credit pack `{ credits = 50 }`",
            ),
            (
                quote!(grant = ["credits"]),
                "`grant` expects `\"credits\"`, `\"unlimited\"` or a credit pack `{ credits = 50 }`, found an array",
            ),
        ] {
            let (pricing, messages) = read_paid(quote!(
                checkout = { mode = "payment", success_url = "https://x.dev",
                             line_items = [{ price = "price_pack", quantity = 1 }] },
                #grant
            ));
            assert!(
                pricing.is_some_and(|pricing| pricing.grant.is_none()),
                "{grant}: the rest is read"
            );
            assert!(
                messages.iter().any(|message| message.contains(expected)),
                "{grant}: {messages:?}"
            );
        }
    }

    #[test]
    fn an_invalid_quantity_is_reported_once() {
        let (pricing, messages) = read_paid(quote!(
            checkout = { mode = "payment", success_url = "https://x.dev",
                         line_items = [{ price = "price_1", quantity = "1" }] }
        ));
        assert!(
            pricing.is_none(),
            "no pricing, so no follow-on `needs a quantity`"
        );
        assert_eq!(messages.len(), 1, "{messages:?}");
    }

    #[test]
    fn missing_and_empty_parts() {
        let (_, messages) = read_paid(quote!(checkout = { mode = "payment" }));
        let all = messages.join("\n");
        assert!(
            all.contains("missing `success_url") && all.contains("missing `line_items"),
            "{all}"
        );
        let (_, messages) = read_paid(
            quote!(checkout = { mode = "setup", success_url = "https://x", line_items = [] }),
        );
        let all = messages.join("\n");
        assert!(
            all.contains("collects no payment") && all.contains("cannot be empty"),
            "{all}"
        );
        let (_, messages) = read_paid(quote!(reason = "x"));
        assert!(messages[0].contains("needs `checkout"), "{messages:?}");
    }

    #[test]
    fn meter_names_follow_stripe() {
        let mut cx = Ctxt::new();
        let ok = LitStr::new("api.call-v2:x_1", Span::call_site());
        assert!(meter_name(ok, &mut cx).is_some());
        let long = LitStr::new(&"m".repeat(101), Span::call_site());
        assert!(meter_name(long, &mut cx).is_none());
        assert!(meter_name(LitStr::new("", Span::call_site()), &mut cx).is_none());
        assert_eq!(cx.messages().len(), 2);
    }
}
