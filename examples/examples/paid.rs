//! An analytics + payments server: a free `add`, a one-time `generate_image`, `make_thumbnail`
//! sold in packs of 50 uses, and a metered `api_call`, with every call recorded into
//! `./mcp-analytics.db`.
//!
//! ```text
//! cargo run --example paid        # MCP at http://127.0.0.1:8000/mcp, dashboard at /analytics,
//!                                 # test payment pages at /pay/…
//! cargo run --example paid -- --http 127.0.0.1:9000
//! cargo run --example paid -- --stdio
//! ```
//!
//! Without `STRIPE_SECRET_KEY` (and `ENVIRONMENT` not `production`) payments go to the local
//! test provider: a paid tool answers `payment_required` with a link to a page on this server,
//! clearly labelled as a test payment; submitting it completes the purchase. With a Stripe key,
//! put your price ids in the `#[paid]` attributes (or `price = env("VAR")`) and set
//! `STRIPE_WEBHOOK_SECRET` for `/stripe/webhook`. Callers are identified by OAuth (`MCP_OAUTH_ISSUER`, …); in
//! development an unauthenticated caller pays as an anonymous per-session user.

use mcp_analytics::{Payments, mcp_server, paid, tool};
use mcp_analytics_examples::Transport;
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
struct Image {
    /// The image to shrink.
    url: String,
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

    #[tool(description = "Make a thumbnail of an image, sold in packs of 50")]
    #[paid(
        checkout = { mode = "payment", success_url = "https://example.com/success",
                     line_items = [{ price = "price_thumbnails_50", quantity = 1 }] },
        grant = { credits = 50 }, reason = "50 thumbnails"
    )]
    async fn make_thumbnail(&self, args: Image) -> String {
        format!("Thumbnail of {}", args.url)
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
    let transport = mcp_analytics_examples::transport_from_args(
        "paid",
        "An MCP server with a free tool, a one-time paid tool, a credit pack and a metered tool.",
    );
    mcp_analytics_examples::init_logging();
    // Stripe settings from the environment; the amounts only label the local test checkout.
    let payments = Payments::builder_from_env()?
        .local_price("price_image_hd", 500, "usd")
        .local_price("price_thumbnails_50", 1000, "usd")
        .local_price("price_api_usage", 2, "usd")
        .build()?;
    let local_payments = payments.is_local();
    let server = move || PaidServer {
        payments: payments.clone(),
    };
    match transport {
        Transport::Stdio => {
            let database = mcp_analytics::Analytics::init_global()?.database();
            eprintln!("{}", mcp_analytics_examples::stdio_dashboard_hint(database));
            // The runtime serves and prints the test payment pages on a loopback port.
            mcp_analytics::serve::stdio(server()).await?;
        }
        Transport::Http(addr) => {
            // Off loopback the runtime refuses test payments unless told otherwise, and says so.
            if local_payments && addr.ip().is_loopback() {
                eprintln!("{}", mcp_analytics_examples::payment_pages_line(addr));
            }
            mcp_analytics::serve::http(server, addr).await?;
        }
    }
    Ok(())
}
