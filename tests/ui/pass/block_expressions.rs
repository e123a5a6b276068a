//! Braces that are not a map are a block expression, as in Rust's own attribute grammar:
//! `meta = { let m = ...; m }` compiles, and the options after it are still read.

use mcp_analytics::{Analytics, mcp_server, tool};

struct Server {
    analytics: Analytics,
}

#[mcp_server(analytics = self.analytics, name = "Blocks")]
impl Server {
    #[tool(meta = { let meta = serde_json::json!({ "k": 1 }); meta }, name = "block_meta")]
    async fn ping(&self) -> String {
        String::new()
    }
}

fn main() {
    let _ = Server {
        analytics: Analytics::disabled(),
    };
}
