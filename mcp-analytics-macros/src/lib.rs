//! Attribute macros for [`mcp-analytics`](https://docs.rs/mcp-analytics).
//!
//! Use them through the `mcp_analytics` crate (`use mcp_analytics::{mcp_server, tool};`); this
//! crate only turns syntax into a few lines of code that call `::mcp_analytics::__private`.
//!
//! The pipeline is one-directional: `parse` reads attribute arguments, `model` describes the
//! server and its tools, `validate` collects every mistake at once, and `expand` writes code.
//! Set `MCP_ANALYTICS_MACROS_DEBUG=1` to print each expansion to stderr.

use proc_macro::TokenStream;

mod errors;
mod expand;
mod model;
mod paid;
mod parse;
mod suggest;
mod validate;
mod value;

/// Turns an inherent `impl` block into an instrumented MCP server.
///
/// Every method marked `#[tool]` becomes an MCP tool; the macro generates the tool registrations,
/// the `rmcp::ServerHandler` implementation and the analytics wrapping. Optional arguments:
/// `name = "..."`, `version = "..."`, `instructions = "..."` (default: the crate's package name
/// and version) and `analytics = <expr>` (an expression of type `&Analytics` or `Analytics`
/// evaluated with `self` in scope; default: the process-wide handle).
#[proc_macro_attribute]
pub fn mcp_server(args: TokenStream, item: TokenStream) -> TokenStream {
    debug_print(expand::mcp_server(args.into(), item.into())).into()
}

/// Marks a method of an `#[mcp_server]` impl as an MCP tool.
///
/// Only meaningful inside `#[mcp_server]`, which reads and removes it; on its own it is an error.
#[proc_macro_attribute]
pub fn tool(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced("tool", args.into(), item.into()).into()
}

/// Puts a payment gate in front of a tool of an `#[mcp_server]` impl.
///
/// Only meaningful inside `#[mcp_server]`, which reads and removes it; on its own it is an error.
#[proc_macro_attribute]
pub fn paid(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced("paid", args.into(), item.into()).into()
}

fn debug_print(tokens: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    if std::env::var_os("MCP_ANALYTICS_MACROS_DEBUG").is_some() {
        eprintln!("{tokens}");
    }
    tokens
}
