//! Attribute macros for [`mcp-analytics`](https://docs.rs/mcp-analytics).
//!
//! Use them through the `mcp_analytics` crate (`use mcp_analytics::{mcp_server, tool};`); this
//! crate only turns syntax into a few lines of code that call `::mcp_analytics::__private`.
//!
//! The pipeline is one-directional and does no I/O: `attr` reads the attribute arguments (one
//! grammar, one enum of keys per attribute) into the model of `ast`, `check` applies the rules
//! between values, and `expand` writes code; `ctxt` collects every mistake so they are all
//! reported at once. Set `MCP_ANALYTICS_MACROS_DEBUG=1` to print each expansion to stderr.

use proc_macro::TokenStream;

mod keys;

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;

/// Turns an inherent `impl` block into an instrumented MCP server.
///
/// Every method marked [`#[tool]`](macro@tool) becomes an MCP tool,
/// [`#[prompt]`](macro@prompt) a prompt, [`#[resource]`](macro@resource) a resource (or a
/// template of them) and [`#[complete]`](macro@complete) the completion of an argument;
/// [`#[paid]`](macro@paid) puts a Stripe payment gate in front of a tool, prompt or resource.
/// The macro reads and removes these attributes, then generates, next to your impl block:
///
/// - the server description the serve helpers need (`mcp_analytics::serve::stdio`, `http`):
///   name, version, instructions and one spec per tool (input schema from the argument type,
///   output schema from a `Json<T>` return type, annotations, pricing), prompt, resource,
///   resource template and completion;
/// - one `match` per kind (tool name, prompt name, resource URI or template, completion
///   target) that calls your method with panics caught; tool calls are recorded, and paid
///   ones go through the payment gate;
/// - the `rmcp::ServerHandler` implementation (`get_info`, `get_tool`, `initialize`,
///   `discover`, `ping`, `set_level`, `list_tools`, `call_tool`, and the prompt, resource,
///   subscription and completion methods when the server has any), advertising logging and
///   exactly the other capabilities used, unless `server_handler = false`. Every request it
///   answers is recorded.
///
/// ```ignore
/// use mcp_analytics::{mcp_server, tool};
/// use schemars::JsonSchema;
/// use serde::Deserialize;
///
/// #[derive(Deserialize, JsonSchema)]
/// struct AddArgs { a: f64, b: f64 }
///
/// struct MyServer;
///
/// #[mcp_server(name = "My MCP", version = "1.0.0")]
/// impl MyServer {
///     /// Add two numbers
///     #[tool]
///     async fn add(&self, args: AddArgs) -> String {
///         format!("Result: {}", args.a + args.b)
///     }
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), mcp_analytics::Error> {
///     mcp_analytics::serve::stdio(MyServer).await
/// }
/// ```
///
/// # Options
///
/// | option | value | default |
/// |---|---|---|
/// | `name` | `"..."`: the server name clients see | your package's name (`CARGO_PKG_NAME`) |
/// | `version` | `"..."` | your package's version (`CARGO_PKG_VERSION`) |
/// | `instructions` | `"..."`: how a model should use the server | none |
/// | `analytics` | an expression evaluated with `self` in scope, giving an `Analytics` (`analytics = self.analytics`) | the process-wide handle, set up from the environment by the serve helpers |
/// | `payments` | an expression giving a `Payments` (`payments = self.payments`) | the process-wide handle, set up from the environment |
/// | `server_handler` | `false`: write `impl ServerHandler` yourself (to add what the macros do not generate) and forward its methods to `mcp_analytics::handler` | `true` |
///
/// Options use the grammar of all the attributes, described under [`#[paid]`](macro@paid):
/// `key = value`, a bare `key` for `key = true`, and `key(...)` for `key = { ... }`.
///
/// # Errors
///
/// Every mistake is a compile error at the narrowest token, all reported at once, with "did
/// you mean" for misspelled keys and values:
///
/// ```text
/// error: unknown `mcp_server` option `nmae`; did you mean `name`? expected `name`, `version`, `instructions`, `analytics`, `payments` or `server_handler`
///  --> src/main.rs:5:14
///   |
/// 5 | #[mcp_server(nmae = "My MCP")]
///   |              ^^^^
/// ```
///
/// The macro goes on an inherent, non-generic impl block (not a trait impl). Even with mistakes
/// it still implements the server traits (without tools), so code that serves the server shows
/// no follow-on errors and your IDE keeps completing.
///
/// Set `MCP_ANALYTICS_MACROS_DEBUG=1` while compiling to print the generated code, or run
/// `cargo expand`.
#[proc_macro_attribute]
pub fn mcp_server(args: TokenStream, item: TokenStream) -> TokenStream {
    debug_print(expand::mcp_server(args.into(), item.into())).into()
}

/// Marks a method of an [`#[mcp_server]`](macro@mcp_server) impl as an MCP tool.
///
/// The method is `async fn name(&self [, args: T] [, cx: CallContext]) -> R`:
///
/// - `T`, the tool's arguments, is any `Deserialize + JsonSchema` type; its schema becomes the
///   tool's input schema. Without it the tool takes no arguments.
/// - A trailing `CallContext` gives the tool the user id, session id and rmcp's request
///   context.
/// - `R` is anything rmcp accepts as a tool result: `String`, `()`, `ContentBlock`,
///   `CallToolResult`, `Json<T>` (structured output: the output schema is advertised), or
///   `Result<_, E>` where `E` is a result (a tool error) or `ErrorData` (a JSON-RPC error). A
///   type that is none of these is reported at the return type.
///
/// ```ignore
/// #[mcp_server]
/// impl MyServer {
///     /// Process a sensitive document
///     #[tool(track_results = false, redact = ["document"])]
///     async fn process_document(&self, args: Doc, cx: CallContext) -> Result<String, String> {
///         Ok(format!("{} characters for {:?}", args.document.len(), cx.user_id()))
///     }
///
///     #[tool(name = "ping", annotations(read_only_hint = true, idempotent_hint = true))]
///     async fn liveness(&self) -> String {
///         "pong".into()
///     }
/// }
/// ```
///
/// # Options
///
/// | option | value | default |
/// |---|---|---|
/// | `name` | `"..."`: the MCP tool name (ASCII letters, digits, `_`, `-`, `.`; at most 128) | the method name |
/// | `title` | `"..."`: a human-readable title | none |
/// | `description` | `"..."` | the method's doc comment |
/// | `track_results` | `false`: the call is recorded, its result never stored | `true` |
/// | `redact` | `["field", ...]`: argument fields masked before the call is stored | none |
/// | `annotations` | `(title = "...", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)`, any subset; also written `annotations = { ... }` | none |
/// | `meta` | an expression giving a JSON object: the tool's `_meta` (`meta = serde_json::json!({ "ui": "card" })`) | none |
///
/// Tool names must be unique within a server.
///
/// # Errors
///
/// On its own, outside an `#[mcp_server]` impl, `#[tool]` is a compile error.
#[proc_macro_attribute]
pub fn tool(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced("tool", args.into(), item.into()).into()
}

/// Marks a method of an [`#[mcp_server]`](macro@mcp_server) impl as an MCP prompt.
///
/// The method is `async fn name(&self [, args: T] [, cx: CallContext]) -> R`, like a tool:
///
/// - `T`, the prompt's arguments, is any `Deserialize + JsonSchema` type; its fields are the
///   arguments `prompts/list` shows (name, the field's doc comment as description, required
///   unless `Option` or defaulted). MCP clients send arguments as strings.
/// - `R` is `String` (one user message), `PromptMessage`, `Vec<PromptMessage>`,
///   `GetPromptResult`, or `Result<_, ErrorData>` of one of them.
///
/// ```ignore
/// #[mcp_server]
/// impl MyServer {
///     /// Review a piece of code
///     #[prompt(title = "Code review")]
///     async fn code_review(&self, args: ReviewArgs) -> String {
///         format!("Review this {} code:\n{}", args.language, args.code)
///     }
/// }
/// ```
///
/// | option | value | default |
/// |---|---|---|
/// | `name` | `"..."`: the MCP prompt name | the method name |
/// | `title` | `"..."` | none |
/// | `description` | `"..."` | the method's doc comment |
///
/// Prompt names must be unique within a server. With [`#[paid]`](macro@paid), `prompts/get`
/// goes through the payment gate. On its own, outside an `#[mcp_server]` impl, `#[prompt]` is a
/// compile error.
#[proc_macro_attribute]
pub fn prompt(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced("prompt", args.into(), item.into()).into()
}

/// Marks a method of an [`#[mcp_server]`](macro@mcp_server) impl as an MCP resource, or a
/// family of them.
///
/// `#[resource(uri = "...")]` serves one resource: `async fn name(&self [, cx: CallContext]) ->
/// R`. `#[resource(uri_template = "scheme://items/{id}")]` serves every URI matching the template
/// (RFC 6570 `{name}`, one path segment, and `{+name}`, which may contain `/`): each variable
/// binds to the method parameter of its name, of any type parsed from a string (`id: u64`).
///
/// `R` is `String` (text), `Vec<u8>` (a base64 blob), `Json<T>`, `ResourceContents`,
/// `Vec<ResourceContents>`, `ReadResourceResult`, or `Result<_, ErrorData>` of one of them.
///
/// ```ignore
/// #[mcp_server]
/// impl MyServer {
///     /// Today's notes
///     #[resource(uri = "notes://today", mime_type = "text/markdown", subscribe)]
///     async fn today(&self) -> String {
///         self.notes.today()
///     }
///
///     #[resource(uri_template = "notes://day/{date}/{+path}")]
///     async fn note(&self, date: String, path: String) -> Result<String, ErrorData> {
///         self.notes.find(&date, &path)
///     }
/// }
/// ```
///
/// | option | value | default |
/// |---|---|---|
/// | `uri` | `"scheme:..."`: the resource's URI | one of `uri` and `uri_template` is required |
/// | `uri_template` | `"scheme:...{name}..."` | |
/// | `name` | `"..."` | the method name |
/// | `title` | `"..."` | none |
/// | `description` | `"..."` | the method's doc comment |
/// | `mime_type` | `"type/subtype"`: listed, and labels the contents | `text/plain` for text, `application/octet-stream` for bytes, `application/json` for `Json<T>` |
/// | `subscribe` | flag: clients may subscribe; tell them with `mcp_analytics::resource_updated::<Self>(uri)` | not subscribable |
///
/// A template's variables and the method's parameters must match one to one. URIs and
/// templates must be unique within a server. With [`#[paid]`](macro@paid), `resources/read`
/// goes through the payment gate.
#[proc_macro_attribute]
pub fn resource(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced("resource", args.into(), item.into()).into()
}

/// Marks a method of an [`#[mcp_server]`](macro@mcp_server) impl as the completion of a prompt
/// argument or a resource template variable (`completion/complete`).
///
/// The method is `async fn name(&self [, value: &str] [, cx: CallContext]) -> R`, where
/// `value` is what the user typed so far (`&str` or `String`), and `R` is `Vec<String>`,
/// `Vec<&'static str>`, `CompletionInfo`, `CompleteResult`, or `Result<_, ErrorData>` of one of
/// them (at most 100 values are sent, with the total).
///
/// ```ignore
/// #[mcp_server]
/// impl MyServer {
///     #[complete(prompt = "code_review", argument = "language")]
///     async fn languages(&self, value: &str) -> Vec<&'static str> {
///         ["rust", "python", "typescript"].into_iter().filter(|l| l.starts_with(value)).collect()
///     }
///
///     #[complete(resource = "notes://day/{date}/{+path}", argument = "date")]
///     async fn dates(&self) -> Vec<String> {
///         self.notes.dates()
///     }
/// }
/// ```
///
/// | option | value |
/// |---|---|
/// | `prompt` | `"..."`: the name of a prompt of this server (one of `prompt` and `resource`) |
/// | `resource` | `"..."`: a `uri_template` of this server, as written |
/// | `argument` | `"..."`: the prompt argument or template variable, required |
///
/// A prompt or template that does not exist, a template variable that does not exist and a
/// second completion of the same argument are compile errors; a prompt argument that its
/// arguments type does not have is reported when the server starts.
#[proc_macro_attribute]
pub fn complete(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced("complete", args.into(), item.into()).into()
}

/// Puts a fail-closed Stripe payment gate in front of a [`#[tool]`](macro@tool) (or a
/// [`#[prompt]`](macro@prompt) or [`#[resource]`](macro@resource): `prompts/get` and
/// `resources/read` are gated the same way, and refused with a JSON-RPC error carrying the same
/// answer).
///
/// A caller who has not paid gets a checkout link instead of the tool's result; after paying,
/// calls run (a one-time purchase grants credits or an unlimited unlock, a subscription grants
/// use while it is active, a metered subscription bills one meter event per successful call).
///
/// ```ignore
/// #[mcp_server]
/// impl MyServer {
///     #[tool(description = "Generate AI image with premium quality")]
///     #[paid(checkout = { mode = "payment", success_url = "https://yoursite.com/success",
///                         line_items = [{ price = "price_123", quantity = 1 }] },
///            reason = "High-quality AI image generation")]
///     async fn generate_image(&self, args: Prompt) -> String {
///         args.prompt
///     }
///
///     #[tool]
///     #[paid(checkout = { mode = "subscription", success_url = "https://yoursite.com/success",
///                         line_items = [{ price = env("STRIPE_PRICE_USAGE") }] },
///            meter = "api_call", reason = "Pay per API call")]
///     async fn api_call(&self, args: Endpoint) -> String {
///         args.url
///     }
/// }
/// ```
///
/// # Options
///
/// | option | value | default |
/// |---|---|---|
/// | `checkout` | `{ mode, success_url, cancel_url, line_items }` (below), required | |
/// | `meter` | `"..."`: the event name of a Stripe meter (ASCII letters, digits, `_`, `-`, `.`, `:`; at most 100); subscriptions only | none: not metered |
/// | `reason` | `"..."`: what the user pays for, shown with the checkout link | the tool's description |
/// | `grant` | what one purchase grants: `"credits"`, the first line item's `quantity` of successful calls; a credit pack `{ credits = 50 }`, 50 successful calls per unit of the first line item (one price, `quantity = 1`: 50 calls); `"unlimited"`, a one-time unlock. One-time payments only | `"credits"` |
///
/// `checkout = { ... }` fields:
///
/// | field | value |
/// |---|---|
/// | `mode` | `"payment"` (one-time) or `"subscription"`, required |
/// | `success_url` | `"https://..."`: where Stripe sends the buyer after paying, required |
/// | `cancel_url` | `"https://..."`, optional |
/// | `line_items` | `[{ price = ..., quantity = 1 }, ...]`, at least one (at most 100 in payment mode, 20 in subscription mode) |
///
/// A line item's `price` is a price id literal (`"price_..."`, legacy `"plan_..."`) or
/// `env("VAR")`, read at startup; `quantity` is a positive integer, required in payment mode
/// and not allowed with `meter` (Stripe bills the metered usage).
///
/// # Grammar
///
/// `#[mcp_server]` and the attributes of its methods share one grammar, which mirrors Stripe's
/// JSON-like parameters:
///
/// ```text
/// fields := field ("," field)* ","?
/// field  := key                       a flag: `track_results` is `track_results = true`
///         | key "=" value
///         | key "(" fields ")"        the same as `key = { fields }`
/// value  := "text" | 1 | true | false
///         | "{" fields "}"            an object
///         | "[" value, ... "]"        an array
///         | env("VAR")                a value read from the environment at startup
///         | word                      the same as "word" for a choice (`grant = unlimited`)
///         | expression                where the option takes Rust code (`analytics = self.analytics`)
/// ```
///
/// # Errors
///
/// Every mistake is a compile error at the offending token, all at once: an unknown mode or
/// grant (with "did you mean"), missing or empty line items, a price that is not a price id,
/// a missing or zero quantity in payment mode, a credit pack without `credits` or of zero
/// (`grant = 50` gets "did you mean `grant = { credits = 50 }`"), `meter` outside
/// subscriptions, a quantity with `meter`, `grant` with a subscription, a non-absolute URL, an
/// invalid meter name, unknown or duplicate keys, wrong value types, and `#[paid]` without
/// `#[tool]`, `#[prompt]` or `#[resource]`:
///
/// ```text
/// error: unknown `mode` `paymnet`; did you mean `"payment"`? expected `"payment"` or `"subscription"`
///  --> src/main.rs:8:32
///   |
/// 8 |     #[paid(checkout = { mode = "paymnet", success_url = "https://example.com/ok", ...
///   |                                ^^^^^^^^^
/// ```
///
/// At startup the serve helpers read `env(...)` prices and (with Stripe) check that every price
/// exists, is active and fits the mode and meter.
#[proc_macro_attribute]
pub fn paid(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced("paid", args.into(), item.into()).into()
}

fn debug_print(tokens: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    if std::env::var_os("MCP_ANALYTICS_MACROS_DEBUG").is_some() {
        eprintln!("{tokens}");
    }
    tokens
}
