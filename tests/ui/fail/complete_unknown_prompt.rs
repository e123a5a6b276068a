use mcp_analytics::{complete, mcp_server, prompt};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    code: String,
}

struct Server;

#[mcp_server]
impl Server {
    #[prompt]
    async fn review(&self, args: Args) -> String {
        args.code
    }

    #[complete(prompt = "reveiw", argument = "code")]
    async fn codes(&self, value: &str) -> Vec<String> {
        vec![value.to_owned()]
    }
}

fn main() {}
