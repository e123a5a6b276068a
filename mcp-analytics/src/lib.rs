//! Analytics and Stripe payments for [rmcp](https://docs.rs/rmcp) MCP servers, with attribute
//! macros.
//!
//! Put `#[mcp_server]` on the impl block that holds your tools and mark each tool `#[tool]`.
//! Every call is then timed, classified, sanitized and recorded into an embedded SQLite file
//! (`./mcp-analytics.db` by default) — without the tool waiting on storage. `#[paid(...)]` puts a
//! payment gate in front of a tool (see [`payments`]); its pricing is checked at compile time.
//!
//! ```no_run
//! use mcp_analytics::{mcp_server, paid, tool};
//! use serde::Deserialize;
//! use schemars::JsonSchema;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct AddArgs { a: f64, b: f64 }
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Doc { document: String }
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Endpoint { url: String }
//!
//! #[derive(Clone)]
//! struct MyServer;
//!
//! #[mcp_server(name = "My MCP", version = "1.0.0")]
//! impl MyServer {
//!     /// Add two numbers
//!     #[tool]
//!     async fn add(&self, args: AddArgs) -> String {
//!         (args.a + args.b).to_string()
//!     }
//!
//!     /// Process a sensitive document: the call is tracked, its result never stored.
//!     #[tool(track_results = false)]
//!     async fn process_document(&self, args: Doc) -> String {
//!         format!("{} characters", args.document.len())
//!     }
//!
//!     /// Call an API, billed per successful call through a metered Stripe subscription.
//!     #[tool]
//!     #[paid(checkout = { mode = "subscription", success_url = "https://example.com/ok",
//!                         line_items = [{ price = "price_usage_123" }] },
//!            meter = "api_call", reason = "Pay per API call")]
//!     async fn api_call(&self, args: Endpoint) -> String {
//!         format!("called {}", args.url)
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), mcp_analytics::Error> {
//!     mcp_analytics::serve::stdio(MyServer).await
//! }
//! ```
//!
//! Tests (or an in-process host) can record into memory and look at what was stored:
//!
//! ```
//! use mcp_analytics::{Analytics, MemorySink, Status, mcp_server, tool};
//! use mcp_analytics::rmcp::{ServiceExt, model::{CallToolRequestParams, ClientConfig}};
//!
//! struct Echo {
//!     analytics: Analytics,
//! }
//!
//! #[mcp_server(analytics = self.analytics)]
//! impl Echo {
//!     /// Says hello.
//!     #[tool]
//!     async fn hello(&self) -> String {
//!         "hello".into()
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let sink = MemorySink::new();
//!     let analytics = Analytics::builder().sink(sink.clone()).build()?;
//!     let (server_io, client_io) = tokio::io::duplex(4096);
//!     let server = Echo { analytics: analytics.clone() };
//!     tokio::spawn(async move {
//!         let running = server.serve(server_io).await.expect("the handshake succeeds");
//!         running.waiting().await
//!     });
//!     let client = ClientConfig::default().serve(client_io).await?;
//!     client.call_tool(CallToolRequestParams::new("hello")).await?;
//!     analytics.flush().await;
//!     assert_eq!(sink.events()[0].tool, "hello");
//!     assert_eq!(sink.events()[0].status, Status::Ok);
//!     Ok(())
//! }
//! ```
//!
//! # Reference
//!
//! The sections below cover the attributes, configuration, redaction, OpenTelemetry export
//! (feature `otlp`), performance and limitations. Each part has its own reference in its module:
//!
//! - [`serve`]: serving over stdio and HTTP; hosts, origins and keys; OAuth.
//! - [`store`]: what is recorded — tables, statuses, rollups, sessions and users.
//! - [`dashboard`]: the dashboard and the `mcp-analytics report` command.
//! - [`payments`]: `#[paid]` tools — the gate, Stripe, webhooks, the local test provider.
//! - [`collector`]: one place for many servers' calls, shipped by their exporters (feature
//!   `export-http`).
#![doc = include_str!("../docs/macros.md")]
#![doc = include_str!("../docs/configuration.md")]
#![doc = include_str!("../docs/redaction.md")]
#![doc = include_str!("../docs/otlp.md")]
#![doc = include_str!("../docs/workers.md")]
#![doc = include_str!("../docs/performance.md")]
#![doc = include_str!("../docs/limitations.md")]

#[cfg(feature = "alerts")]
pub mod alerts;
mod analytics;
mod capture;
pub mod catalog;
mod client_text;
mod clock;
mod config;
mod context;
/// Analytics on Cloudflare D1 (feature `workers`).
#[cfg(any(feature = "workers", all(test, feature = "sqlite")))]
pub mod d1;
#[cfg(any(
    feature = "dashboard",
    all(feature = "workers", target_arch = "wasm32")
))]
#[cfg_attr(feature = "dashboard", doc = include_str!("../docs/dashboard.md"))]
pub mod dashboard;
mod database;
mod env;
mod error;
mod event;
#[cfg(any(feature = "export-http", feature = "otlp"))]
pub mod export;
#[cfg(any(feature = "dashboard", feature = "export-http"))]
mod fanin;
#[cfg(feature = "http")]
mod guard;
mod identity;
mod listen;
#[cfg(any(feature = "http", all(feature = "workers", target_arch = "wasm32")))]
mod origin;
mod outcome;
#[doc = include_str!("../docs/payments.md")]
pub mod payments;
#[cfg(feature = "postgres")]
mod postgres;
mod retry;
mod sanitize;
mod schema;
#[cfg_attr(feature = "http", doc = include_str!("../docs/http.md"))]
#[cfg_attr(feature = "oauth", doc = include_str!("../docs/oauth.md"))]
pub mod serve;
pub mod server;
mod sink;
pub mod spec;
#[cfg_attr(feature = "sqlite", doc = include_str!("../docs/storage.md"))]
#[cfg_attr(
    not(feature = "sqlite"),
    doc = "The analytics tables' readers and value types (`SqliteStore` needs the `sqlite` feature)."
)]
pub mod store;
mod uri_template;
#[cfg(all(feature = "workers", target_arch = "wasm32"))]
pub mod workers;

/// The README's Rust examples, compiled as doctests so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

// Lets the crate's own tests use the macros, whose code names `::mcp_analytics`.
#[cfg(test)]
extern crate self as mcp_analytics;

#[doc(hidden)]
#[path = "private/mod.rs"]
pub mod __private;

/// The bodies of the `ServerHandler` methods `#[mcp_server]` generates, for servers declared with
/// `#[mcp_server(server_handler = false)]` that implement `ServerHandler` themselves (to add
/// something the macros do not generate). Forward the methods the server's tools, prompts,
/// resources and completions need to these (`get_info` to [`server_config`](handler::server_config),
/// extending it as needed); the type parameter is the server type. Wrap the methods you answer
/// yourself in [`observed`](handler::observed) to record them too. `set_log_level` is the state
/// behind `set_level`, for handlers that answer `logging/setLevel` themselves.
pub mod handler {
    pub use crate::server::{
        Method, call_tool, complete, discover, get_prompt, get_tool, initialize, list_prompts,
        list_resource_templates, list_resources, list_tools, observed, ping, read_resource,
        server_config, set_level, set_log_level, subscribe, unsubscribe,
    };
}

pub use analytics::{Analytics, AnalyticsBuilder};
pub use client_text::{ClientText, MAX_CLIENT_TEXT_CHARS};
pub use config::{Config, Environment};
pub use context::{CallContext, ClientRequestError, LogLevel, UnknownLogLevel};
pub use database::{Database, PostgresUrl};
pub use error::Error;
pub use event::{Method, RequestEvent, RequestStatus, Status, ToolCallEvent, Transport};
#[cfg(feature = "dashboard")]
#[doc = include_str!("../docs/collector.md")]
pub use fanin::collector;
#[cfg(feature = "jwt")]
pub use identity::OAuthConfig;
pub use identity::{Identity, IdentityResolver, UserDetails};
pub use mcp_analytics_macros::{complete, mcp_server, paid, prompt, resource, tool};
pub use payments::{Payments, PaymentsBuilder};
pub use sanitize::{DEFAULT_KEY_RULES, DEFAULT_SENSITIVE_KEYS, KeyRule, REDACTED, Sanitizer};
pub use server::resource_updated;
pub use sink::{MemorySink, Sink, SinkError, Stats};

/// The rmcp version this crate is built on, for direct use of its types.
pub use rmcp;
/// Structured tool output: return `Json<T>` to advertise `T`'s schema and send it as
/// `structuredContent`.
pub use rmcp::Json;
pub use schemars;
pub use serde_json;
