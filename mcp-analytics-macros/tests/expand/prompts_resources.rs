#[mcp_server(name = "Everything", version = "1.0.0")]
impl Everything {
    /// A prompt without arguments.
    #[prompt(name = "test_simple_prompt")]
    async fn simple(&self) -> String {
        "This is a simple prompt without arguments.".into()
    }

    #[prompt(name = "test_prompt_with_arguments", title = "With arguments")]
    async fn with_arguments(&self, args: PromptArgs, cx: CallContext) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(Role::User, args.arg1)]
    }

    #[prompt]
    #[paid(checkout = { mode = "payment", success_url = "https://example.com/ok",
                        line_items = [{ price = "price_123", quantity = 5 }] })]
    async fn premium_prompt(&self) -> String {
        "premium".into()
    }

    #[resource(uri = "test://static-text", name = "static-text", mime_type = "text/plain")]
    async fn static_text(&self) -> String {
        "This is the content of the static text resource.".into()
    }

    #[resource(uri = "test://watched-resource", subscribe)]
    async fn watched(&self, cx: CallContext) -> String {
        "watched".into()
    }

    #[resource(uri_template = "test://template/{id}/data", mime_type = "application/json")]
    async fn template(&self, id: u64) -> Result<Json<Data>, ErrorData> {
        Ok(Json(Data { id }))
    }

    #[complete(prompt = "test_prompt_with_arguments", argument = "arg1")]
    async fn arg1(&self, value: &str) -> Vec<String> {
        vec![format!("{value}1")]
    }

    #[complete(resource = "test://template/{id}/data", argument = "id")]
    async fn ids(&self) -> Vec<&'static str> {
        vec!["1", "2"]
    }
}
