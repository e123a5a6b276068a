use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server(nmae = "My MCP")]
impl Server {
    #[tool]
    async fn ping(&self) -> String {
        "pong".into()
    }
}

#[tokio::main]
async fn main() {
    mcp_analytics::serve::stdio(Server).await.unwrap();
}
