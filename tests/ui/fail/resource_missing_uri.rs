use mcp_analytics::{mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(name = "item")]
    async fn item(&self) -> String {
        String::new()
    }
}

fn main() {}
