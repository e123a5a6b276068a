use mcp_analytics::{mcp_server, paid, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    #[paid(checkout = { mode = "subscription", success_url = "https://example.com/ok", line_items = [{ price = "price_usage" }] }, meter = "api call!")]
    async fn premium(&self) -> String {
        "premium".into()
    }
}

fn main() {}
