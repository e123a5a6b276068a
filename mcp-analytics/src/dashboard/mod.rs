//! The web dashboard: one page (uPlot inlined, no build step) and a small JSON API over the
//! analytics store (SQLite, or PostgreSQL with the `postgres` feature), as an axum router to
//! serve alone (`mcp-analytics dashboard`) or to nest next to `/mcp` at `/analytics`
//! (feature `dashboard`). The page, its API's shapes and the key checks need no server
//! framework: a Cloudflare Worker serves the same (feature `workers`, over D1). With an API key set, the page and the API need it (bearer header, or
//! the login form's cookie); a dashboard on a non-loopback address always needs one. Without a
//! key, requests must name a loopback or allowed `Host` (DNS rebinding); the sign-in form
//! refuses cross-origin posts.

pub(crate) mod alerts;
pub(crate) mod api;
pub(crate) mod auth;
#[cfg(feature = "dashboard")]
mod server;
#[cfg(feature = "dashboard")]
pub(crate) mod store;

use std::sync::OnceLock;

#[cfg(feature = "dashboard")]
pub use server::Dashboard;

/// The variable holding the key that protects the dashboard (and, later, the ingest endpoint).
pub const API_KEY_VAR: &str = "MCP_ANALYTICS_API_KEY";

/// The page with uPlot and the app inlined (built once).
pub(crate) fn page_html() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| {
        include_str!("assets/index.html")
            .replace("/*UPLOT_CSS*/", include_str!("assets/uPlot.min.css"))
            .replace("/*UPLOT_JS*/", include_str!("assets/uPlot.iife.min.js"))
            .replace("/*APP_JS*/", include_str!("assets/app.js"))
    })
}
