//! The seed's "analytics + payments" server in Rust: a free `add`, a one-time `generate_image`
//! and a metered `api_call`, with every call recorded into `./mcp-analytics.db`.
//!
//! ```text
//! cargo run --example paid        # MCP at http://127.0.0.1:8000/mcp, dashboard at /analytics
//! ```
//!
//! Without `STRIPE_SECRET_KEY` (and `ENVIRONMENT` not `production`) payments go to the local
//! test provider: a paid tool answers `payment_required` with a link to a page on this server,
//! clearly labelled as a test payment; submitting it completes the purchase. With a Stripe key,
//! put your price ids in the `#[paid]` attributes (or `price = env("VAR")`) and set
//! `STRIPE_WEBHOOK_SECRET` for `/stripe/webhook`. Callers are identified by OAuth (`MCP_OAUTH_ISSUER`, …); in
//! development an unauthenticated caller pays as an anonymous per-session user.

use mcp_analytics::{Payments, mcp_server, paid, tool};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    /// The first addend.
    a: f64,
    /// The second addend.
    b: f64,
}

#[derive(Deserialize, JsonSchema)]
struct Prompt {
    /// What to draw.
    prompt: String,
}

#[derive(Deserialize, JsonSchema)]
struct Endpoint {
    /// The API endpoint to call.
    endpoint: String,
}

/// Analytics and payments.
#[derive(Clone)]
struct PaidServer {
    payments: Payments,
}

#[mcp_server(name = "My Analytics + Payments MCP", version = "1.0.0", payments = self.payments)]
impl PaidServer {
    /// Add two numbers (free)
    #[tool]
    async fn add(&self, args: AddArgs) -> String {
        format!("Result: {}", args.a + args.b)
    }

    #[tool(description = "Generate AI image with premium quality")]
    #[paid(
        checkout = { mode = "payment", success_url = "https://example.com/success",
                     line_items = [{ price = "price_image_hd", quantity = 1 }] },
        reason = "High-quality AI image generation"
    )]
    async fn generate_image(&self, args: Prompt) -> String {
        format!("Generated image for: {}", args.prompt)
    }

    #[tool(description = "Make an API call, billed per successful call")]
    #[paid(
        checkout = { mode = "subscription", success_url = "https://example.com/success",
                     line_items = [{ price = "price_api_usage" }] },
        meter = "api_call", reason = "Pay per API call"
    )]
    async fn api_call(&self, args: Endpoint) -> String {
        format!("Called {}", args.endpoint)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .init();
    // Stripe settings from the environment; the amounts only label the local test checkout.
    let payments = Payments::builder_from_env()?
        .local_price("price_image_hd", 500, "usd")
        .local_price("price_api_usage", 2, "usd")
        .build()?;
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".into())
        .parse()?;
    mcp_analytics::serve::http(
        move || PaidServer {
            payments: payments.clone(),
        },
        addr,
    )
    .await?;
    Ok(())
}
