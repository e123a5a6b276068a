//! An analytics-only server: four tools, every call recorded into `./mcp-analytics.db` (or
//! `MCP_ANALYTICS_DB`).
//!
//! ```text
//! cargo run --example quickstart                  # MCP at http://127.0.0.1:8000/mcp,
//!                                                  # dashboard at http://127.0.0.1:8000/analytics
//! cargo run --example quickstart -- --http 127.0.0.1:9000
//! cargo run --example quickstart -- --stdio       # for MCP clients that spawn the server
//! cargo run --example quickstart -- --help
//! ```

use mcp_analytics::{mcp_server, serde_json, tool};
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

/// A calculator with analytics.
#[derive(Clone, Default)]
struct Quickstart;

#[mcp_server(name = "My Analytics-Only MCP", version = "1.0.0")]
impl Quickstart {
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let transport = mcp_analytics_examples::transport_from_args(
        "quickstart",
        "A calculator MCP server with analytics: every call is recorded.",
    );
    mcp_analytics_examples::init_logging();
    match transport {
        Transport::Stdio => {
            let database = mcp_analytics::Analytics::init_global()?.database();
            eprintln!("{}", mcp_analytics_examples::stdio_dashboard_hint(database));
            mcp_analytics::serve::stdio(Quickstart).await?;
        }
        Transport::Http(addr) => mcp_analytics::serve::http(|| Quickstart, addr).await?,
    }
    Ok(())
}
