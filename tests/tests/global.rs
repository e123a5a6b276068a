//! A server without `analytics = ...` records into the process-wide handle installed with
//! `Analytics::install` (this file is its own process, so the global is its own).

use mcp_analytics::{Analytics, MemorySink, mcp_server, tool};
use mcp_analytics_tests::{
    client::{call, client_info},
    records::only,
};
use rmcp::ServiceExt;
use serde_json::json;

struct Plain;

#[mcp_server]
impl Plain {
    /// Pings.
    #[tool]
    async fn ping(&self) -> String {
        "pong".into()
    }
}

#[tokio::test]
async fn servers_without_an_analytics_option_use_the_installed_global() {
    let sink = MemorySink::new();
    let installed = Analytics::builder()
        .sink(sink.clone())
        .build()
        .unwrap()
        .install()
        .unwrap();
    assert!(
        Analytics::builder().build().unwrap().install().is_err(),
        "only one global"
    );
    let (server_io, client_io) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        let _ = Plain.serve(server_io).await.unwrap().waiting().await;
    });
    let client = client_info().serve(client_io).await.unwrap();
    let pong = call(&client, "ping", json!({})).await.unwrap();
    assert!(format!("{:?}", pong.content).contains("pong"));
    installed.flush().await;
    let events = sink.events();
    let ping = only(&events, "ping");
    assert_eq!(
        ping.server_name, "mcp-analytics-tests",
        "defaults to the package name"
    );
    assert_eq!(ping.server_version, env!("CARGO_PKG_VERSION"));
    client.cancel().await.unwrap();
}
