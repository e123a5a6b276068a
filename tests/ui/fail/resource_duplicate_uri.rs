use mcp_analytics::{mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri = "test://text")]
    async fn text(&self) -> String {
        String::new()
    }

    #[resource(uri = "test://text")]
    async fn same(&self) -> String {
        String::new()
    }
}

fn main() {}
