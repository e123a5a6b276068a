//! A real stdio server process (the `stdio-demo` binary) driven by rmcp's child-process client;
//! analytics configured purely from the environment.

mod common;

use common::*;
use rmcp::{ServiceExt, transport::TokioChildProcess};
use serde_json::json;

#[tokio::test]
async fn a_stdio_server_records_into_the_configured_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stdio.db");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stdio-demo"));
    command.env("MCP_ANALYTICS_DB", &db).current_dir(dir.path());
    let client = client_info()
        .serve(TokioChildProcess::new(command).unwrap())
        .await
        .unwrap();
    call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    call(&client, "divide", json!({"a": 1, "b": 0}))
        .await
        .unwrap();
    call(&client, "connect_service", secret_arguments())
        .await
        .unwrap();
    // Closing stdin ends the server, which flushes before exiting.
    client.cancel().await.unwrap();
    let rows = wait_for_rows(&db, 3).await;
    let statuses: Vec<&str> = rows.iter().map(|row| row.1.as_str()).collect();
    assert_eq!(statuses, ["ok", "tool_error", "ok"]);
    let session = rows[0].2.clone().unwrap();
    assert!(
        rows.iter()
            .all(|row| row.2.as_deref() == Some(session.as_str()))
    );
    assert_no_secrets(&format!("{rows:?}"));
}

#[tokio::test]
async fn a_disabled_stdio_server_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("off.db");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stdio-demo"));
    command
        .env("MCP_ANALYTICS_DB", &db)
        .env("MCP_ANALYTICS_ENABLED", "false")
        .current_dir(dir.path());
    let client = client_info()
        .serve(TokioChildProcess::new(command).unwrap())
        .await
        .unwrap();
    let sum = call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    assert_eq!(sum.structured_content, Some(json!({"sum": 3})));
    client.cancel().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !db.exists(),
        "no database is created when analytics is disabled"
    );
}

async fn wait_for_rows(
    db: &std::path::Path,
    count: usize,
) -> Vec<(
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
)> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if db.exists() {
            let rows = stored_rows(db);
            if rows.len() >= count {
                return rows;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server did not flush {count} rows"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
