use mcp_analytics::{mcp_server, tool};

struct NotAResult;

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    async fn ping(&self) -> NotAResult {
        NotAResult
    }
}

fn main() {}
