use mcp_analytics::{mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri = "test://count")]
    async fn count(&self) -> u32 {
        3
    }
}

fn main() {}
