//! The article's two servers in one Cloudflare Worker: the calculator (`add`, `divide`), a
//! document tool whose results are never stored, a tool taking credentials (redacted before
//! storage) and a paid image generator, plus a tool awaiting a JavaScript timer. Every call is recorded into the D1 database bound as
//! `MCP_ANALYTICS_DB`; `/analytics/api/…` serves the figures behind `MCP_ANALYTICS_API_KEY`.
//! `generate_image` is paid with the local test provider: its checkout page is served by the
//! Worker at `/pay/{id}`, and what users bought is kept in the same D1 database.
//!
//! ```text
//! examples/workers/run-local.sh 8787     # wrangler dev on 127.0.0.1:8787, local D1
//! ```

use std::time::Duration;

use mcp_analytics::{mcp_server, paid, serde_json, tool};
use schemars::JsonSchema;
use serde::Deserialize;
use worker::{Context, Env, Request, Response, event};

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    /// The first addend.
    a: f64,
    /// The second addend.
    b: f64,
}

#[derive(Deserialize, JsonSchema)]
struct DivideArgs {
    /// The dividend.
    a: f64,
    /// The divisor; must not be zero.
    b: f64,
}

#[derive(Deserialize, JsonSchema)]
struct Document {
    /// The document text.
    document: String,
}

#[derive(Deserialize, JsonSchema)]
struct ConnectArgs {
    /// The service to connect to.
    service: String,
    /// Any credentials object: its secrets are redacted before anything is stored.
    credentials: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize, JsonSchema)]
struct WaitArgs {
    /// How long to wait, in milliseconds (at most 5,000).
    ms: u64,
}

#[derive(Deserialize, JsonSchema)]
struct Prompt {
    /// What to draw.
    prompt: String,
}

/// The article's calculator and premium tools.
struct Tools;

#[mcp_server(name = "My MCP on Workers", version = "1.0.0")]
impl Tools {
    /// Wait on a JavaScript timer (a tool awaiting the Worker's I/O)
    #[tool]
    async fn wait(&self, args: WaitArgs) -> String {
        // JavaScript futures are not `Send`; a Worker has one thread, so `SendFuture` is sound.
        let delay = worker::Delay::from(Duration::from_millis(args.ms.min(5_000)));
        worker::send::SendFuture::new(delay).await;
        format!("Waited {} ms", args.ms)
    }

    /// Add two numbers
    #[tool]
    async fn add(&self, args: AddArgs) -> String {
        format!("Result: {}", args.a + args.b)
    }

    /// Divide two numbers (dividing by zero is a tool error)
    #[tool]
    async fn divide(&self, args: DivideArgs) -> Result<String, String> {
        if args.b == 0.0 {
            return Err("cannot divide by zero".into());
        }
        Ok(format!("Result: {}", args.a / args.b))
    }

    /// Process a sensitive document: the call is tracked, the result never stored
    #[tool(track_results = false)]
    async fn process_document(&self, args: Document) -> String {
        format!("Processed {} characters", args.document.chars().count())
    }

    /// Connect to an external service with credentials (shows redaction)
    #[tool]
    async fn connect_service(&self, args: ConnectArgs) -> String {
        format!(
            "Connected to {} with {} credential fields",
            args.service,
            args.credentials.len()
        )
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
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    mcp_analytics::workers::serve(Tools, request, env, ctx).await
}
