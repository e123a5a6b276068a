impl Paid {
    #[tool(__expanded_by_mcp_server)]
    #[paid(__expanded_by_mcp_server)]
    async fn generate_image(&self, args: Prompt) -> String {
        args.prompt
    }
    #[tool(__expanded_by_mcp_server)]
    #[paid(__expanded_by_mcp_server)]
    async fn api_call(&self, args: Endpoint) -> String {
        args.url
    }
}
const _: () = {
    use ::mcp_analytics::__private as mcpa;
    impl mcpa::Server for Paid {
        const INFO: mcpa::ServerInfo = mcpa::ServerInfo {
            name: "Paid",
            version: "1.0.0",
            instructions: ::core::option::Option::None,
        };
        const TOOLS: &'static [mcpa::ToolSpec] = &[
            mcpa::ToolSpec {
                name: "generate_image",
                description: ::core::option::Option::Some(
                    "Generate AI image with premium quality",
                ),
                input_schema: mcpa::input_schema::<Prompt>,
                paid: ::core::option::Option::Some(
                    &mcpa::Pricing {
                        mode: mcpa::CheckoutMode::Payment,
                        success_url: "https://yoursite.com/success",
                        cancel_url: ::core::option::Option::None,
                        line_items: &[
                            mcpa::LineItem {
                                price: mcpa::Price::Id("price_123"),
                                quantity: ::core::option::Option::Some(1),
                            },
                        ],
                        meter: ::core::option::Option::None,
                        reason: ::core::option::Option::Some(
                            "High-quality AI image generation",
                        ),
                        grant: mcpa::Grant::Credits,
                    },
                ),
                ..mcpa::ToolSpec::DEFAULT
            },
            mcpa::ToolSpec {
                name: "api_call",
                input_schema: mcpa::input_schema::<Endpoint>,
                paid: ::core::option::Option::Some(
                    &mcpa::Pricing {
                        mode: mcpa::CheckoutMode::Subscription,
                        success_url: "https://yoursite.com/success",
                        cancel_url: ::core::option::Option::None,
                        line_items: &[
                            mcpa::LineItem {
                                price: mcpa::Price::Env("STRIPE_PRICE_USAGE"),
                                quantity: ::core::option::Option::None,
                            },
                        ],
                        meter: ::core::option::Option::Some("api_call"),
                        reason: ::core::option::Option::Some("Pay per API call"),
                        grant: mcpa::Grant::Credits,
                    },
                ),
                ..mcpa::ToolSpec::DEFAULT
            },
        ];
        fn tool_list() -> &'static mcpa::ToolList {
            static TOOLS: mcpa::ToolList = mcpa::ToolList::new();
            &TOOLS
        }
        const GLOBAL_PAYMENTS: bool = false;
        fn payments(&self) -> &::mcp_analytics::Payments {
            &self.payments
        }
        async fn dispatch(&self, call: mcpa::ToolCall<'_>) -> mcpa::Outcome {
            match call.name() {
                "generate_image" => {
                    call.run(|args: Prompt, _| self.generate_image(args)).await
                }
                "api_call" => call.run(|args: Endpoint, _| self.api_call(args)).await,
                _ => call.unknown_tool(),
            }
        }
    }
    impl mcpa::ServerHandler for Paid {
        fn get_info(&self) -> mcpa::ServerConfig {
            mcpa::server_config::<Self>()
        }
        fn get_tool(&self, name: &str) -> ::core::option::Option<mcpa::Tool> {
            mcpa::get_tool::<Self>(name)
        }
        async fn list_tools(
            &self,
            _request: ::core::option::Option<mcpa::PaginatedRequestParams>,
            context: mcpa::RequestContext,
        ) -> ::core::result::Result<mcpa::ListToolsResult, mcpa::ErrorData> {
            mcpa::list_tools::<Self>(&context)
        }
        async fn call_tool(
            &self,
            request: mcpa::CallToolRequestParams,
            context: mcpa::RequestContext,
        ) -> ::core::result::Result<mcpa::CallToolResponse, mcpa::ErrorData> {
            mcpa::call_tool(self, request, context).await
        }
    }
};
