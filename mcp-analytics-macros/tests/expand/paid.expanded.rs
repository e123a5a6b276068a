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
    #[tool(__expanded_by_mcp_server)]
    #[paid(__expanded_by_mcp_server)]
    async fn thumbnail(&self, args: Prompt) -> String {
        args.prompt
    }
}
#[doc(hidden)]
#[allow(unused_qualifications, clippy::all, clippy::pedantic, clippy::absolute_paths)]
const _: () = {
    use ::mcp_analytics::__private as __mcpa;
    #[automatically_derived]
    impl __mcpa::Server for Paid {
        const INFO: __mcpa::ServerInfo = __mcpa::ServerInfo {
            name: "Paid",
            version: "1.0.0",
            instructions: __mcpa::None,
        };
        const TOOLS: &'static [__mcpa::ToolSpec] = &[
            __mcpa::ToolSpec {
                name: "generate_image",
                description: __mcpa::Some("Generate AI image with premium quality"),
                input_schema: __mcpa::input_schema::<Prompt>,
                paid: __mcpa::Some(
                    &__mcpa::Pricing {
                        mode: __mcpa::CheckoutMode::Payment,
                        success_url: "https://yoursite.com/success",
                        cancel_url: __mcpa::None,
                        line_items: &[
                            __mcpa::LineItem {
                                price: __mcpa::Price::Id("price_123"),
                                quantity: __mcpa::Some(1),
                            },
                        ],
                        meter: __mcpa::None,
                        reason: __mcpa::Some("High-quality AI image generation"),
                        grant: __mcpa::Grant::Credits,
                    },
                ),
                ..__mcpa::ToolSpec::DEFAULT
            },
            __mcpa::ToolSpec {
                name: "api_call",
                input_schema: __mcpa::input_schema::<Endpoint>,
                paid: __mcpa::Some(
                    &__mcpa::Pricing {
                        mode: __mcpa::CheckoutMode::Subscription,
                        success_url: "https://yoursite.com/success",
                        cancel_url: __mcpa::None,
                        line_items: &[
                            __mcpa::LineItem {
                                price: __mcpa::Price::Env("STRIPE_PRICE_USAGE"),
                                quantity: __mcpa::None,
                            },
                        ],
                        meter: __mcpa::Some("api_call"),
                        reason: __mcpa::Some("Pay per API call"),
                        grant: __mcpa::Grant::Credits,
                    },
                ),
                ..__mcpa::ToolSpec::DEFAULT
            },
            __mcpa::ToolSpec {
                name: "thumbnail",
                input_schema: __mcpa::input_schema::<Prompt>,
                paid: __mcpa::Some(
                    &__mcpa::Pricing {
                        mode: __mcpa::CheckoutMode::Payment,
                        success_url: "https://yoursite.com/success",
                        cancel_url: __mcpa::None,
                        line_items: &[
                            __mcpa::LineItem {
                                price: __mcpa::Price::Id("price_thumbnails_50"),
                                quantity: __mcpa::Some(1),
                            },
                        ],
                        meter: __mcpa::None,
                        reason: __mcpa::Some("50 thumbnails"),
                        grant: __mcpa::Grant::pack(50),
                    },
                ),
                ..__mcpa::ToolSpec::DEFAULT
            },
        ];
        fn tool_list() -> &'static __mcpa::ToolList {
            static TOOLS: __mcpa::ToolList = __mcpa::ToolList::new();
            &TOOLS
        }
        const GLOBAL_PAYMENTS: bool = false;
        fn payments(&self) -> &::mcp_analytics::Payments {
            &self.payments
        }
        async fn dispatch(&self, call: __mcpa::ToolCall<'_>) -> __mcpa::Outcome {
            match call.name() {
                "generate_image" => {
                    call.run(|args: Prompt, _| async move {
                            __mcpa::returns(self.generate_image(args).await)
                        })
                        .await
                }
                "api_call" => {
                    call.run(|args: Endpoint, _| async move {
                            __mcpa::returns(self.api_call(args).await)
                        })
                        .await
                }
                "thumbnail" => {
                    call.run(|args: Prompt, _| async move {
                            __mcpa::returns(self.thumbnail(args).await)
                        })
                        .await
                }
                _ => call.unknown_tool(),
            }
        }
    }
    #[automatically_derived]
    impl __mcpa::ServerHandler for Paid {
        fn get_info(&self) -> __mcpa::ServerConfig {
            __mcpa::server_config::<Self>()
        }
        fn get_tool(&self, name: &str) -> __mcpa::Option<__mcpa::Tool> {
            __mcpa::get_tool::<Self>(name)
        }
        async fn initialize(
            &self,
            request: __mcpa::InitializeRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::InitializeResult, __mcpa::ErrorData> {
            __mcpa::initialize(self, request, context).await
        }
        async fn discover(
            &self,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::DiscoverResult, __mcpa::ErrorData> {
            __mcpa::discover(self, context).await
        }
        async fn ping(
            &self,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<(), __mcpa::ErrorData> {
            __mcpa::ping(self, context).await
        }
        async fn set_level(
            &self,
            request: __mcpa::SetLevelRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<(), __mcpa::ErrorData> {
            __mcpa::set_level(self, request, context).await
        }
        async fn list_tools(
            &self,
            request: __mcpa::Option<__mcpa::PaginatedRequestParams>,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::ListToolsResult, __mcpa::ErrorData> {
            __mcpa::list_tools(self, request, context).await
        }
        async fn call_tool(
            &self,
            request: __mcpa::CallToolRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::CallToolResponse, __mcpa::ErrorData> {
            __mcpa::call_tool(self, request, context).await
        }
    }
};
