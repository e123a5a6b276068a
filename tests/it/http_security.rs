//! Who may reach the HTTP routes, over real HTTP on 127.0.0.1: browser origins on `/mcp`, `Host`
//! checks (DNS rebinding) on the keyless dashboard, collector and test checkout pages,
//! cross-origin form posts, the API key from `.env`/`.dev.vars`, JSON-RPC parse errors, and
//! test payments that never start on a public address by accident.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, atomic::AtomicUsize},
    time::Duration,
};

use mcp_analytics::{
    Analytics, Payments, collector::Collector, dashboard::Dashboard, serve::HttpServer,
};
use mcp_analytics_tests::{
    PaidDemo,
    client::call,
    server::{Serving, TestServer},
};
use serde_json::{Value, json};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// POSTs `body` to `/mcp` as JSON with `headers`.
async fn post_mcp(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// A client without redirects (to see the dashboard's sign-in answer).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_foreign_origin_cannot_open_a_session_or_call_tools() {
    let server = TestServer::demo().start().await;
    let addr = server.addr;

    let evil = [("origin", "http://evil.example")];
    let refused = post_mcp(addr, &evil, INITIALIZE).await;
    assert_eq!(
        refused.status(),
        403,
        "a foreign origin may not open a session"
    );
    assert!(refused.headers().get("mcp-session-id").is_none());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert!(body["error"]["code"].is_i64(), "a JSON-RPC error: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP_ALLOWED_ORIGINS"),
        "{body}"
    );

    // A session opened by a local client cannot be driven from a foreign page either.
    let opened = post_mcp(addr, &[], INITIALIZE).await;
    assert_eq!(opened.status(), 200, "no Origin: not a browser, allowed");
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let with_session = |origin: &'static str| {
        let session = session.clone();
        async move {
            let mut headers = vec![("mcp-session-id", session.as_str())];
            if !origin.is_empty() {
                headers.push(("origin", origin));
            }
            post_mcp(
                addr,
                &headers,
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#,
            )
            .await
            .status()
        }
    };
    post_mcp(
        addr,
        &[("mcp-session-id", &session)],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(with_session("http://evil.example").await, 403);
    assert_eq!(
        with_session("null").await,
        403,
        "sandboxed pages are foreign"
    );
    assert_eq!(
        with_session("http://localhost.evil.example:8080").await,
        403
    );
    // Loopback pages (a local inspector, a dev server) may call a loopback server.
    assert_eq!(with_session("http://localhost:6274").await, 200);
    assert_eq!(with_session("http://127.0.0.1:5173").await, 200);
    assert_eq!(with_session("http://[::1]:3000").await, 200);
    assert_eq!(with_session("").await, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let added = server
        .sink
        .events()
        .iter()
        .filter(|e| e.tool == "add")
        .count();
    assert_eq!(added, 4, "only the allowed calls ran");
}

#[tokio::test]
async fn origins_allowed_by_the_builder_reach_mcp_and_nothing_else_does() {
    let server = TestServer::demo()
        .allowed_origins(["https://app.example.com"])
        .start()
        .await;
    let status = |origin: &'static str| async move {
        post_mcp(server.addr, &[("origin", origin)], INITIALIZE)
            .await
            .status()
    };
    assert_eq!(status("https://app.example.com").await, 200);
    assert_eq!(status("https://app.example.com:443").await, 200);
    assert_eq!(status("https://app.example.com:8443").await, 403);
    assert_eq!(status("http://app.example.com").await, 403);
    assert_eq!(status("https://example.com").await, 403);
}

#[tokio::test]
async fn malformed_json_on_mcp_is_a_json_rpc_parse_error() {
    let server = TestServer::demo().start().await;

    let broken = post_mcp(server.addr, &[], r#"{"jsonrpc":"2.0","id":1,"method":"#).await;
    assert_eq!(broken.status(), 400, "bad JSON is a bad request, not 415");
    let body: Value = broken.json().await.unwrap();
    assert_eq!(
        (&body["jsonrpc"], &body["id"], &body["error"]["code"]),
        (&json!("2.0"), &Value::Null, &json!(-32700)),
        "{body}"
    );

    // Valid JSON that is no JSON-RPC message: an invalid request.
    let odd = post_mcp(server.addr, &[], r#"{"hello":"world"}"#).await;
    assert_eq!(odd.status(), 400);
    let body: Value = odd.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600, "{body}");

    // The content type is still checked: a body that is not declared JSON stays a 415.
    let text = reqwest::Client::new()
        .post(format!("http://{}/mcp", server.addr))
        .header("content-type", "text/plain")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
    // And a well-formed request still works.
    assert_eq!(post_mcp(server.addr, &[], INITIALIZE).await.status(), 200);
}

#[tokio::test]
async fn the_keyless_dashboard_answers_only_to_allowed_host_names() {
    let server = TestServer::demo()
        .allowed_hosts(["mcp.example.com"])
        .start()
        .await;
    let get = |host: String, path: &'static str| async move {
        http()
            .get(format!("http://{}{path}", server.addr))
            .header("host", host)
            .send()
            .await
            .unwrap()
            .status()
    };
    let port = server.addr.port();
    // DNS rebinding: a foreign name resolving to 127.0.0.1.
    assert_eq!(get(format!("evil.example:{port}"), "/analytics").await, 403);
    assert_eq!(
        get(format!("evil.example:{port}"), "/analytics/api/overview").await,
        403
    );
    assert_eq!(get(format!("localhost:{port}"), "/analytics").await, 200);
    assert_eq!(get(format!("127.0.0.1:{port}"), "/analytics").await, 200);
    assert_eq!(get("mcp.example.com".into(), "/analytics").await, 200);

    let alone = Dashboard::new(&server.db);
    let dashboard = Serving::start(|listener, shutdown| alone.serve_on(listener, shutdown)).await;
    let addr = dashboard.addr;
    let status = |host: String| async move {
        http()
            .get(format!("http://{addr}/api/overview"))
            .header("host", host)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(status(format!("evil.example:{}", addr.port())).await, 403);
    assert_eq!(status(format!("localhost:{}", addr.port())).await, 200);
}

#[tokio::test]
async fn the_keyless_collector_answers_only_to_loopback_host_names() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::new(dir.path().join("c.db"));
    let collector =
        Serving::start(|listener, shutdown| collector.serve_on(listener, shutdown)).await;
    let addr = collector.addr;
    let evil = format!("evil.example:{}", addr.port());
    let ingest = http()
        .post(format!("http://{addr}/ingest"))
        .header("host", &evil)
        .header("content-type", "application/json")
        .body(r#"{"events":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ingest.status(), 403, "a rebinding page cannot write events");
    let page = http()
        .get(format!("http://{addr}/api/overview"))
        .header("host", &evil)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403, "nor read them");
    let local = http()
        .post(format!("http://{addr}/ingest"))
        .body(r#"{"events":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 200);
}

#[tokio::test]
async fn dashboard_sign_in_refuses_cross_origin_posts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    drop(mcp_analytics::store::SqliteStore::open(&db).unwrap());
    let dashboard = Dashboard::new(&db).api_key(Some("open sesame".into()));
    let dashboard =
        Serving::start(|listener, shutdown| dashboard.serve_on(listener, shutdown)).await;
    let addr = dashboard.addr;
    let sign_in = |headers: Vec<(&'static str, String)>| async move {
        let mut request = http()
            .post(format!("http://{addr}/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("key=open+sesame");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.unwrap().status()
    };
    assert_eq!(
        sign_in(vec![("origin", "http://evil.example".into())]).await,
        403
    );
    assert_eq!(
        sign_in(vec![("sec-fetch-site", "cross-site".into())]).await,
        403
    );
    assert_eq!(
        sign_in(vec![("referer", "http://evil.example/login".into())]).await,
        403
    );
    assert_eq!(
        sign_in(vec![
            ("origin", format!("http://{addr}")),
            ("sec-fetch-site", "same-origin".into())
        ])
        .await,
        303
    );
    assert_eq!(sign_in(vec![]).await, 303, "not from a browser");
}

#[tokio::test]
async fn test_checkout_pages_refuse_foreign_hosts_and_cross_origin_payments() {
    // The paid demo with the local test provider, on a loopback address.
    let server = TestServer::paid(|db| {
        Payments::builder()
            .database(db)
            .local_price("price_image", 500, "usd")
            .env(|var| (var == "TEST_PRICE_USAGE").then(|| "price_usage".to_owned()))
    })
    .without_dashboard()
    .start()
    .await;
    let client = server.client(None).await;
    let unpaid = call(&client, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    let url = unpaid.structured_content.as_ref().unwrap()["checkout_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let evil_host = format!("evil.example:{}", server.addr.port());

    let page = http()
        .get(&url)
        .header("host", &evil_host)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403, "DNS rebinding");
    let forged = http()
        .post(&url)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a cross-origin form post");
    let still_unpaid = call(&client, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_eq!(still_unpaid.is_error, Some(true), "nothing was paid");

    let page = http().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let paid = http()
        .post(&url)
        .header("origin", format!("http://{}", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);
    assert!(paid.text().await.unwrap().contains("complete"));
    let ran = call(&client, "generate_image", json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_ne!(ran.is_error, Some(true), "{ran:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn test_payments_do_not_start_on_a_public_address_by_accident() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("public.db");
    let payments = Payments::builder()
        .database(&db)
        .local_price("price_image", 500, "usd")
        .env(|var| (var == "TEST_PRICE_USAGE").then(|| "price_usage".to_owned()))
        .build()
        .unwrap();
    let demo = PaidDemo {
        analytics: Analytics::builder().build().unwrap(),
        payments,
        runs: Arc::new(AtomicUsize::new(0)),
    };
    let server = HttpServer::new(move || demo.clone()).without_dashboard();
    // No Stripe key and no ENVIRONMENT=development: the local test provider would hand out
    // paid tools for free to anyone reaching the address.
    let started = tokio::time::timeout(
        Duration::from_secs(10),
        server.serve("0.0.0.0:0".parse().unwrap()),
    )
    .await;
    let error = match started {
        Ok(Err(error)) => error.to_string(),
        Ok(Ok(())) => panic!("the server stopped without an error"),
        Err(_) => panic!("the server took test payments on a public address"),
    };
    assert!(
        error.contains("STRIPE_SECRET_KEY") && error.contains("ENVIRONMENT=development"),
        "{error}"
    );
}

/// The `http-demo` binary in `dir` with `env`; its address once it listens.
struct DemoProcess {
    child: Child,
    addr: SocketAddr,
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_http_demo(dir: &Path, env: &[(&str, &str)]) -> DemoProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_http-demo"))
        .current_dir(dir)
        .envs(env.iter().copied())
        .env_remove("MCP_ANALYTICS_API_KEY")
        .env_remove("MCP_ALLOWED_ORIGINS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(rest) = line.split("MCP at http://").nth(1) {
                let addr = rest.split('/').next().unwrap().to_owned();
                let _ = found.send(addr);
            }
        }
    });
    let addr = address
        .recv_timeout(Duration::from_secs(30))
        .expect("http-demo prints its address")
        .parse()
        .unwrap();
    DemoProcess { child, addr }
}

#[tokio::test]
async fn env_files_set_the_allowed_origins_and_the_dashboard_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".dev.vars"),
        "MCP_ALLOWED_ORIGINS=\"https://app.example.com, https://admin.example.com:8443\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "MCP_ANALYTICS_API_KEY=k3y-from-dotenv\n",
    )
    .unwrap();
    let db = dir.path().join("child.db");
    let server = spawn_http_demo(dir.path(), &[("MCP_ANALYTICS_DB", db.to_str().unwrap())]);

    let status = |origin: &'static str| async move {
        post_mcp(server.addr, &[("origin", origin)], INITIALIZE)
            .await
            .status()
    };
    assert_eq!(status("https://app.example.com").await, 200);
    assert_eq!(status("https://admin.example.com:8443").await, 200);
    assert_eq!(status("https://evil.example").await, 403);

    let page = http()
        .get(format!("http://{}/analytics", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 401, "the key in .env protects the dashboard");
    let api = http()
        .get(format!("http://{}/analytics/api/overview", server.addr))
        .bearer_auth("k3y-from-dotenv")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
}
