use mcp_analytics::{mcp_server, prompt};

struct Server;

#[mcp_server]
impl Server {
    #[prompt(name = "greet")]
    async fn hello(&self) -> String {
        "hello".into()
    }

    #[prompt(name = "greet")]
    async fn hi(&self) -> String {
        "hi".into()
    }
}

fn main() {}
