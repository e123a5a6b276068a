use mcp_analytics::{complete, mcp_server, prompt};

struct Server;

#[mcp_server]
impl Server {
    #[prompt]
    async fn hello(&self) -> String {
        "hello".into()
    }

    #[complete(prompt = "hello", argument = "name")]
    async fn names(&self) -> Vec<String> {
        Vec::new()
    }
}

fn main() {}
