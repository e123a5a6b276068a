#[mcp_server(name = "Paid", version = "1.0.0", payments = self.payments)]
impl Paid {
    #[tool(description = "Generate AI image with premium quality")]
    #[paid(checkout = { mode = "payment", success_url = "https://yoursite.com/success",
                        line_items = [{ price = "price_123", quantity = 1 }] },
           reason = "High-quality AI image generation")]
    async fn generate_image(&self, args: Prompt) -> String {
        args.prompt
    }

    #[tool]
    #[paid(checkout = { mode = "subscription", success_url = "https://yoursite.com/success",
                        line_items = [{ price = env("STRIPE_PRICE_USAGE") }] },
           meter = "api_call", reason = "Pay per API call")]
    async fn api_call(&self, args: Endpoint) -> String {
        args.url
    }

    #[tool]
    #[paid(checkout = { mode = "payment", success_url = "https://yoursite.com/success",
                        line_items = [{ price = "price_thumbnails_50", quantity = 1 }] },
           grant = { credits = 50 }, reason = "50 thumbnails")]
    async fn thumbnail(&self, args: Prompt) -> String {
        args.prompt
    }
}
