use mcp_analytics::{complete, mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri = "test://text")]
    async fn text(&self) -> String {
        String::new()
    }

    #[complete(resource = "test://text", argument = "id")]
    async fn ids(&self) -> Vec<String> {
        Vec::new()
    }
}

fn main() {}
