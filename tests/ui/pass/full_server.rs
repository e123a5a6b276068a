//! Every supported tool shape, compiled and served once over an in-process duplex.
use mcp_analytics::{Analytics, CallContext, Json, mcp_server, rmcp::ErrorData, serde_json, tool};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    a: i64,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Out {
    value: i64,
}

struct Server {
    analytics: Analytics,
}

#[mcp_server(analytics = self.analytics)]
impl Server {
    /// Structured output.
    #[tool]
    async fn structured(&self, args: Args) -> Json<Out> {
        Json(Out { value: args.a })
    }

    #[mcp_analytics::tool(name = "with-context", title = "With context", meta = serde_json::json!({"x": 1}))]
    async fn with_context(&self, args: Args, cx: CallContext) -> Result<String, String> {
        Ok(format!("{} {:?}", args.a, cx.user_id()))
    }

    #[tool(description = "Only the context", annotations(title = "Ctx", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn context_only(&self, cx: CallContext) -> String {
        cx.session_id().unwrap_or_default().to_owned()
    }

    #[tool(track_results = false, redact = ["secret_field"])]
    async fn protocol_error(&self) -> Result<Json<Out>, ErrorData> {
        Err(ErrorData::internal_error("nope", None))
    }

    #[tool(track_results)]
    async fn unit(&self) {}

    #[tool]
    #[mcp_analytics::paid(
        checkout = { mode = "payment", success_url = "https://example.com/ok", cancel_url = "http://localhost:8000/cancel",
                     line_items = [{ price = "price_123", quantity = 1 }, { price = env("EXTRA_PRICE"), quantity = 3 }] },
        reason = "One-time unlock", grant = "unlimited"
    )]
    async fn unlock(&self, args: Args) -> String {
        args.a.to_string()
    }

    #[tool]
    #[mcp_analytics::paid(
        checkout(mode = "payment", success_url = "https://example.com/ok",
                 line_items = [{ price = "price_pack_of_50", quantity = 1 }]),
        grant(credits = 50)
    )]
    async fn pack(&self) -> String {
        String::new()
    }

    #[tool]
    #[mcp_analytics::paid(
        checkout = { mode = "subscription", success_url = "https://example.com/ok",
                     line_items = [{ price = "plan_legacy" }] },
        meter = "api.call-v2"
    )]
    async fn metered(&self) -> String {
        String::new()
    }

    /// Not a tool: stays an ordinary method.
    fn helper(&self) -> i64 {
        1
    }
}

fn main() {
    let server = Server { analytics: Analytics::disabled() };
    assert_eq!(server.helper(), 1);
    let info = <Server as mcp_analytics::rmcp::ServerHandler>::get_info(&server);
    assert_eq!(info.server_info.name, env!("CARGO_PKG_NAME"), "defaults to the package name");
    let tool = <Server as mcp_analytics::rmcp::ServerHandler>::get_tool(&server, "with-context").unwrap();
    assert_eq!(tool.title.as_deref(), Some("With context"));
}
