//! The [`Server`] trait `#[mcp_server]` implements for the user's type, and the call path it
//! drives: the generated `ServerHandler` methods forward to [`call_tool`], [`list_tools`],
//! [`get_tool`] and [`server_config`]; `call_tool` hands each call to [`Server::dispatch`] as a
//! [`ToolCall`], which runs the tool method and answers with an [`Outcome`]. Every other request
//! is answered inside [`observed`], which records it: [`initialize`], [`discover`], [`ping`],
//! [`set_level`] and `list_tools` here.
//!
//! `serve::stdio` and `serve::http` serve any `Server` that is also an rmcp `ServerHandler`
//! (what `#[mcp_server]` generates). Implementing `Server` by hand is possible but not needed:
//! the macro checks what the hand-written version would get wrong.

mod call;
mod handler;
mod lifecycle;
mod observe;
mod tool_panics;

use std::future::Future;

pub use call::{Returned, ToolCall, returns};
pub(crate) use handler::record_catalog;
pub use handler::{call_tool, get_tool, list_tools, server_config, set_log_level};
pub use lifecycle::{discover, initialize, ping, set_level};
pub use observe::{Method, observed};

pub use crate::outcome::Outcome;
use crate::{
    Analytics, Payments,
    spec::{ServerInfo, ToolList, ToolSpec},
};

/// The request context rmcp hands to a server.
pub type RequestContext = rmcp::service::RequestContext<rmcp::RoleServer>;

/// An MCP server whose tools are recorded (and, when `#[paid]`, gated): what `#[mcp_server]`
/// implements for the type of the impl block it is put on.
///
/// The trait carries what the macro knows at compile time ([`Server::INFO`], [`Server::TOOLS`])
/// and the one generated method, [`Server::dispatch`] (a `match` on the tool name calling your
/// methods). Where calls are recorded and who takes payments default to the process-wide
/// handles; `#[mcp_server(analytics = self.analytics, payments = self.payments)]` overrides
/// [`Server::analytics`] and [`Server::payments`].
///
/// Bound on it to serve any `#[mcp_server]` type, as `serve::stdio` does:
///
/// ```
/// use mcp_analytics::{rmcp::ServerHandler, server::Server};
///
/// fn tool_names<S: Server + ServerHandler>() -> Vec<&'static str> {
///     S::TOOLS.iter().map(|tool| tool.name).collect()
/// }
/// ```
pub trait Server: Send + Sync + Sized + 'static {
    /// Server name, version and instructions.
    const INFO: ServerInfo;
    /// Every tool, in declaration order.
    const TOOLS: &'static [ToolSpec];

    /// Whether calls go to [`Analytics::global`] (no `#[mcp_server(analytics = ...)]`); the serve
    /// helpers then set it up from the environment before serving, failing on bad settings.
    const GLOBAL_ANALYTICS: bool = true;

    /// The cache of rmcp `Tool`s built from [`Server::TOOLS`].
    fn tool_list() -> &'static ToolList;

    /// Where this server's calls are recorded (`#[mcp_server(analytics = ...)]`).
    fn analytics(&self) -> &Analytics {
        Analytics::global()
    }

    /// Whether paid tools use [`Payments::global`] (no `#[mcp_server(payments = ...)]`); the
    /// serve helpers then set it up from the environment before serving.
    const GLOBAL_PAYMENTS: bool = true;

    /// Who takes payments for this server's `#[paid]` tools.
    fn payments(&self) -> &Payments {
        Payments::global()
    }

    /// Runs the tool named by `call` (a `match` on the tool name).
    fn dispatch(&self, call: ToolCall<'_>) -> impl Future<Output = Outcome> + Send;
}
