use mcp_analytics::{mcp_server, paid, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    #[paid(checkout = { mode = "payment", success_url = "https://example.com/ok", line_items = [{ price = "prod_123", quantity = 1 }] })]
    async fn premium(&self) -> String {
        "premium".into()
    }
}

fn main() {}
