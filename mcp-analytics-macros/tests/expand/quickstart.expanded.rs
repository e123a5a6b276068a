impl Calculator {
    /// Add two numbers.
    #[tool(__expanded_by_mcp_server)]
    async fn add(&self, args: AddArgs) -> String {
        (args.a + args.b).to_string()
    }
    #[tool(__expanded_by_mcp_server)]
    async fn process_document(
        &self,
        args: Doc,
        cx: CallContext,
    ) -> Result<String, String> {
        Ok(format!("{} bytes for {:?}", args.document.len(), cx.user_id()))
    }
    #[tool(__expanded_by_mcp_server)]
    async fn ping(&self) -> String {
        "pong".into()
    }
    fn not_a_tool(&self) {}
}
#[doc(hidden)]
#[allow(unused_qualifications, clippy::all, clippy::pedantic, clippy::absolute_paths)]
const _: () = {
    use ::mcp_analytics::__private as __mcpa;
    #[automatically_derived]
    impl __mcpa::Server for Calculator {
        const INFO: __mcpa::ServerInfo = __mcpa::ServerInfo {
            name: "Calculator",
            version: "1.0.0",
            instructions: __mcpa::None,
        };
        const TOOLS: &'static [__mcpa::ToolSpec] = &[
            __mcpa::ToolSpec {
                name: "add",
                description: __mcpa::Some("Add two numbers."),
                input_schema: __mcpa::input_schema::<AddArgs>,
                ..__mcpa::ToolSpec::DEFAULT
            },
            __mcpa::ToolSpec {
                name: "process_document",
                input_schema: __mcpa::input_schema::<Doc>,
                track_results: false,
                redact: &["document"],
                ..__mcpa::ToolSpec::DEFAULT
            },
            __mcpa::ToolSpec {
                name: "ping",
                description: __mcpa::Some("Liveness check"),
                annotations: __mcpa::Annotations {
                    read_only_hint: __mcpa::Some(true),
                    idempotent_hint: __mcpa::Some(true),
                    ..__mcpa::Annotations::NONE
                },
                ..__mcpa::ToolSpec::DEFAULT
            },
        ];
        fn tool_list() -> &'static __mcpa::ToolList {
            static TOOLS: __mcpa::ToolList = __mcpa::ToolList::new();
            &TOOLS
        }
        async fn dispatch(&self, call: __mcpa::ToolCall<'_>) -> __mcpa::Outcome {
            match call.name() {
                "add" => {
                    call.run(|args: AddArgs, _| async move {
                            __mcpa::returns(self.add(args).await)
                        })
                        .await
                }
                "process_document" => {
                    call.run(|args: Doc, cx| async move {
                            __mcpa::returns(self.process_document(args, cx).await)
                        })
                        .await
                }
                "ping" => {
                    call.run_without_args(|_| async move {
                            __mcpa::returns(self.ping().await)
                        })
                        .await
                }
                _ => call.unknown_tool(),
            }
        }
    }
    #[automatically_derived]
    impl __mcpa::ServerHandler for Calculator {
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
