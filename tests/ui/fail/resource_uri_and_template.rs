use mcp_analytics::{mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri = "test://item", uri_template = "test://items/{id}")]
    async fn item(&self) -> String {
        String::new()
    }
}

fn main() {}
