//! A real stdio server process (the `stdio-demo` binary) driven by rmcp's child-process client;
//! analytics configured purely from the environment.

use mcp_analytics_tests::{
    client::{call, client_info},
    records::{Row, stored_rows},
    secrets::{assert_no_secrets, secret_arguments},
};
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

#[tokio::test]
async fn configuration_comes_from_dev_vars_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".dev.vars"),
        "MCP_ANALYTICS_DB=from-dev-vars.db\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "MCP_ANALYTICS_DB=from-env-file.db\n",
    )
    .unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stdio-demo"));
    command
        .current_dir(dir.path())
        .env_remove("MCP_ANALYTICS_DB")
        .env_remove("MCP_ANALYTICS_ENABLED");
    let client = client_info()
        .serve(TokioChildProcess::new(command).unwrap())
        .await
        .unwrap();
    call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    client.cancel().await.unwrap();
    assert_eq!(
        wait_for_rows(&dir.path().join("from-dev-vars.db"), 1)
            .await
            .len(),
        1
    );
    assert!(
        !dir.path().join("from-env-file.db").exists(),
        ".dev.vars wins over .env"
    );
}

#[tokio::test]
async fn a_bad_configuration_fails_at_startup_with_a_clear_message() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_stdio-demo"))
        .env("MCP_ANALYTICS_ENABLED", "maybe")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid MCP_ANALYTICS_ENABLED=\"maybe\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn servers_on_the_global_analytics_check_settings_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_stdio-demo"))
        .arg("--global")
        .env("MCP_ANALYTICS_DB", dir.path().join("missing-dir/x.db"))
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot open the analytics database")
            && stderr.contains("MCP_ANALYTICS_DB"),
        "{stderr}"
    );

    let db = dir.path().join("global.db");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stdio-demo"));
    command
        .arg("--global")
        .env("MCP_ANALYTICS_DB", &db)
        .current_dir(dir.path());
    let client = client_info()
        .serve(TokioChildProcess::new(command).unwrap())
        .await
        .unwrap();
    call(&client, "echo", json!({"document": "hello"}))
        .await
        .unwrap();
    client.cancel().await.unwrap();
    let rows = wait_for_rows(&db, 1).await;
    assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), ("echo", "ok"));
}

/// SIGTERM while a client is still connected: the server flushes what it recorded, then exits.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_flushes_before_exit() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("term.db");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stdio-demo"))
        .env("MCP_ANALYTICS_DB", &db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let messages = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#,
    ];
    for message in messages {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    }
    let mut answered = 0;
    while answered < 2 {
        let line = stdout.next_line().await.unwrap().expect("server answers");
        answered += usize::from(line.contains(r#""id":"#));
    }
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "a clean exit after SIGTERM: {status}");
    let rows = stored_rows(&db);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "add");
    drop(stdin);
}

async fn wait_for_rows(db: &std::path::Path, count: usize) -> Vec<Row> {
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
