//! A syntax error in `#[mcp_server(...)]` is one error: the options are unknown (they may say
//! `server_handler = false`), so no `ServerHandler` impl is generated next to the hand-written one.

use mcp_analytics::{mcp_server, tool};

struct Server;

#[mcp_server(server_handler = false, name = )]
impl Server {
    #[tool]
    async fn ping(&self) -> String {
        String::new()
    }
}

impl rmcp::ServerHandler for Server {}

fn main() {}
