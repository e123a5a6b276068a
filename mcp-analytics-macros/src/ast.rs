//! What `#[mcp_server]` describes, as types only: the server options, one [`Tool`], [`Prompt`],
//! [`Resource`] or [`Completion`] per `#[tool]`, `#[prompt]`, `#[resource]` or `#[complete]`
//! method, and the [`Pricing`] of `#[paid]`. Read by `attr`, checked by `check`, written out by
//! `expand`.

use proc_macro2::Span;
use syn::{Expr, LitBool, LitInt, LitStr, Type};

use crate::keys::keys;

/// `#[mcp_server(...)]` and the tools found in its impl block.
pub(crate) struct Server {
    /// The impl block, with `#[tool]` and `#[paid]` replaced by markers on its methods.
    pub item: syn::ItemImpl,
    pub name: Option<LitStr>,
    pub version: Option<LitStr>,
    pub instructions: Option<LitStr>,
    /// Where the `Analytics` handle comes from (`self.analytics`); the global one when absent.
    pub analytics: Option<Expr>,
    /// Where the `Payments` handle comes from (`self.payments`); the global one when absent.
    pub payments: Option<Expr>,
    /// `server_handler = false`: the user writes `impl ServerHandler` (to answer something the
    /// macros do not generate) and calls `mcp_analytics::handler::*` from it. `false` also when the option
    /// (or the whole argument list) could not be read: an error is reported either way, and a
    /// generated impl could conflict with the user's.
    pub server_handler: bool,
    pub tools: Vec<Tool>,
    pub prompts: Vec<Prompt>,
    pub resources: Vec<Resource>,
    pub completions: Vec<Completion>,
}

/// One `#[tool]` method.
pub(crate) struct Tool {
    /// The Rust method name.
    pub method: syn::Ident,
    /// The MCP tool name (`name = "..."`, else the method name).
    pub name: LitStr,
    pub title: Option<LitStr>,
    /// `description = "..."`, else the doc comment.
    pub description: Option<String>,
    pub track_results: bool,
    pub redact: Vec<LitStr>,
    pub annotations: Annotations,
    pub meta: Option<Expr>,
    /// The argument type, when the method takes one.
    pub args: Option<Type>,
    /// Whether the method takes a trailing `CallContext` parameter.
    pub takes_context: bool,
    /// The declared return type, when it is written and nameable (not `impl Trait`).
    pub returns: Option<Type>,
    /// `T` of a `Json<T>` (or `Result<Json<T>, E>`) return type: the declared output schema.
    pub output: Option<Type>,
    /// `#[paid(...)]`: the tool's pricing.
    pub paid: Option<Pricing>,
}

/// One `#[prompt]` method.
pub(crate) struct Prompt {
    /// The Rust method name.
    pub method: syn::Ident,
    /// The MCP prompt name (`name = "..."`, else the method name).
    pub name: LitStr,
    pub title: Option<LitStr>,
    /// `description = "..."`, else the doc comment.
    pub description: Option<String>,
    /// The arguments type, when the method takes one: its fields are the prompt's arguments.
    pub args: Option<Type>,
    /// Whether the method takes a trailing `CallContext` parameter.
    pub takes_context: bool,
    /// The declared return type, when it is written and nameable.
    pub returns: Option<Type>,
    /// `#[paid(...)]`: the prompt's pricing.
    pub paid: Option<Pricing>,
}

/// One `#[resource]` method.
pub(crate) struct Resource {
    /// The Rust method name.
    pub method: syn::Ident,
    /// `uri = "..."` or `uri_template = "..."`.
    pub uri: Uri,
    /// The MCP resource name (`name = "..."`, else the method name).
    pub name: LitStr,
    pub title: Option<LitStr>,
    /// `description = "..."`, else the doc comment.
    pub description: Option<String>,
    pub mime_type: Option<LitStr>,
    /// `subscribe`: clients may subscribe to updates of the resource.
    pub subscribe: bool,
    /// The parameters bound to the template's variables, in declaration order.
    pub params: Vec<Param>,
    /// Whether the method takes a trailing `CallContext` parameter.
    pub takes_context: bool,
    /// The declared return type, when it is written and nameable.
    pub returns: Option<Type>,
    /// `#[paid(...)]`: the pricing of reading the resource.
    pub paid: Option<Pricing>,
}

/// Where a resource lives.
pub(crate) enum Uri {
    /// `uri = "test://static"`: one resource.
    Fixed(LitStr),
    /// `uri_template = "test://items/{id}"`: a family of resources, and its variables in order.
    Template(LitStr, Vec<Variable>),
}

impl Uri {
    /// The literal as written.
    pub(crate) fn lit(&self) -> &LitStr {
        match self {
            Uri::Fixed(lit) | Uri::Template(lit, _) => lit,
        }
    }
}

/// One `{name}` (or `{+name}`, which may contain `/`) of a URI template.
pub(crate) struct Variable {
    pub name: String,
}

/// A method parameter other than `&self` and `CallContext`.
pub(crate) struct Param {
    pub name: syn::Ident,
    pub ty: Type,
}

/// One `#[complete]` method: candidate values for an argument of a prompt or a variable of a
/// resource template.
pub(crate) struct Completion {
    /// The Rust method name.
    pub method: syn::Ident,
    pub target: CompletionTarget,
    /// The prompt argument or template variable completed.
    pub argument: LitStr,
    /// The parameter receiving the value typed so far (`&str` or `String`), if taken.
    pub value: Option<Param>,
    /// Whether the method takes a trailing `CallContext` parameter.
    pub takes_context: bool,
    /// The declared return type, when it is written and nameable.
    pub returns: Option<Type>,
}

/// What a completion completes.
pub(crate) enum CompletionTarget {
    /// `prompt = "name"`.
    Prompt(LitStr),
    /// `resource = "uri template"`.
    Resource(LitStr),
}

impl CompletionTarget {
    /// The prompt name or template as written.
    pub(crate) fn lit(&self) -> &LitStr {
        match self {
            CompletionTarget::Prompt(lit) | CompletionTarget::Resource(lit) => lit,
        }
    }
}

/// rmcp tool annotations (`annotations(read_only_hint = true, ...)`).
#[derive(Default)]
pub(crate) struct Annotations {
    pub title: Option<LitStr>,
    pub read_only: Option<LitBool>,
    pub destructive: Option<LitBool>,
    pub idempotent: Option<LitBool>,
    pub open_world: Option<LitBool>,
}

/// The pricing of one paid tool (`#[paid(...)]`).
pub(crate) struct Pricing {
    pub checkout: Checkout,
    /// The Stripe meter event name billed once per successful call.
    pub meter: Option<LitStr>,
    pub reason: Option<LitStr>,
    /// `grant = ...` and the span of its key.
    pub grant: Option<(Grant, Span)>,
}

/// `checkout = { ... }`: the Stripe Checkout Session a caller is sent to.
pub(crate) struct Checkout {
    pub mode: Mode,
    pub success_url: LitStr,
    pub cancel_url: Option<LitStr>,
    pub line_items: Vec<LineItem>,
    /// The span of `[ ... ]`, for the line item limit.
    pub line_items_span: Span,
}

keys! {
    /// Checkout mode (`mode = "..."`).
    pub(crate) enum Mode {
        /// One-time payment.
        Payment = "payment",
        /// Recurring or metered subscription.
        Subscription = "subscription",
    }
}

/// What a completed one-time payment grants (`grant = ...`).
pub(crate) enum Grant {
    /// `quantity` uses of the tool per purchase (`grant = "credits"`, the default).
    Credits,
    /// Unlimited use once bought (`grant = "unlimited"`).
    Unlimited,
    /// A credit pack: this many uses per unit bought (`grant = { credits = 50 }`).
    Pack(LitInt),
}

/// One Checkout line item.
pub(crate) struct LineItem {
    pub price: Price,
    pub quantity: Option<LitInt>,
}

/// Where a price id comes from.
pub(crate) enum Price {
    /// `price = "price_..."`.
    Id(LitStr),
    /// `price = env("VAR")`: read at startup.
    Env(LitStr),
}
