use mcp_analytics::tool;

#[tool]
async fn ping() -> String {
    "pong".into()
}

fn main() {}
