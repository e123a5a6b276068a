impl Weather {
    #[mcp_analytics::tool(__expanded_by_mcp_server)]
    async fn weather(&self, args: City) -> Json<Forecast> {
        Json(Forecast::default())
    }
}
#[doc(hidden)]
#[allow(unused_qualifications, clippy::all, clippy::pedantic, clippy::absolute_paths)]
const _: () = {
    use ::mcp_analytics::__private as __mcpa;
    #[automatically_derived]
    impl __mcpa::Server for Weather {
        const INFO: __mcpa::ServerInfo = __mcpa::ServerInfo {
            name: ::core::env!("CARGO_PKG_NAME"),
            version: ::core::env!("CARGO_PKG_VERSION"),
            instructions: __mcpa::Some("Weather data."),
        };
        const TOOLS: &'static [__mcpa::ToolSpec] = &[
            __mcpa::ToolSpec {
                name: "get_weather",
                title: __mcpa::Some("Get weather"),
                input_schema: __mcpa::input_schema::<City>,
                output_schema: __mcpa::Some(__mcpa::output_schema::<Forecast>),
                meta: __mcpa::Some(|| __mcpa::tool_meta(
                    serde_json::json!({ "tier" : "free" }),
                )),
                ..__mcpa::ToolSpec::DEFAULT
            },
        ];
        fn tool_list() -> &'static __mcpa::ToolList {
            static TOOLS: __mcpa::ToolList = __mcpa::ToolList::new();
            &TOOLS
        }
        const GLOBAL_ANALYTICS: bool = false;
        fn analytics(&self) -> &::mcp_analytics::Analytics {
            &self.analytics
        }
        async fn dispatch(&self, call: __mcpa::ToolCall<'_>) -> __mcpa::Outcome {
            match call.name() {
                "get_weather" => {
                    call.run(|args: City, _| async move {
                            __mcpa::returns(self.weather(args).await)
                        })
                        .await
                }
                _ => call.unknown_tool(),
            }
        }
    }
    #[automatically_derived]
    impl __mcpa::ServerHandler for Weather {
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
