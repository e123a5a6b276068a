use mcp_analytics::{mcp_server, paid, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    #[paid(checkout = { mode = "payment", success_url = "https://example.com/ok", line_items = [{ price = "price_pack", quantity = 1 }] }, grant = { credits = 0 })]
    async fn thumbnail(&self) -> String {
        "thumbnail".into()
    }
}

fn main() {}
