use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    async fn ping(&self) -> String {
        "pong".into()
    }

    #[tool(name = "ping")]
    async fn other_ping(&self) -> String {
        "pong".into()
    }
}

fn main() {}
