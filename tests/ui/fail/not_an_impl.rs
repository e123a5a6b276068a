use mcp_analytics::mcp_server;

#[mcp_server]
struct Server;

fn main() {}
