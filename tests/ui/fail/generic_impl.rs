use mcp_analytics::{mcp_server, tool};

struct Server<T>(T);

#[mcp_server]
impl<T: Send + Sync + 'static> Server<T> {
    #[tool]
    async fn ping(&self) -> String {
        "pong".into()
    }
}

fn main() {}
