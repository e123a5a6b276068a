use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool(name = "say hello")]
    async fn hello(&self) -> String {
        "hello".into()
    }
}

fn main() {}
