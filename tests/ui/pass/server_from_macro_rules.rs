//! A `#[mcp_server]` impl written by a `macro_rules!` macro, with the argument type passed in by
//! the caller: the generated closure's parameter and its use share one hygiene context.

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    a: i64,
}

macro_rules! server {
    ($name:ident, $args:ident) => {
        struct $name;

        #[mcp_analytics::mcp_server]
        impl $name {
            #[mcp_analytics::tool]
            async fn add(&self, args: $args) -> String {
                args.a.to_string()
            }

            #[mcp_analytics::tool]
            async fn with_context(&self, args: $args, _cx: mcp_analytics::CallContext) -> String {
                args.a.to_string()
            }
        }
    };
}

server!(Server, Args);

fn main() {
    let _ = Server;
}
