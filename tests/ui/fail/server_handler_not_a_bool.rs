//! `server_handler = "false"` is one error: the impl written by hand is not met by a generated
//! `ServerHandler` impl (no E0119 on top).

use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server(server_handler = "false")]
impl Server {
    #[tool]
    async fn ping(&self) -> String {
        String::new()
    }
}

impl rmcp::ServerHandler for Server {}

fn main() {}
