use mcp_analytics::{mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri = "test://items/1")]
    async fn item(&self, id: String) -> String {
        id
    }
}

fn main() {}
