use mcp_analytics::{mcp_server, paid, tool};

struct Server;

#[mcp_server(name = "ok", verison = "1.0.0")]
impl Server {
    #[tool(track_results = "no", descripton = "typo")]
    fn sync_tool(&self) -> String {
        "sync".into()
    }

    #[tool(name = "sync_tool")]
    async fn duplicate(&mut self, a: i64, b: i64) -> String {
        (a + b).to_string()
    }

    #[paid(reason = "money")]
    async fn unpriced(&self) -> String {
        "unpriced".into()
    }
}

fn main() {}
