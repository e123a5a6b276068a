#[mcp_server(name = "Calculator", version = "1.0.0")]
impl Calculator {
    /// Add two numbers.
    #[tool]
    async fn add(&self, args: AddArgs) -> String {
        (args.a + args.b).to_string()
    }

    #[tool(track_results = false, redact = ["document"])]
    async fn process_document(&self, args: Doc, cx: CallContext) -> Result<String, String> {
        Ok(format!("{} bytes for {:?}", args.document.len(), cx.user_id()))
    }

    #[tool(description = "Liveness check", annotations(read_only_hint = true, idempotent_hint = true))]
    async fn ping(&self) -> String {
        "pong".into()
    }

    fn not_a_tool(&self) {}
}
