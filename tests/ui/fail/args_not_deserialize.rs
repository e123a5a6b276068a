use mcp_analytics::{mcp_server, tool};

struct NotArgs {
    a: i64,
}

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    async fn add(&self, args: NotArgs) -> String {
        args.a.to_string()
    }
}

fn main() {}
