use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    async fn add(&self, a: i64, b: i64) -> String {
        (a + b).to_string()
    }
}

fn main() {}
