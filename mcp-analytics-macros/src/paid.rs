//! `#[paid(...)]`: reads the pricing of a tool and checks it against Stripe's rules, so a bad
//! configuration is a compile error at the offending token instead of a failed checkout later.
//!
//! ```text
//! #[paid(checkout = { mode = "payment" | "subscription",
//!                     success_url = "https://...", cancel_url = "https://...",
//!                     line_items = [{ price = "price_..." | env("VAR"), quantity = 1 }] },
//!        meter = "api_call", reason = "...", grant = "credits" | "unlimited")]
//! ```

use proc_macro2::Span;
use syn::{LitInt, LitStr};

use crate::{
    errors::Errors,
    parse::Keys,
    suggest,
    value::{self, Field, Value},
};

const PAID_KEYS: &[&str] = &["checkout", "meter", "reason", "grant"];
const CHECKOUT_KEYS: &[&str] = &["mode", "success_url", "cancel_url", "line_items"];
const LINE_ITEM_KEYS: &[&str] = &["price", "quantity"];
const MODES: &[&str] = &["payment", "subscription"];
const GRANTS: &[&str] = &["credits", "unlimited"];

/// Stripe's limit on a meter event name.
const MAX_METER_NAME: usize = 100;
/// Stripe's limits on line items per Checkout Session.
const MAX_PAYMENT_ITEMS: usize = 100;
const MAX_SUBSCRIPTION_ITEMS: usize = 20;

/// The pricing of one paid tool.
pub(crate) struct Pricing {
    pub mode: Mode,
    pub success_url: LitStr,
    pub cancel_url: Option<LitStr>,
    pub line_items: Vec<LineItem>,
    /// The Stripe meter event name billed once per successful call.
    pub meter: Option<LitStr>,
    pub reason: Option<LitStr>,
    pub grant: Grant,
}

/// Checkout mode.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Payment,
    Subscription,
}

/// What a completed one-time payment grants.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// `quantity` uses of the tool per purchase.
    Credits,
    /// Unlimited use once bought.
    Unlimited,
}

/// One Checkout line item.
pub(crate) struct LineItem {
    pub price: Price,
    pub quantity: Option<LitInt>,
}

/// Where a price id comes from.
pub(crate) enum Price {
    /// `price = "price_..."`.
    Id(LitStr),
    /// `price = env("VAR")`: read at startup.
    Env(LitStr),
}

impl Pricing {
    /// Reads `#[paid(...)]`; every mistake goes to `errors`. `None` when nothing usable remains.
    pub(crate) fn read(attr: &syn::Attribute, errors: &mut Errors) -> Option<Pricing> {
        let form = "#[paid(checkout = { mode = \"payment\", success_url = \"https://...\", line_items = [{ price = \"price_...\", quantity = 1 }] })]";
        let tokens = match &attr.meta {
            syn::Meta::List(list) => list.tokens.clone(),
            _ => {
                errors.at(attr, format!("`#[paid]` needs its pricing: `{form}`"));
                return None;
            }
        };
        let fields = match value::fields(tokens) {
            Ok(fields) => fields,
            Err(error) => {
                errors.push(error);
                return None;
            }
        };
        let mut keys = Keys::new("paid", PAID_KEYS);
        let mut checkout = None;
        let mut meter = None;
        let mut reason = None;
        let mut grant = None;
        for (key, field, value) in accepted(&fields, &mut keys, errors) {
            match key.as_str() {
                "checkout" => checkout = Some(value),
                "meter" => meter = string(field, value, errors).and_then(|m| meter_name(m, errors)),
                "reason" => {
                    reason = string(field, value, errors).and_then(|r| non_empty(r, errors))
                }
                "grant" => grant = choice(field, value, GRANTS, errors).map(|g| (field, g)),
                _ => {}
            }
        }
        let Some(checkout_value) = checkout else {
            errors.at(
                attr,
                format!("`#[paid]` needs `checkout = {{ ... }}`: `{form}`"),
            );
            return None;
        };
        let mut pricing = read_checkout(checkout_value, errors)?;
        pricing.reason = reason;
        if let Some((field, grant)) = grant {
            if pricing.mode != Mode::Payment {
                errors.at(&field.key, "`grant` applies to one-time payments (`mode = \"payment\"`); a subscription grants use while it is active");
            }
            pricing.grant = if grant == "unlimited" {
                Grant::Unlimited
            } else {
                Grant::Credits
            };
        }
        if let Some(meter) = &meter {
            if pricing.mode != Mode::Subscription {
                errors.at(meter, "`meter` needs `mode = \"subscription\"`: usage is billed through a metered subscription price");
            }
            for item in &pricing.line_items {
                if let Some(quantity) = &item.quantity {
                    errors.at(quantity, "metered prices take no `quantity` (Stripe bills the metered usage): remove it");
                }
            }
        } else if pricing.mode == Mode::Payment {
            for item in &pricing.line_items {
                if item.quantity.is_none() {
                    errors.at_span(
                        item.price.span(),
                        "in `payment` mode every line item needs a quantity: `{ price = \"price_...\", quantity = 1 }`",
                    );
                }
            }
        }
        pricing.meter = meter;
        Some(pricing)
    }
}

impl Price {
    fn span(&self) -> Span {
        match self {
            Price::Id(lit) | Price::Env(lit) => lit.span(),
        }
    }
}

fn read_checkout(value: &Value, errors: &mut Errors) -> Option<Pricing> {
    let Value::Object(span, fields) = value else {
        errors.at_span(
            value.span(),
            format!(
                "`checkout` expects an object, found {}: `checkout = {{ mode = \"payment\", success_url = \"https://...\", line_items = [...] }}`",
                value.kind()
            ),
        );
        return None;
    };
    let mut keys = Keys::new("checkout", CHECKOUT_KEYS);
    let mut mode = None;
    let mut success_url = None;
    let mut cancel_url = None;
    let mut line_items = None;
    for (key, field, value) in accepted(fields, &mut keys, errors) {
        match key.as_str() {
            "mode" => mode = read_mode(field, value, errors),
            "success_url" => {
                success_url = string(field, value, errors).and_then(|u| url(u, errors))
            }
            "cancel_url" => cancel_url = string(field, value, errors).and_then(|u| url(u, errors)),
            "line_items" => line_items = Some((value, read_line_items(value, errors))),
            _ => {}
        }
    }
    let missing = |what: &str, errors: &mut Errors| {
        errors.at_span(*span, format!("`checkout` is missing {what}"));
    };
    if mode.is_none() && !keys_seen(fields, "mode") {
        missing("`mode = \"payment\"` or `mode = \"subscription\"`", errors);
    }
    if success_url.is_none() && !keys_seen(fields, "success_url") {
        missing(
            "`success_url = \"https://...\"` (where Stripe sends the buyer after paying)",
            errors,
        );
    }
    let line_items = match line_items {
        None => {
            missing(
                "`line_items = [{ price = \"price_...\", quantity = 1 }]`",
                errors,
            );
            None
        }
        Some((value, items)) => items.map(|items| (value, items)),
    };
    let (mode, success_url, (items_value, line_items)) = (mode?, success_url?, line_items?);
    let limit = match mode {
        Mode::Payment => MAX_PAYMENT_ITEMS,
        Mode::Subscription => MAX_SUBSCRIPTION_ITEMS,
    };
    if line_items.len() > limit {
        errors.at_span(
            items_value.span(),
            format!("Stripe accepts at most {limit} line items in this mode"),
        );
    }
    Some(Pricing {
        mode,
        success_url,
        cancel_url,
        line_items,
        meter: None,
        reason: None,
        grant: Grant::Credits,
    })
}

fn keys_seen(fields: &[Field], key: &str) -> bool {
    fields.iter().any(|field| field.key == key)
}

fn read_mode(field: &Field, value: &Value, errors: &mut Errors) -> Option<Mode> {
    if let Value::Str(lit) = value
        && lit.value() == "setup"
    {
        errors.at(lit, "`mode = \"setup\"` collects no payment and cannot gate a tool; use `\"payment\"` (one-time) or `\"subscription\"`");
        return None;
    }
    match choice(field, value, MODES, errors)?.as_str() {
        "payment" => Some(Mode::Payment),
        _ => Some(Mode::Subscription),
    }
}

fn read_line_items(value: &Value, errors: &mut Errors) -> Option<Vec<LineItem>> {
    let form = "line_items = [{ price = \"price_...\", quantity = 1 }]";
    let Value::Array(span, values) = value else {
        errors.at_span(
            value.span(),
            format!(
                "`line_items` expects an array, found {}: `{form}`",
                value.kind()
            ),
        );
        return None;
    };
    if values.is_empty() {
        errors.at_span(*span, format!("`line_items` cannot be empty: `{form}`"));
        return None;
    }
    let mut items = Vec::new();
    for value in values {
        let Value::Object(item_span, fields) = value else {
            errors.at_span(
                value.span(),
                format!("a line item is an object, found {}: `{{ price = \"price_...\", quantity = 1 }}`", value.kind()),
            );
            continue;
        };
        let mut keys = Keys::new("line item", LINE_ITEM_KEYS);
        let mut price = None;
        let mut quantity = None;
        for (key, _, value) in accepted(fields, &mut keys, errors) {
            match key.as_str() {
                "price" => price = read_price(value, errors),
                _ => quantity = read_quantity(value, errors),
            }
        }
        match price {
            Some(price) => items.push(LineItem { price, quantity }),
            None if !keys_seen(fields, "price") => errors.at_span(
                *item_span,
                "a line item needs `price = \"price_...\"` (or `price = env(\"VAR\")`)",
            ),
            None => {}
        }
    }
    (items.len() == values.len()).then_some(items)
}

fn read_price(value: &Value, errors: &mut Errors) -> Option<Price> {
    let form = "`price = \"price_...\"` or `price = env(\"STRIPE_PRICE_...\")`";
    match value {
        Value::Str(lit) => {
            let id = lit.value();
            let valid = ["price_", "plan_"].iter().any(|prefix| {
                id.strip_prefix(prefix).is_some_and(|rest| {
                    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
            });
            if valid {
                Some(Price::Id(lit.clone()))
            } else {
                errors.at(lit, format!("`{id}` is not a Stripe price id: price ids look like `price_1Pq...` (legacy `plan_...` also works); write {form}"));
                None
            }
        }
        Value::Call(name, span, arguments) if name == "env" => match arguments.as_slice() {
            [Value::Str(var)] if is_env_name(&var.value()) => Some(Price::Env(var.clone())),
            [Value::Str(var)] => {
                errors.at(var, format!("`{}` is not an environment variable name: use letters, digits and `_`, not starting with a digit", var.value()));
                None
            }
            _ => {
                errors.at_span(
                    *span,
                    "`env(...)` takes one string: `env(\"STRIPE_PRICE_IMAGE\")`",
                );
                None
            }
        },
        Value::Call(name, ..) => {
            errors.at(name, format!("unknown function `{name}`: write {form}"));
            None
        }
        other => {
            errors.at_span(
                other.span(),
                format!(
                    "`price` expects a string, found {}: write {form}",
                    other.kind()
                ),
            );
            None
        }
    }
}

fn read_quantity(value: &Value, errors: &mut Errors) -> Option<LitInt> {
    match value {
        Value::Int(lit) => match lit.base10_parse::<i64>().map(u32::try_from) {
            Ok(Ok(0)) | Ok(Err(_))
                if lit.base10_digits().starts_with('-') || lit.base10_digits() == "0" =>
            {
                errors.at(lit, "`quantity` must be at least 1");
                None
            }
            Ok(_) => Some(lit.clone()),
            Err(_) => {
                errors.at(lit, "`quantity` must be an integer from 1 to 4294967295");
                None
            }
        },
        other => {
            errors.at_span(
                other.span(),
                format!(
                    "`quantity` expects a positive integer, found {}: `quantity = 1`",
                    other.kind()
                ),
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

/// The fields with an accepted, first-time key and a value, as `(key, field, value)`; every
/// other field is reported.
fn accepted<'a>(
    fields: &'a [Field],
    keys: &mut Keys,
    errors: &mut Errors,
) -> Vec<(String, &'a Field, &'a Value)> {
    fields
        .iter()
        .filter_map(|field| {
            let key = keys.check(&field.key, errors)?;
            Some((key, field, required_value(field, errors)?))
        })
        .collect()
}

/// The value of `key = value`, or an error for a bare `key`.
fn required_value<'a>(field: &'a Field, errors: &mut Errors) -> Option<&'a Value> {
    if field.value.is_none() {
        errors.at(
            &field.key,
            format!("`{}` expects a value: `{} = ...`", field.key, field.key),
        );
    }
    field.value.as_ref()
}

fn string(field: &Field, value: &Value, errors: &mut Errors) -> Option<LitStr> {
    match value {
        Value::Str(lit) => Some(lit.clone()),
        other => {
            errors.at_span(
                other.span(),
                format!(
                    "`{}` expects a string literal, found {}: `{} = \"...\"`",
                    field.key,
                    other.kind(),
                    field.key
                ),
            );
            None
        }
    }
}

/// A string that must be one of `accepted` (a bare word is accepted as the same string).
fn choice(field: &Field, value: &Value, accepted: &[&str], errors: &mut Errors) -> Option<String> {
    let (text, span) = match value {
        Value::Str(lit) => (lit.value(), lit.span()),
        Value::Word(word) => (word.to_string(), word.span()),
        other => {
            errors.at_span(
                other.span(),
                format!(
                    "`{}` expects {}, found {}",
                    field.key,
                    one_of_strings(accepted),
                    other.kind()
                ),
            );
            return None;
        }
    };
    if accepted.contains(&text.as_str()) {
        return Some(text);
    }
    let hint = match suggest::closest(&text, accepted) {
        Some(close) => format!("did you mean `\"{close}\"`? "),
        None => String::new(),
    };
    errors.at_span(
        span,
        format!(
            "unknown `{}` `{text}`; {hint}expected {}",
            field.key,
            one_of_strings(accepted)
        ),
    );
    None
}

/// "`\"a\"` or `\"b\"`": the accepted string values, written as the user would write them.
fn one_of_strings(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|word| format!("\"{word}\"")).collect();
    let refs: Vec<&str> = quoted.iter().map(String::as_str).collect();
    suggest::one_of(&refs)
}

fn non_empty(lit: LitStr, errors: &mut Errors) -> Option<LitStr> {
    if lit.value().trim().is_empty() {
        errors.at(
            &lit,
            "`reason` cannot be empty: it tells the user what they pay for",
        );
        return None;
    }
    Some(lit)
}

/// An absolute `http(s)` URL with a host.
fn url(lit: LitStr, errors: &mut Errors) -> Option<LitStr> {
    let text = lit.value();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let host = rest.map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(host) if !host.is_empty() && !text.contains(char::is_whitespace) => Some(lit),
        _ => {
            errors.at(&lit, format!("`{text}` is not an absolute http(s) URL: Stripe redirects the buyer there, e.g. \"https://example.com/paid\""));
            None
        }
    }
}

/// A meter event name by Stripe's rules.
fn meter_name(lit: LitStr, errors: &mut Errors) -> Option<LitStr> {
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
            errors.at(&lit, format!("invalid meter event name `{name}`: a meter event name {problem} (it must equal the `event_name` of your Stripe meter)"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn read(tokens: proc_macro2::TokenStream) -> (Option<Pricing>, Vec<String>) {
        let attr: syn::Attribute = syn::parse_quote!(#[paid(#tokens)]);
        let mut errors = Errors::default();
        let pricing = Pricing::read(&attr, &mut errors);
        let messages = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (pricing, messages)
    }

    #[test]
    fn reads_the_seed_examples() {
        let (pricing, messages) = read(quote!(
            checkout = { mode = "payment", success_url = "https://yoursite.com/success",
                         line_items = [{ price = "price_123", quantity = 1 }] },
            reason = "High-quality AI image generation"
        ));
        assert!(messages.is_empty(), "{messages:?}");
        let pricing = pricing.unwrap();
        assert!(pricing.mode == Mode::Payment && pricing.grant == Grant::Credits);
        assert_eq!(pricing.line_items.len(), 1);

        let (pricing, messages) = read(quote!(
            checkout = { mode = "subscription", success_url = "https://yoursite.com/success",
                         cancel_url = "http://localhost:8000/cancel",
                         line_items = [{ price = env("STRIPE_PRICE_USAGE") }] },
            meter = "api_call", reason = "Pay per API call"
        ));
        assert!(messages.is_empty(), "{messages:?}");
        let pricing = pricing.unwrap();
        assert!(pricing.mode == Mode::Subscription && pricing.meter.is_some());
        assert!(matches!(pricing.line_items[0].price, Price::Env(_)));
    }

    #[test]
    fn reports_every_rule() {
        let (_, messages) = read(quote!(
            checkout = { mode = "paymnet", success_url = "/relative",
                         line_items = [{ price = "prod_1", quantity = 0 }, { quantity = 1 }] },
            meter = "bad name", grant = "forever", colour = "red"
        ));
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
    }

    #[test]
    fn mode_rules() {
        let (_, messages) = read(quote!(
            checkout = { mode = "payment", success_url = "https://x.dev", line_items = [{ price = "price_1" }] },
            meter = "api_call"
        ));
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].contains("needs `mode = \"subscription\"`"));

        let (_, messages) = read(quote!(
            checkout = { mode = "payment", success_url = "https://x.dev", line_items = [{ price = "price_1" }] }
        ));
        assert!(messages[0].contains("needs a quantity"), "{messages:?}");

        let (_, messages) = read(quote!(
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
    fn missing_and_empty_parts() {
        let (_, messages) = read(quote!(checkout = { mode = "payment" }));
        let all = messages.join("\n");
        assert!(
            all.contains("missing `success_url") && all.contains("missing `line_items"),
            "{all}"
        );
        let (_, messages) =
            read(quote!(checkout = { mode = "setup", success_url = "https://x", line_items = [] }));
        let all = messages.join("\n");
        assert!(
            all.contains("collects no payment") && all.contains("cannot be empty"),
            "{all}"
        );
        let (_, messages) = read(quote!(reason = "x"));
        assert!(messages[0].contains("needs `checkout"), "{messages:?}");
    }

    #[test]
    fn meter_names_follow_stripe() {
        let mut errors = Errors::default();
        let ok = LitStr::new("api.call-v2:x_1", Span::call_site());
        assert!(meter_name(ok, &mut errors).is_some());
        let long = LitStr::new(&"m".repeat(101), Span::call_site());
        assert!(meter_name(long, &mut errors).is_none());
        assert!(meter_name(LitStr::new("", Span::call_site()), &mut errors).is_none());
    }
}
