//! The `Pricing` constant of a `#[paid]` tool, prompt or resource.

use proc_macro2::TokenStream;
use quote::quote;

use super::option;
use crate::ast::{Grant, Mode, Price, Pricing};

/// `__mcpa::Pricing { ... }` for `pricing`.
pub(super) fn pricing(pricing: &Pricing) -> TokenStream {
    let checkout = &pricing.checkout;
    let mode = match checkout.mode {
        Mode::Payment => quote!(__mcpa::CheckoutMode::Payment),
        Mode::Subscription => quote!(__mcpa::CheckoutMode::Subscription),
    };
    let success_url = &checkout.success_url;
    let cancel_url = option(checkout.cancel_url.as_ref());
    let meter = option(pricing.meter.as_ref());
    let reason = option(pricing.reason.as_ref());
    let grant = match &pricing.grant {
        None | Some((Grant::Credits, _)) => quote!(__mcpa::Grant::Credits),
        Some((Grant::Unlimited, _)) => quote!(__mcpa::Grant::Unlimited),
        Some((Grant::Pack(credits), _)) => quote!(__mcpa::Grant::pack(#credits)),
    };
    let items = checkout.line_items.iter().map(|item| {
        let price = match &item.price {
            Price::Id(id) => quote!(__mcpa::Price::Id(#id)),
            Price::Env(var) => quote!(__mcpa::Price::Env(#var)),
        };
        let quantity = match &item.quantity {
            Some(quantity) => quote!(__mcpa::Some(#quantity)),
            None => quote!(__mcpa::None),
        };
        quote!(__mcpa::LineItem { price: #price, quantity: #quantity })
    });
    quote! {
        __mcpa::Pricing {
            mode: #mode,
            success_url: #success_url,
            cancel_url: #cancel_url,
            line_items: &[#(#items),*],
            meter: #meter,
            reason: #reason,
            grant: #grant,
        }
    }
}
