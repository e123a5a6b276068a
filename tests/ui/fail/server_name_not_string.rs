use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server(name = MyMcp)]
impl Server {
    #[tool]
    async fn ping(&self) -> String {
        "pong".into()
    }
}

fn main() {}
