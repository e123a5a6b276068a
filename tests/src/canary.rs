//! The canary server: tools that receive and return unique canary secrets in every shape the
//! sanitizer must catch, and resources and prompts whose URIs and names carry them, served
//! in-process over HTTP and by `stdio-demo --canary` over stdio. Every canary contains a marker
//! that appears nowhere else, so finding one anywhere is a leak.

use mcp_analytics::{
    Analytics, Json, Method, handler, mcp_server,
    rmcp::{
        ErrorData, RoleServer, ServerHandler,
        model::{
            CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
            InitializeRequestParams, InitializeResult, ListToolsResult, PaginatedRequestParams,
            ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents,
            ServerCapabilities, ServerConfig, Tool,
        },
        service::RequestContext,
    },
    serde_json, tool,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Luhn-valid card number used by no other test.
pub const CARD: &str = "4000 0566 5566 5556";
/// One canary per shape: `(what to send or return, the needle that must never be found)`.
pub const CANARIES: &[(&str, &str)] = &[
    // A JWT ending a sentence, and in a query string.
    (
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.CNRYjwtSigA1b2c3d4.",
        "CNRYjwtSigA1b2c3d4",
    ),
    (
        "https://app.test/cb?id_token=eyJhbGciOiJIUzI1NiJ9.eyJhIjoiYiJ9.CNRYjwtSigB9x8y7!&x=1",
        "CNRYjwtSigB9x8y7",
    ),
    // Stripe key in a URL path, AWS key ending a sentence.
    (
        "GET https://api.stripe.test/v1/sk_live_CNRYstripePath01/charges",
        "CNRYstripePath01",
    ),
    ("the key is AKIACNRY0AWS0KEY0001.", "CNRY0AWS0KEY0001"),
    // URL user info, sensitive query parameters.
    ("postgres://admin:CNRYdbPass01@db/prod", "CNRYdbPass01"),
    (
        "https://x.test/login?user=bob&password=CNRYqueryPw01&next=/",
        "CNRYqueryPw01",
    ),
    (
        "https://x.test/cb?code=CNRYoauthCode01&state=1",
        "CNRYoauthCode01",
    ),
    (
        "https://s3.test/o?X-Amz-Signature=CNRYamzSig01",
        "CNRYamzSig01",
    ),
    // Authorization headers of any scheme.
    ("Authorization: Digest CNRYdigestCred01", "CNRYdigestCred01"),
    ("authorization: Bearer CNRYbearerTok01", "CNRYbearerTok01"),
    // A PEM private key block.
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIBCNRYpemBody01\n-----END RSA PRIVATE KEY-----",
        "CNRYpemBody01",
    ),
    // GitHub, Slack, Google.
    (
        "gh: ghp_CNRYgithub0000000000000000000000001",
        "CNRYgithub000",
    ),
    ("(github_pat_11CNRYgithubPat01_abc)", "CNRYgithubPat01"),
    ("slack xoxb-1234-CNRYslack01", "CNRYslack01"),
    (
        "maps AIzaSyCNRYgoogle0123456789abcdefghijklm.",
        "CNRYgoogle0123",
    ),
    // Cards next to other digit groups, or dot-separated.
    ("4000 0566 5566 5556 12/26", CARD),
    ("order 12345 4000056655665556", "4000056655665556"),
    ("4000.0566.5566.5556", "4000.0566.5566.5556"),
];
/// Values under sensitive keys (sent as parameters and returned as structured results);
/// `document` is sensitive only through the tools' `redact` lists.
pub const KEYED: &[(&str, &str)] = &[
    ("password", "CNRYkeyPassword01"),
    ("api_key", "CNRYkeyApiKey01"),
    ("pin", "CNRYkeyPin01"),
    ("otp", "CNRYkeyOtp01"),
    ("cvv", "CNRYkeyCvv01"),
    ("cardNumber", "CNRYkeyCardNumber01"),
    ("set-cookie", "CNRYkeyCookie01"),
    ("connection_string", "CNRYkeyConn01"),
    ("dsn", "CNRYkeyDsn01"),
    ("client_assertion", "CNRYkeyAssertion01"),
    ("jwt", "CNRYkeyJwt01"),
    ("document", "CNRYkeyDocument01"),
];
/// Sent in the wrong type to a `pin: u32` field: the invalid-params message must not keep it.
pub const INVALID_PIN: &str = "CNRYinvalidPin01";
/// Every needle.
pub fn needles() -> Vec<&'static str> {
    CANARIES
        .iter()
        .chain(KEYED)
        .map(|(_, needle)| *needle)
        .chain([INVALID_PIN, "4000056655665556"])
        .collect()
}

/// Every canary as one object: the keyed ones under their keys, the free-text ones under
/// ordinary keys.
pub fn secrets_object() -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (key, value) in KEYED {
        object.insert((*key).into(), (*value).into());
    }
    for (index, (text, _)) in CANARIES.iter().enumerate() {
        object.insert(format!("note_{index}"), (*text).into());
    }
    serde_json::Value::Object(object)
}

/// Free text holding every free-text canary and the keyed ones as `key=value` pairs.
pub fn secrets_text() -> String {
    let mut text = String::from("failure details:\n");
    for (text_canary, _) in CANARIES {
        text.push_str(text_canary);
        text.push('\n');
    }
    text
}

/// Anything, with canaries.
#[derive(Deserialize, JsonSchema)]
pub struct Anything {
    /// Any JSON.
    pub payload: serde_json::Value,
    /// Free text.
    #[serde(default)]
    pub note: String,
}

/// A PIN.
#[derive(Deserialize, JsonSchema)]
pub struct PinArgs {
    /// The PIN.
    pub pin: u32,
}

/// Secrets returned as a structured result.
#[derive(Serialize, JsonSchema)]
pub struct Leaky {
    /// Every canary.
    pub secrets: serde_json::Value,
    /// Free text with every canary.
    pub text: String,
}

/// The canary server.
#[derive(Clone, Debug)]
pub struct Canary {
    /// Where calls are recorded.
    pub analytics: Analytics,
}

// Its resources and prompts are answered by hand, inside `handler::observed`.
#[mcp_server(name = "canary", version = "0.0.1", analytics = self.analytics, server_handler = false)]
impl Canary {
    /// Echoes the note (text result).
    #[tool(redact = ["document"])]
    async fn echo(&self, args: Anything) -> String {
        format!("{}\n{}", args.note, args.payload)
    }

    /// Returns every canary as structured content (and rmcp's verbatim text copy).
    #[tool(redact = ["document"])]
    async fn structured(&self, _args: Anything) -> Json<Leaky> {
        Json(Leaky {
            secrets: secrets_object(),
            text: secrets_text(),
        })
    }

    /// A tool error whose text is free text with canaries.
    #[tool(redact = ["document"])]
    async fn fail_text(&self, _args: Anything) -> Result<String, String> {
        Err(secrets_text())
    }

    /// A tool error whose text is a JSON object with canaries.
    #[tool(redact = ["document"])]
    async fn fail_json(&self, _args: Anything) -> Result<String, String> {
        Err(secrets_object().to_string())
    }

    /// A JSON-RPC error with canaries in its message.
    #[tool(redact = ["document"])]
    async fn fail_protocol(&self, _args: Anything) -> Result<String, ErrorData> {
        Err(ErrorData::internal_error(secrets_text(), None))
    }

    /// Panics with canaries in the message.
    #[tool(redact = ["document"])]
    async fn explode(&self, _args: Anything) -> String {
        panic!("{} {}", secrets_text(), secrets_object())
    }

    /// Takes a PIN (sent with the wrong type by the harness).
    #[tool(redact = ["document"])]
    async fn check_pin(&self, args: PinArgs) -> String {
        format!("pin ok ({} digits)", args.pin.to_string().len())
    }
}

/// The URIs of resources the canary server has; any other URI is not found.
pub const FOUND: &str = "canary://found/";

impl ServerHandler for Canary {
    fn get_info(&self) -> ServerConfig {
        let mut config = handler::server_config::<Self>();
        config.capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .build();
        config
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        handler::get_tool::<Self>(name)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        handler::initialize(self, request, context).await
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        handler::list_tools(self, request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        handler::call_tool(self, request, context).await
    }

    /// No prompt exists: the error repeats the name asked for.
    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let name = request.name.as_str();
        let answer = async { Err(ErrorData::invalid_params(format!("no prompt {name}"), None)) };
        handler::observed(self, Method::PromptsGet, Some(name), &context, answer).await
    }

    /// A resource under [`FOUND`] reads as its own URI; any other is not found, the error
    /// repeating the URI.
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.as_str();
        let answer = async {
            if uri.starts_with(FOUND) {
                Ok(ReadResourceResult::new(vec![ResourceContents::text(uri, uri)]).into())
            } else {
                Err(ErrorData::resource_not_found(
                    format!("no resource {uri}"),
                    None,
                ))
            }
        };
        handler::observed(self, Method::ResourcesRead, Some(uri), &context, answer).await
    }
}
