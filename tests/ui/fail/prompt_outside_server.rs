use mcp_analytics::prompt;

#[prompt]
async fn hello() -> String {
    "hello".into()
}

fn main() {}
