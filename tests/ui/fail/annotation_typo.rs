use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool(annotations(read_only = true))]
    async fn ping(&self) -> String {
        "pong".into()
    }
}

fn main() {}
