use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool(description = "one", description = "two")]
    async fn ping(&self) -> String {
        "pong".into()
    }
}

fn main() {}
