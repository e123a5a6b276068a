//! The demo server over streamable HTTP on an ephemeral 127.0.0.1 port (printed on stderr),
//! configured from the environment and `.env` / `.dev.vars` (spawned by the HTTP tests).

use mcp_analytics::{Analytics, serve::HttpServer};
use mcp_analytics_tests::Demo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), mcp_analytics::Error> {
    let analytics = Analytics::from_env()?;
    HttpServer::new(move || Demo {
        analytics: analytics.clone(),
    })
    .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
    .await
}
