use mcp_analytics::paid;

#[paid(reason = "money")]
async fn ping() -> String {
    "pong".into()
}

fn main() {}
