//! The demo server over stdio, configured from the environment (spawned by the stdio tests).

use mcp_analytics::Analytics;
use mcp_analytics_tests::Demo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), mcp_analytics::Error> {
    let analytics = Analytics::from_env()?;
    mcp_analytics::serve::stdio(Demo { analytics }).await
}
