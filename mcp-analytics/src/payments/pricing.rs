//! The pricing of a paid tool, prompt or resource as `#[paid(...)]` wrote it ([`Pricing`],
//! compile-time constants), and as the server uses it once prices from the environment are read
//! ([`ResolvedPricing`]).

use std::borrow::Cow;

use std::num::NonZeroU32;

use super::{
    PaymentsError,
    domain::{EntitlementKey, Granted},
};

/// Stripe Checkout mode of a paid tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckoutMode {
    /// A one-time payment (`mode = "payment"`).
    Payment,
    /// A subscription (`mode = "subscription"`), optionally metered.
    Subscription,
}

impl CheckoutMode {
    /// Stripe's name for the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutMode::Payment => "payment",
            CheckoutMode::Subscription => "subscription",
        }
    }
}

/// What one completed one-time payment grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// `quantity` successful calls per purchase (the default).
    Credits,
    /// Unlimited use once bought (`grant = "unlimited"`).
    Unlimited,
    /// A credit pack (`grant = { credits = 50 }`): `credits` successful calls per unit bought,
    /// so one purchase of quantity 1 grants `credits` calls.
    Pack {
        /// Calls per unit of the first line item.
        credits: NonZeroU32,
    },
}

impl Grant {
    /// A credit pack of `credits` calls per unit bought.
    ///
    /// # Panics
    ///
    /// When `credits` is 0 (in a constant: a compile error).
    pub const fn pack(credits: u32) -> Grant {
        match NonZeroU32::new(credits) {
            Some(credits) => Grant::Pack { credits },
            None => panic!("a credit pack grants at least one call"),
        }
    }
}

/// Where a line item's price id comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Price {
    /// A literal `price_…` id.
    Id(&'static str),
    /// An environment variable holding the id, read at startup.
    Env(&'static str),
}

/// One Checkout line item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineItem {
    /// The price.
    pub price: Price,
    /// How many; `None` for metered prices (and subscriptions, where it defaults to 1).
    pub quantity: Option<u32>,
}

/// `#[paid(...)]` of one tool, checked by the macro.
#[derive(Debug)]
pub struct Pricing {
    /// One-time payment or subscription.
    pub mode: CheckoutMode,
    /// Where Stripe sends the buyer after paying.
    pub success_url: &'static str,
    /// Where Stripe sends the buyer who gives up.
    pub cancel_url: Option<&'static str>,
    /// What the buyer pays for.
    pub line_items: &'static [LineItem],
    /// The meter event billed once per successful call (metered subscriptions).
    pub meter: Option<&'static str>,
    /// Why the user should pay, shown with the checkout link.
    pub reason: Option<&'static str>,
    /// What a one-time payment grants.
    pub grant: Grant,
}

/// What the payment gate guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaidKind {
    /// A `#[tool]`: `tools/call`.
    Tool,
    /// A `#[prompt]`: `prompts/get`.
    Prompt,
    /// A `#[resource]`: `resources/read`.
    Resource,
}

/// A paid tool, prompt or resource as payments sees it: its name, description and
/// `#[paid(...)]` pricing.
#[derive(Clone, Copy, Debug)]
pub struct PaidTool {
    /// A tool, a prompt or a resource.
    pub kind: PaidKind,
    /// The MCP tool or prompt name, or the resource's URI (or URI template).
    pub name: &'static str,
    /// The tool's description (the default reason to pay).
    pub description: Option<&'static str>,
    /// What `#[paid(...)]` says.
    pub pricing: &'static Pricing,
}

impl PaidTool {
    /// What payments calls it (in checkouts' metadata, `payment_events.tool`, answers, meter
    /// records): a tool's name, `prompt:<name>` or `resource:<uri>`.
    pub fn label(&self) -> Cow<'static, str> {
        match self.kind {
            PaidKind::Tool => Cow::Borrowed(self.name),
            PaidKind::Prompt => Cow::Owned(format!("prompt:{}", self.name)),
            PaidKind::Resource => Cow::Owned(format!("resource:{}", self.name)),
        }
    }
}

/// A [`Pricing`] with every price id known.
#[derive(Clone, Debug)]
pub struct ResolvedPricing {
    /// The label of what it prices ([`PaidTool::label`]): a tool's name, `prompt:<name>` or
    /// `resource:<uri>`.
    pub tool: String,
    /// One-time payment or subscription.
    pub mode: CheckoutMode,
    /// Success URL.
    pub success_url: String,
    /// Cancel URL.
    pub cancel_url: Option<String>,
    /// `(price id, quantity)` per line item.
    pub line_items: Vec<(String, Option<u32>)>,
    /// Meter event name.
    pub meter: Option<String>,
    /// Reason shown to the user.
    pub reason: String,
    /// What a one-time payment grants.
    pub grant: Grant,
    /// Which line items are metered, once the provider was asked at startup.
    pub metered: std::sync::OnceLock<Vec<bool>>,
    /// What one-time purchases of these prices are held under.
    pub(crate) key: EntitlementKey,
}

impl ResolvedPricing {
    /// Reads the prices of `pricing` (from the environment through `lookup` where asked).
    pub fn resolve(
        tool: &str,
        description: Option<&str>,
        pricing: &Pricing,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, PaymentsError> {
        let mut line_items = Vec::with_capacity(pricing.line_items.len());
        for item in pricing.line_items {
            let id = match item.price {
                Price::Id(id) => id.to_owned(),
                Price::Env(var) => match lookup(var) {
                    Some(id) if id.starts_with("price_") || id.starts_with("plan_") => id,
                    Some(value) => {
                        return Err(PaymentsError::PriceVarInvalid {
                            var,
                            value,
                            tool: tool.to_owned(),
                        });
                    }
                    None => {
                        return Err(PaymentsError::PriceVarUnset {
                            var,
                            tool: tool.to_owned(),
                        });
                    }
                },
            };
            line_items.push((id, item.quantity));
        }
        let key = EntitlementKey::of(&line_items.iter().map(|(id, _)| id.as_str()).collect());
        let reason = pricing.reason.or(description).map_or_else(
            || format!("Payment is required to use `{tool}`"),
            str::to_owned,
        );
        Ok(ResolvedPricing {
            tool: tool.to_owned(),
            mode: pricing.mode,
            success_url: pricing.success_url.to_owned(),
            cancel_url: pricing.cancel_url.map(str::to_owned),
            line_items,
            meter: pricing.meter.map(str::to_owned),
            reason,
            grant: pricing.grant,
            metered: std::sync::OnceLock::new(),
            key,
        })
    }

    /// The Checkout quantity of each line item: metered prices take none, licensed ones their
    /// `quantity` or 1. Without the provider's word on which price is metered, every price of a
    /// tool with a `meter` counts as metered.
    pub fn quantities(&self) -> Vec<Option<u64>> {
        let metered = self.metered.get();
        self.line_items
            .iter()
            .enumerate()
            .map(|(index, (_, quantity))| {
                let is_metered = match (self.mode, metered) {
                    (CheckoutMode::Payment, _) => false,
                    (CheckoutMode::Subscription, Some(metered)) => metered[index],
                    (CheckoutMode::Subscription, None) => self.meter.is_some(),
                };
                (!is_metered).then(|| u64::from(quantity.unwrap_or(1)))
            })
            .collect()
    }

    /// What one purchase grants: a subscription's use, an unlimited unlock, or credits — the
    /// first line item's quantity, times the pack's size for a credit pack.
    pub(crate) fn granted(&self) -> Granted {
        let quantity = || i64::from(self.line_items[0].1.unwrap_or(1));
        match (self.mode, self.grant) {
            (CheckoutMode::Subscription, _) => Granted::Subscription,
            (CheckoutMode::Payment, Grant::Unlimited) => Granted::Unlimited,
            (CheckoutMode::Payment, Grant::Credits) => Granted::Credits(quantity()),
            (CheckoutMode::Payment, Grant::Pack { credits }) => {
                Granted::Credits(quantity().saturating_mul(i64::from(credits.get())))
            }
        }
    }

    /// What purchases of the tool are held under: its whole set of prices (see
    /// [`EntitlementKey`]).
    pub(crate) fn key(&self) -> &EntitlementKey {
        &self.key
    }
}

/// Where `price = env("VAR")` values come from.
pub(crate) type EnvLookup = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The resolved pricing of each paid tool, prompt and resource, by label, resolved once
/// (prices from the environment read then).
pub(crate) struct PricingTable {
    lookup: EnvLookup,
    resolved: std::sync::Mutex<
        std::collections::HashMap<Cow<'static, str>, std::sync::Arc<ResolvedPricing>>,
    >,
}

impl PricingTable {
    pub(crate) fn new(lookup: EnvLookup) -> Self {
        Self {
            lookup,
            resolved: std::sync::Mutex::default(),
        }
    }

    /// The resolved pricing of `item`.
    pub(crate) fn resolve(
        &self,
        item: &PaidTool,
    ) -> Result<std::sync::Arc<ResolvedPricing>, PaymentsError> {
        let label = item.label();
        let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = resolved.get(&label) {
            return Ok(known.clone());
        }
        let new = std::sync::Arc::new(ResolvedPricing::resolve(
            &label,
            item.description,
            item.pricing,
            |name| (self.lookup)(name),
        )?);
        resolved.insert(label, new.clone());
        Ok(new)
    }

    /// The resolved pricing of the item labelled `tool`, if it was resolved.
    pub(crate) fn get(&self, tool: &str) -> Option<std::sync::Arc<ResolvedPricing>> {
        self.resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tool)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEMS: &[LineItem] = &[LineItem {
        price: Price::Env("PRICE_IMAGE"),
        quantity: Some(3),
    }];
    const PRICING: Pricing = Pricing {
        mode: CheckoutMode::Payment,
        success_url: "https://x.dev/ok",
        cancel_url: None,
        line_items: ITEMS,
        meter: None,
        reason: None,
        grant: Grant::Credits,
    };

    #[test]
    fn a_tool_and_a_prompt_of_the_same_name_keep_their_own_pricing() {
        static OTHER: Pricing = Pricing {
            reason: Some("the prompt"),
            ..PRICING
        };
        let table = PricingTable::new(std::sync::Arc::new(|_: &str| Some("price_x".to_owned())));
        let tool = PaidTool {
            kind: PaidKind::Tool,
            name: "summarize",
            description: None,
            pricing: &PRICING,
        };
        let prompt = PaidTool {
            kind: PaidKind::Prompt,
            pricing: &OTHER,
            ..tool
        };
        let resource = PaidTool {
            kind: PaidKind::Resource,
            name: "docs://{id}",
            ..tool
        };
        assert_eq!(table.resolve(&tool).unwrap().tool, "summarize");
        let resolved = table.resolve(&prompt).unwrap();
        assert_eq!(
            (resolved.tool.as_str(), resolved.reason.as_str()),
            ("prompt:summarize", "the prompt")
        );
        assert_eq!(
            table.resolve(&resource).unwrap().tool,
            "resource:docs://{id}"
        );
        assert!(table.get("prompt:summarize").is_some() && table.get("summarize").is_some());
    }

    #[test]
    fn resolves_prices_from_the_environment() {
        let resolved = ResolvedPricing::resolve("image", Some("Make an image"), &PRICING, |var| {
            (var == "PRICE_IMAGE").then(|| "price_abc".to_owned())
        })
        .unwrap();
        assert_eq!(resolved.line_items, [("price_abc".to_owned(), Some(3))]);
        assert_eq!(resolved.key().as_str(), "price_abc");
        assert_eq!(resolved.reason, "Make an image");
        assert_eq!(resolved.quantities(), [Some(3)]);
        let missing = ResolvedPricing::resolve("image", None, &PRICING, |_| None).unwrap_err();
        assert!(
            matches!(
                &missing,
                PaymentsError::PriceVarUnset { var: "PRICE_IMAGE", tool } if tool == "image"
            ),
            "{missing:?}"
        );
        assert!(
            missing.to_string().contains("PRICE_IMAGE is not set"),
            "{missing}"
        );
        let wrong = ResolvedPricing::resolve("image", None, &PRICING, |_| Some("prod_1".into()))
            .unwrap_err();
        assert!(
            matches!(&wrong, PaymentsError::PriceVarInvalid { value, .. } if value == "prod_1"),
            "{wrong:?}"
        );
        assert!(
            wrong.to_string().contains("not a Stripe price id"),
            "{wrong}"
        );
    }
}

#[cfg(test)]
mod grant_tests {
    use super::*;

    fn granted(grant: Grant, quantity: u32) -> Granted {
        let items = vec![LineItem {
            price: Price::Id("price_pack"),
            quantity: Some(quantity),
        }];
        let pricing = Pricing {
            mode: CheckoutMode::Payment,
            success_url: "https://x.dev",
            cancel_url: None,
            line_items: items.leak(),
            meter: None,
            reason: None,
            grant,
        };
        ResolvedPricing::resolve("t", None, &pricing, |_| None)
            .unwrap()
            .granted()
    }

    #[test]
    fn a_purchase_grants_the_quantity_times_the_pack_size() {
        assert_eq!(granted(Grant::Credits, 2), Granted::Credits(2));
        assert_eq!(granted(Grant::pack(50), 1), Granted::Credits(50));
        assert_eq!(granted(Grant::pack(50), 3), Granted::Credits(150));
        assert_eq!(granted(Grant::Unlimited, 4), Granted::Unlimited);
        assert_eq!(
            granted(Grant::pack(u32::MAX), u32::MAX),
            Granted::Credits(i64::MAX),
            "saturates instead of overflowing"
        );
    }

    #[test]
    #[should_panic(expected = "at least one call")]
    fn an_empty_pack_is_refused() {
        let _ = Grant::pack(std::hint::black_box(0));
    }
}

#[cfg(test)]
mod quantity_tests {
    use super::*;

    #[test]
    fn metered_prices_take_no_quantity() {
        const ITEMS: &[LineItem] = &[
            LineItem {
                price: Price::Id("price_base"),
                quantity: None,
            },
            LineItem {
                price: Price::Id("price_usage"),
                quantity: None,
            },
        ];
        let pricing = Pricing {
            mode: CheckoutMode::Subscription,
            success_url: "https://x.dev",
            cancel_url: None,
            line_items: ITEMS,
            meter: Some("api_call"),
            reason: None,
            grant: Grant::Credits,
        };
        let resolved = ResolvedPricing::resolve("t", None, &pricing, |_| None).unwrap();
        assert_eq!(resolved.quantities(), [None, None], "unknown: all metered");
        resolved.metered.set(vec![false, true]).unwrap();
        assert_eq!(resolved.quantities(), [Some(1), None]);
    }
}
