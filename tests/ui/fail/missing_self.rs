use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    async fn ping() -> String {
        "pong".into()
    }
}

fn main() {}
