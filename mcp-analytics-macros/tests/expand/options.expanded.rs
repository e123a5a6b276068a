impl Weather {
    #[mcp_analytics::tool(__expanded_by_mcp_server)]
    async fn weather(&self, args: City) -> Json<Forecast> {
        Json(Forecast::default())
    }
}
const _: () = {
    use ::mcp_analytics::__private as mcpa;
    impl mcpa::Server for Weather {
        const INFO: mcpa::ServerInfo = mcpa::ServerInfo {
            name: ::core::env!("CARGO_PKG_NAME"),
            version: ::core::env!("CARGO_PKG_VERSION"),
            instructions: ::core::option::Option::Some("Weather data."),
        };
        const TOOLS: &'static [mcpa::ToolSpec] = &[
            mcpa::ToolSpec {
                name: "get_weather",
                title: ::core::option::Option::Some("Get weather"),
                input_schema: mcpa::input_schema::<City>,
                output_schema: ::core::option::Option::Some(
                    mcpa::output_schema::<Forecast>,
                ),
                meta: ::core::option::Option::Some(|| mcpa::tool_meta(
                    serde_json::json!({ "tier" : "free" }),
                )),
                ..mcpa::ToolSpec::DEFAULT
            },
        ];
        fn tool_list() -> &'static mcpa::ToolList {
            static TOOLS: mcpa::ToolList = mcpa::ToolList::new();
            &TOOLS
        }
        const GLOBAL_ANALYTICS: bool = false;
        fn analytics(&self) -> &::mcp_analytics::Analytics {
            &self.analytics
        }
        async fn dispatch(&self, call: mcpa::ToolCall<'_>) -> mcpa::Outcome {
            match call.name() {
                "get_weather" => call.run(|args: City, _| self.weather(args)).await,
                _ => call.unknown_tool(),
            }
        }
    }
    impl mcpa::ServerHandler for Weather {
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
