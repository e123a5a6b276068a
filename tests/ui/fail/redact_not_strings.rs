use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool(redact = [document, ""])]
    async fn ping(&self) -> String {
        "pong".into()
    }
}

fn main() {}
