use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    async fn ping(&mut self) -> String {
        "pong".into()
    }
}

fn main() {}
