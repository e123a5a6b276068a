use mcp_analytics::{mcp_server, prompt};

struct Server;

#[mcp_server]
impl Server {
    #[prompt]
    async fn count(&self) -> u32 {
        3
    }
}

fn main() {}
