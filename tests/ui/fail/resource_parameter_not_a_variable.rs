use mcp_analytics::{mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri_template = "test://items/{id}")]
    async fn item(&self, idd: String) -> String {
        idd
    }
}

fn main() {}
