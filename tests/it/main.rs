//! The behaviour tests in one binary, so a test run links once: real MCP clients (rmcp) against
//! the demo servers over an in-process duplex, stdio child processes and streamable HTTP on
//! 127.0.0.1 (`mcp_analytics_tests::server::TestServer`), real SQLite files, a throwaway
//! PostgreSQL cluster with the example binaries as replicas on it, the in-process fake Stripe,
//! and the dashboard in headless Chromium.
//!
//! Three suites keep their own process (see `tests/Cargo.toml`): `global` and `canary` install
//! process-wide state (the global analytics, a debug-level log subscriber whose output the
//! canary search reads), and `ui` runs trybuild.

mod alerts;
mod call_context;
mod client_input;
mod clients;
mod custom_handler;
mod dashboard;
mod duplex;
mod export;
mod fake_stripe;
mod http;
mod http_security;
mod oauth;
mod otlp;
mod payments;
mod pg_analytics;
mod pipeline;
mod postgres;
mod prompts_resources;
mod requests;
mod rollups;
mod sessions;
mod stdio;
