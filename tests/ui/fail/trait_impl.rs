use mcp_analytics::mcp_server;

struct Server;

#[mcp_server]
impl Clone for Server {
    fn clone(&self) -> Self {
        Server
    }
}

fn main() {}
