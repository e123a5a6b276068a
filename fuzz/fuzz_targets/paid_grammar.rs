//! The `#[paid(...)]` value grammar: any text that lexes as Rust tokens, read as the arguments of
//! `#[paid(...)]` by the macro crate's own reader, never panics (errors are fine).
//!
//! A proc-macro crate cannot be linked as a library, so its grammar modules are included by
//! path; proc-macro2 falls back to its own implementation outside a macro.

#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use syn::parse::Parser;

#[allow(dead_code, unused_imports)]
#[path = "../../mcp-analytics-macros/src/errors.rs"]
mod errors;
#[allow(dead_code, unused_imports)]
#[path = "../../mcp-analytics-macros/src/paid.rs"]
mod paid;
#[allow(dead_code, unused_imports)]
#[path = "../../mcp-analytics-macros/src/parse.rs"]
mod parse;
#[allow(dead_code, unused_imports)]
#[path = "../../mcp-analytics-macros/src/suggest.rs"]
mod suggest;
#[allow(dead_code, unused_imports)]
#[path = "../../mcp-analytics-macros/src/value.rs"]
mod value;

fuzz_target!(|text: &str| {
    let Ok(tokens) = proc_macro2::TokenStream::from_str(text) else {
        return;
    };
    // The bare grammar, as `{ ... }` contents and as the whole attribute.
    let _ = value::fields(tokens.clone());
    let attribute = quote::quote!(#[paid(#tokens)]);
    let Ok(attributes) = syn::Attribute::parse_outer.parse2(attribute) else {
        return;
    };
    for attribute in &attributes {
        let mut errors = errors::Errors::default();
        let pricing = paid::Pricing::read(attribute, &mut errors);
        let outcome = errors.finish();
        // What the macro turns errors into must be printable.
        if let Err(error) = outcome {
            let _ = error.to_compile_error().to_string();
        }
        drop(pricing);
    }
});
