use mcp_analytics::{mcp_server, paid, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    #[paid(checkout = { mode = "paymnet", success_url = "https://example.com/ok", line_items = [{ price = "price_123", quantity = 1 }] })]
    async fn premium(&self) -> String {
        "premium".into()
    }
}

#[tokio::main]
async fn main() {
    mcp_analytics::serve::stdio(Server).await.unwrap();
}
