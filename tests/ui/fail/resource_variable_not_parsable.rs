use mcp_analytics::{mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri_template = "test://items/{id}")]
    async fn item(&self, id: Vec<u8>) -> String {
        format!("{id:?}")
    }
}

fn main() {}
