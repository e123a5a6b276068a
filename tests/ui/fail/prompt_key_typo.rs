use mcp_analytics::{mcp_server, prompt};

struct Server;

#[mcp_server]
impl Server {
    #[prompt(tilte = "Greeting")]
    async fn greet(&self) -> String {
        "hello".into()
    }
}

fn main() {}
