use mcp_analytics::{mcp_server, paid, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    #[paid(
        checkout = {
            mode = "subscriptoin",
            success_url = "ftp://example.com",
            line_items = [{ price = "prod_1", quantity = 0 }, { quantity = 2 }],
        },
        meter = "",
        grant = "forever",
        colour = "red"
    )]
    async fn premium(&self) -> String {
        "premium".into()
    }

    #[tool]
    #[paid(reason = "no checkout")]
    async fn unpriced(&self) -> String {
        "unpriced".into()
    }
}

fn main() {}
