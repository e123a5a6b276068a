use mcp_analytics::{complete, mcp_server, paid, resource};

struct Server;

#[mcp_server]
impl Server {
    #[resource(uri_template = "test://items/{id}")]
    async fn item(&self, id: String) -> String {
        id
    }

    #[complete(resource = "test://items/{id}", argument = "id")]
    #[paid(checkout = { mode = "payment", success_url = "https://example.com/ok",
                        line_items = [{ price = "price_1", quantity = 1 }] })]
    async fn ids(&self) -> Vec<String> {
        Vec::new()
    }
}

fn main() {}
