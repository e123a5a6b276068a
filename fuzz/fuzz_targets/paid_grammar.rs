//! The `#[paid(...)]` value grammar: any text that lexes as Rust tokens, read as the arguments of
//! `#[paid(...)]` by the macro crate's own reader (`attr`) and checked by its pricing rules
//! (`check::pricing`), never panics (errors are fine).
//!
//! A proc-macro crate cannot be linked as a library, so its grammar modules are included by
//! path; proc-macro2 falls back to its own implementation outside a macro.

#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use syn::parse::Parser;

#[allow(dead_code, unused_imports)]
#[path = "../../mcp-analytics-macros/src/ast.rs"]
mod ast;
#[allow(dead_code, unused_imports)]
#[path = "../../mcp-analytics-macros/src/attr/mod.rs"]
mod attr;
#[allow(dead_code, unused_imports)]
#[path = "../../mcp-analytics-macros/src/check.rs"]
mod check;
#[allow(dead_code, unused_imports)]
#[path = "../../mcp-analytics-macros/src/ctxt.rs"]
mod ctxt;
#[allow(dead_code, unused_imports)]
#[path = "../../mcp-analytics-macros/src/keys.rs"]
mod keys;

fuzz_target!(|text: &str| {
    let Ok(tokens) = proc_macro2::TokenStream::from_str(text) else {
        return;
    };
    // The bare grammar, as `{ ... }` contents and as the whole attribute.
    let mut cx = ctxt::Ctxt::new();
    let _ = attr::fields(tokens.clone(), &mut cx);
    let _ = cx.check();
    let attribute = quote::quote!(#[paid(#tokens)]);
    let Ok(attributes) = syn::Attribute::parse_outer.parse2(attribute) else {
        return;
    };
    for attribute in &attributes {
        let mut cx = ctxt::Ctxt::new();
        let pricing = attr::paid::read(attribute, &mut cx);
        // Stripe's rules, as `#[mcp_server]` applies them to every `#[paid]` it read.
        if let Some(pricing) = &pricing {
            check::pricing(pricing, &mut cx);
        }
        let outcome = cx.check();
        // What the macro turns errors into must be printable.
        if let Err(error) = outcome {
            let _ = error.to_compile_error().to_string();
        }
        drop(pricing);
    }
});
