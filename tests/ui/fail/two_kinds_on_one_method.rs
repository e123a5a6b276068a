use mcp_analytics::{mcp_server, prompt, resource};

struct Server;

#[mcp_server]
impl Server {
    #[prompt]
    #[resource(uri = "test://hello")]
    async fn hello(&self) -> String {
        "hello".into()
    }
}

fn main() {}
