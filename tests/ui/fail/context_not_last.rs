use mcp_analytics::{CallContext, mcp_server, tool};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    a: i64,
}

struct Server;

#[mcp_server]
impl Server {
    #[tool]
    async fn add(&self, cx: CallContext, args: Args) -> String {
        format!("{cx:?} {}", args.a)
    }
}

fn main() {}
