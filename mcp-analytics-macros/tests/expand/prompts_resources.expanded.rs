impl Everything {
    /// A prompt without arguments.
    #[prompt(__expanded_by_mcp_server)]
    async fn simple(&self) -> String {
        "This is a simple prompt without arguments.".into()
    }
    #[prompt(__expanded_by_mcp_server)]
    async fn with_arguments(
        &self,
        args: PromptArgs,
        cx: CallContext,
    ) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(Role::User, args.arg1)]
    }
    #[prompt(__expanded_by_mcp_server)]
    #[paid(__expanded_by_mcp_server)]
    async fn premium_prompt(&self) -> String {
        "premium".into()
    }
    #[resource(__expanded_by_mcp_server)]
    async fn static_text(&self) -> String {
        "This is the content of the static text resource.".into()
    }
    #[resource(__expanded_by_mcp_server)]
    async fn watched(&self, cx: CallContext) -> String {
        "watched".into()
    }
    #[resource(__expanded_by_mcp_server)]
    async fn template(&self, id: u64) -> Result<Json<Data>, ErrorData> {
        Ok(Json(Data { id }))
    }
    #[complete(__expanded_by_mcp_server)]
    async fn arg1(&self, value: &str) -> Vec<String> {
        vec![format!("{value}1")]
    }
    #[complete(__expanded_by_mcp_server)]
    async fn ids(&self) -> Vec<&'static str> {
        vec!["1", "2"]
    }
}
#[doc(hidden)]
#[allow(unused_qualifications, clippy::all, clippy::pedantic, clippy::absolute_paths)]
const _: () = {
    use ::mcp_analytics::__private as __mcpa;
    #[automatically_derived]
    impl __mcpa::Server for Everything {
        const INFO: __mcpa::ServerInfo = __mcpa::ServerInfo {
            name: "Everything",
            version: "1.0.0",
            instructions: __mcpa::None,
        };
        const TOOLS: &'static [__mcpa::ToolSpec] = &[];
        fn tool_list() -> &'static __mcpa::ToolList {
            static TOOLS: __mcpa::ToolList = __mcpa::ToolList::new();
            &TOOLS
        }
        async fn dispatch(&self, call: __mcpa::ToolCall<'_>) -> __mcpa::Outcome {
            match call.name() {
                _ => call.unknown_tool(),
            }
        }
        const PROMPTS: &'static [__mcpa::PromptSpec] = &[
            __mcpa::PromptSpec {
                name: "test_simple_prompt",
                description: __mcpa::Some("A prompt without arguments."),
                ..__mcpa::PromptSpec::DEFAULT
            },
            __mcpa::PromptSpec {
                name: "test_prompt_with_arguments",
                title: __mcpa::Some("With arguments"),
                arguments: __mcpa::prompt_arguments::<PromptArgs>,
                ..__mcpa::PromptSpec::DEFAULT
            },
            __mcpa::PromptSpec {
                name: "premium_prompt",
                paid: __mcpa::Some(
                    &__mcpa::Pricing {
                        mode: __mcpa::CheckoutMode::Payment,
                        success_url: "https://example.com/ok",
                        cancel_url: __mcpa::None,
                        line_items: &[
                            __mcpa::LineItem {
                                price: __mcpa::Price::Id("price_123"),
                                quantity: __mcpa::Some(5),
                            },
                        ],
                        meter: __mcpa::None,
                        reason: __mcpa::None,
                        grant: __mcpa::Grant::Credits,
                    },
                ),
                ..__mcpa::PromptSpec::DEFAULT
            },
        ];
        async fn dispatch_prompt(
            &self,
            prompt: __mcpa::PromptCall<'_>,
        ) -> __mcpa::Result<__mcpa::GetPromptResult, __mcpa::ErrorData> {
            match prompt.name() {
                "test_simple_prompt" => {
                    prompt
                        .run_without_args(|_| async move {
                            __mcpa::prompt_returns(self.simple().await)
                        })
                        .await
                }
                "test_prompt_with_arguments" => {
                    prompt
                        .run(|args: PromptArgs, cx| async move {
                            __mcpa::prompt_returns(self.with_arguments(args, cx).await)
                        })
                        .await
                }
                "premium_prompt" => {
                    prompt
                        .run_without_args(|_| async move {
                            __mcpa::prompt_returns(self.premium_prompt().await)
                        })
                        .await
                }
                _ => prompt.unknown(),
            }
        }
        const RESOURCES: &'static [__mcpa::ResourceSpec] = &[
            __mcpa::ResourceSpec {
                uri: "test://static-text",
                name: "static-text",
                mime_type: __mcpa::Some("text/plain"),
                ..__mcpa::ResourceSpec::DEFAULT
            },
            __mcpa::ResourceSpec {
                uri: "test://watched-resource",
                name: "watched",
                subscribe: true,
                ..__mcpa::ResourceSpec::DEFAULT
            },
        ];
        const RESOURCE_TEMPLATES: &'static [__mcpa::ResourceTemplateSpec] = &[
            __mcpa::ResourceTemplateSpec {
                uri_template: "test://template/{id}/data",
                name: "template",
                mime_type: __mcpa::Some("application/json"),
                ..__mcpa::ResourceTemplateSpec::DEFAULT
            },
        ];
        async fn dispatch_resource(
            &self,
            read: __mcpa::ResourceCall<'_>,
        ) -> __mcpa::Result<__mcpa::ReadResourceResult, __mcpa::ErrorData> {
            match read.resource() {
                "test://static-text" => {
                    read.run(|_| async move {
                            __mcpa::resource_returns(self.static_text().await)
                        })
                        .await
                }
                "test://watched-resource" => {
                    read.run(|cx| async move {
                            __mcpa::resource_returns(self.watched(cx).await)
                        })
                        .await
                }
                "test://template/{id}/data" => {
                    let vars = (read.variable::<u64>("id")?,);
                    read.run(|_| async move {
                            __mcpa::resource_returns(self.template(vars.0).await)
                        })
                        .await
                }
                _ => read.not_found(),
            }
        }
        const COMPLETIONS: &'static [__mcpa::CompletionSpec] = &[
            __mcpa::CompletionSpec {
                target: __mcpa::CompletionRef::Prompt("test_prompt_with_arguments"),
                argument: "arg1",
            },
            __mcpa::CompletionSpec {
                target: __mcpa::CompletionRef::Resource("test://template/{id}/data"),
                argument: "id",
            },
        ];
        async fn dispatch_completion(
            &self,
            completion: __mcpa::CompletionCall<'_>,
        ) -> __mcpa::Result<__mcpa::CompleteResult, __mcpa::ErrorData> {
            match completion.target() {
                (__mcpa::CompletionRef::Prompt("test_prompt_with_arguments"), "arg1") => {
                    completion
                        .run(|value, _| async move {
                            __mcpa::completion_returns(self.arg1(&value).await)
                        })
                        .await
                }
                (__mcpa::CompletionRef::Resource("test://template/{id}/data"), "id") => {
                    completion
                        .run(|_, _| async move {
                            __mcpa::completion_returns(self.ids().await)
                        })
                        .await
                }
                _ => completion.none(),
            }
        }
    }
    #[automatically_derived]
    impl __mcpa::ServerHandler for Everything {
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
        async fn list_prompts(
            &self,
            _request: __mcpa::Option<__mcpa::PaginatedRequestParams>,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::ListPromptsResult, __mcpa::ErrorData> {
            __mcpa::list_prompts(self, &context).await
        }
        async fn get_prompt(
            &self,
            request: __mcpa::GetPromptRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::GetPromptResponse, __mcpa::ErrorData> {
            __mcpa::get_prompt(self, request, context).await
        }
        async fn list_resources(
            &self,
            _request: __mcpa::Option<__mcpa::PaginatedRequestParams>,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::ListResourcesResult, __mcpa::ErrorData> {
            __mcpa::list_resources(self, &context).await
        }
        async fn list_resource_templates(
            &self,
            _request: __mcpa::Option<__mcpa::PaginatedRequestParams>,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::ListResourceTemplatesResult, __mcpa::ErrorData> {
            __mcpa::list_resource_templates(self, &context).await
        }
        async fn read_resource(
            &self,
            request: __mcpa::ReadResourceRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::ReadResourceResponse, __mcpa::ErrorData> {
            __mcpa::read_resource(self, request, context).await
        }
        async fn subscribe(
            &self,
            request: __mcpa::SubscribeRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<(), __mcpa::ErrorData> {
            __mcpa::subscribe(self, request, context).await
        }
        async fn unsubscribe(
            &self,
            request: __mcpa::UnsubscribeRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<(), __mcpa::ErrorData> {
            __mcpa::unsubscribe(self, request, context).await
        }
        async fn complete(
            &self,
            request: __mcpa::CompleteRequestParams,
            context: __mcpa::RequestContext,
        ) -> __mcpa::Result<__mcpa::CompleteResult, __mcpa::ErrorData> {
            __mcpa::complete(self, request, context).await
        }
    }
};
