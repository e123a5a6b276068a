use mcp_analytics::{complete, mcp_server, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri_template = "test://items/{id}")]
    async fn item(&self, id: String) -> String {
        id
    }

    #[complete(resource = "test://items/{id}", argument = "id")]
    async fn ids(&self) -> Vec<String> {
        Vec::new()
    }

    #[complete(resource = "test://items/{id}", argument = "id")]
    async fn more_ids(&self) -> Vec<String> {
        Vec::new()
    }
}

fn main() {}
