use mcp_analytics::{mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri_template = "test://search{?query}")]
    async fn search(&self, query: String) -> String {
        query
    }
}

fn main() {}
