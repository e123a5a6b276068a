use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    fn ping(&self) -> String {
        "pong".into()
    }
}

fn main() {}
