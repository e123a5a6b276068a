//! The demo server over stdio, configured from the environment (spawned by the stdio tests).
//! `--global` serves `GlobalDemo`, which uses the process-wide analytics.

use mcp_analytics::Analytics;
use mcp_analytics_tests::{Demo, GlobalDemo};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), mcp_analytics::Error> {
    if std::env::args().any(|arg| arg == "--global") {
        return mcp_analytics::serve::stdio(GlobalDemo).await;
    }
    let analytics = Analytics::from_env()?;
    mcp_analytics::serve::stdio(Demo { analytics }).await
}
