//! HTTP fan-in: many servers' analytics into one database. Each server's [`exporter`] ships its
//! sanitized events, batched and durable, to a [`collector`] that stores them deduplicated and
//! serves the dashboard over them; [`wire`] is the format and the limits both sides share.
//!
//! Users reach these as `mcp_analytics::collector` and `mcp_analytics::export::HttpExporter`.

#[cfg(feature = "dashboard")]
pub mod collector;
#[cfg(feature = "export-http")]
pub(crate) mod exporter;
pub(crate) mod wire;
