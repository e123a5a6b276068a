use mcp_analytics::{mcp_server, paid, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    #[paid(reason = "money")]
    async fn premium(&self) -> String {
        "premium".into()
    }
}

fn main() {}
