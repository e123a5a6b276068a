//! The expansion names nothing from the prelude: a module that shadows `Some`, `None`, `Option`
//! and `Result` still gets a working server (the generated code says `__private::Some`).

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    a: i64,
}

mod shadowed {
    use mcp_analytics::{mcp_server, paid, tool};

    use super::Args;

    #[allow(dead_code)]
    pub struct Some;
    #[allow(dead_code)]
    pub struct None;
    #[allow(dead_code)]
    pub enum Option {}
    #[allow(dead_code)]
    pub type Result = ();

    pub struct Server;

    #[mcp_server(name = "Shadowed", instructions = "Shadows the prelude")]
    impl Server {
        #[tool(title = "Add", annotations = { read_only_hint = true })]
        async fn add(&self, args: Args) -> String {
            args.a.to_string()
        }

        #[tool]
        #[paid(checkout(mode = "payment", success_url = "https://example.com/ok",
                        line_items = [{ price = "price_123", quantity = 1 }]))]
        async fn premium(&self) -> String {
            String::new()
        }
    }
}

fn main() {
    let server = shadowed::Server;
    let tool = <shadowed::Server as mcp_analytics::rmcp::ServerHandler>::get_tool(&server, "add").unwrap();
    assert_eq!(tool.title.as_deref(), Some("Add"));
}
