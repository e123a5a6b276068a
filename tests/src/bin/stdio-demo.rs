//! The demo server over stdio, configured from the environment (spawned by the stdio tests).
//! `--global` serves `GlobalDemo`, which uses the process-wide analytics; `--canary` serves the
//! canary server with logs (`CANARY_LOG_FILTER`, default `debug`) written to the file
//! `CANARY_LOG`.

use mcp_analytics::Analytics;
use mcp_analytics_tests::{Demo, GlobalDemo, canary::Canary};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), mcp_analytics::Error> {
    if std::env::args().any(|arg| arg == "--global") {
        return mcp_analytics::serve::stdio(GlobalDemo).await;
    }
    let analytics = Analytics::from_env()?;
    if std::env::args().any(|arg| arg == "--canary") {
        let log = std::env::var("CANARY_LOG").expect("CANARY_LOG names the log file");
        let log = std::fs::File::create(log).expect("the log file can be created");
        tracing_subscriber::fmt()
            .with_env_filter(std::env::var("CANARY_LOG_FILTER").unwrap_or_else(|_| "debug".into()))
            .with_writer(std::sync::Mutex::new(log))
            .with_ansi(false)
            .init();
        return mcp_analytics::serve::stdio(Canary { analytics }).await;
    }
    mcp_analytics::serve::stdio(Demo { analytics }).await
}
