use mcp_analytics::{mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri = "static-text")]
    async fn text(&self) -> String {
        String::new()
    }
}

fn main() {}
