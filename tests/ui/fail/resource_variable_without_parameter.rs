use mcp_analytics::{mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri_template = "test://items/{id}/{kind}")]
    async fn item(&self, id: String) -> String {
        id
    }
}

fn main() {}
