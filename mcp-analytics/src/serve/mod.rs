//! One-liners that serve an `#[mcp_server]` type over stdio ([`stdio`](crate::serve::stdio)) or
//! streamable HTTP ([`http`](crate::serve::http), [`HttpServer`](crate::serve::HttpServer)),
//! print where its analytics go, and flush them on shutdown (end of input, Ctrl-C or SIGTERM).
//! Both first set up the server's analytics and payments here, so bad settings stop the server at
//! startup. Binding and the shutdown signal come from `listen`, shared with the dashboard and the
//! collector.

#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
mod parse_errors;
#[cfg(feature = "stdio")]
mod stdio;

#[cfg(feature = "http")]
pub use http::{HttpServer, http};
#[cfg(feature = "stdio")]
pub use stdio::stdio;

#[cfg(any(feature = "stdio", feature = "http"))]
pub use crate::listen::shutdown_signal;
use crate::{
    Error,
    payments::pricing::PaidTool,
    server::Server,
    spec::{PromptSpec, ResourceSpec, ResourceTemplateSpec, ToolSpec},
};

/// Checks what the macro could not (every completion's prompt argument exists), then sets up
/// the server's payments when it has `#[paid]` tools, prompts or resources: the process-wide
/// handle set up first when the server uses it, and every pricing checked, so a missing key or
/// an unknown price stops the server at startup.
#[cfg_attr(not(any(feature = "stdio", feature = "http")), allow(dead_code))]
async fn startup_payments<S: Server>(server: &S) -> Result<Option<crate::Payments>, Error> {
    crate::server::check_completions::<S>()?;
    let paid: Vec<PaidTool> = S::TOOLS
        .iter()
        .filter_map(ToolSpec::paid_tool)
        .chain(S::PROMPTS.iter().filter_map(PromptSpec::paid_tool))
        .chain(S::RESOURCES.iter().filter_map(ResourceSpec::paid_tool))
        .chain(
            S::RESOURCE_TEMPLATES
                .iter()
                .filter_map(ResourceTemplateSpec::paid_tool),
        )
        .collect();
    if paid.is_empty() {
        return Ok(None);
    }
    if S::GLOBAL_PAYMENTS {
        crate::Payments::init_global()?;
    }
    let payments = server.payments().clone();
    payments.check_tools(paid).await?;
    eprintln!("payments: {}", payments.description());
    Ok(Some(payments))
}

/// The server's analytics, with the process-wide handle set up first when the server uses it, so
/// bad settings stop the server at startup with a clear message.
#[cfg_attr(not(any(feature = "stdio", feature = "http")), allow(dead_code))]
fn startup_analytics<S: Server>(server: &S) -> Result<crate::Analytics, Error> {
    if S::GLOBAL_ANALYTICS {
        crate::Analytics::init_global()?;
    }
    let analytics = server.analytics().clone();
    crate::server::record_catalog::<S>(&analytics);
    Ok(analytics)
}
