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
const _: () = {
    use ::mcp_analytics::__private as mcpa;
    impl mcpa::Server for Calculator {
        const INFO: mcpa::ServerInfo = mcpa::ServerInfo {
            name: "Calculator",
            version: "1.0.0",
            instructions: ::core::option::Option::None,
        };
        const TOOLS: &'static [mcpa::ToolSpec] = &[
            mcpa::ToolSpec {
                name: "add",
                description: ::core::option::Option::Some("Add two numbers."),
                input_schema: mcpa::input_schema::<AddArgs>,
                ..mcpa::ToolSpec::DEFAULT
            },
            mcpa::ToolSpec {
                name: "process_document",
                input_schema: mcpa::input_schema::<Doc>,
                track_results: false,
                redact: &["document"],
                ..mcpa::ToolSpec::DEFAULT
            },
            mcpa::ToolSpec {
                name: "ping",
                description: ::core::option::Option::Some("Liveness check"),
                annotations: mcpa::Annotations {
                    read_only_hint: ::core::option::Option::Some(true),
                    idempotent_hint: ::core::option::Option::Some(true),
                    ..mcpa::Annotations::NONE
                },
                ..mcpa::ToolSpec::DEFAULT
            },
        ];
        fn tool_list() -> &'static mcpa::ToolList {
            static TOOLS: mcpa::ToolList = mcpa::ToolList::new();
            &TOOLS
        }
        async fn dispatch(&self, call: mcpa::ToolCall<'_>) -> mcpa::Outcome {
            match call.name() {
                "add" => call.run(|args: AddArgs, _| self.add(args)).await,
                "process_document" => {
                    call.run(|args: Doc, cx| self.process_document(args, cx)).await
                }
                "ping" => call.run_without_args(|_| self.ping()).await,
                _ => call.unknown_tool(),
            }
        }
    }
    impl mcpa::ServerHandler for Calculator {
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
