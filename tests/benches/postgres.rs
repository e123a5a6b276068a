//! PostgreSQL against SQLite, on a throwaway cluster the benchmark starts
//! (`mcp_analytics_tests::postgres::Cluster`): what the payment gate adds to an entitled call
//! (a metered subscription, entitled from memory; and a credit, reserved and used in the
//! database), through the generated `ServerHandler::call_tool` as in `mcp-analytics`'s
//! `paid_call` bench. The purchase is made once, before timing, through the local test
//! provider's checkout page.
//!
//! `cargo bench -p mcp-analytics-tests --bench postgres`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_analytics::{
    Analytics, Database, Payments, mcp_server, paid,
    rmcp::{
        RoleServer, ServerHandler, ServiceExt,
        model::{
            CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig,
            Implementation, NumberOrString,
        },
        service::{Peer, RequestContext},
    },
    serde_json, tool,
};
use mcp_analytics_tests::postgres::Cluster;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

#[derive(Clone)]
struct Bench {
    analytics: Analytics,
    payments: Payments,
}

#[mcp_server(name = "bench", version = "1.0.0", analytics = self.analytics, payments = self.payments)]
impl Bench {
    #[tool]
    async fn add(&self, args: AddArgs) -> String {
        (args.a + args.b).to_string()
    }

    #[tool]
    #[paid(checkout = { mode = "subscription", success_url = "https://example.com/ok",
                        line_items = [{ price = "price_usage" }] },
           meter = "api_call")]
    async fn subscribed_add(&self, args: AddArgs) -> String {
        (args.a + args.b).to_string()
    }

    #[tool]
    #[paid(checkout = { mode = "payment", success_url = "https://example.com/ok",
                        line_items = [{ price = "price_pack", quantity = 1000000 }] })]
    async fn credit_add(&self, args: AddArgs) -> String {
        (args.a + args.b).to_string()
    }
}

async fn peer(server: Bench) -> Peer<RoleServer> {
    let (server_io, client_io) = tokio::io::duplex(4096);
    let running = tokio::spawn(async move { server.serve(server_io).await.expect("server") });
    let client_info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("bench", "1"),
    );
    let client = client_info.serve(client_io).await.expect("client");
    std::mem::forget(client);
    let running = running.await.expect("join");
    let peer = running.peer().clone();
    std::mem::forget(running);
    peer
}

/// Buys `tool` through the local provider's checkout page (served on loopback).
async fn buy(server: &Bench, peer: &Peer<RoleServer>, tool: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    server.payments.set_public_url(&format!("http://{addr}"));
    let router = server.payments.router();
    let pages = tokio::spawn(async move { axum::serve(listener, router).await });
    let arguments = serde_json::json!({"a": 1, "b": 2})
        .as_object()
        .unwrap()
        .clone();
    let context = RequestContext::new(NumberOrString::Number(0), peer.clone());
    let request = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
    let Ok(CallToolResponse::Complete(result)) = server.call_tool(request, context).await else {
        panic!("expected a result")
    };
    let structured = result.structured_content.expect("payment_required");
    let session = structured["checkout_session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /pay/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    pages.abort();
}

fn paid_call(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let backends: [(&str, Database); 2] = [
        ("sqlite", dir.path().join("bench.db").into()),
        (
            "postgres",
            cluster.create_database("paid_call").as_str().into(),
        ),
    ];
    let mut group = c.benchmark_group("paid_call_by_database");
    for (backend, database) in backends {
        let payments = runtime.block_on(async {
            Payments::builder()
                .database(database.clone())
                .build()
                .unwrap()
        });
        let server = Bench {
            analytics: Analytics::disabled(),
            payments,
        };
        let peer = runtime.block_on(peer(server.clone()));
        for tool in ["subscribed_add", "credit_add"] {
            runtime.block_on(buy(&server, &peer, tool));
        }
        let arguments = serde_json::json!({"a": 2, "b": 3})
            .as_object()
            .unwrap()
            .clone();
        for tool in ["add", "subscribed_add", "credit_add"] {
            let mut id = 1;
            group.bench_function(format!("{tool}/{backend}"), |b| {
                b.iter(|| {
                    id += 1;
                    let context = RequestContext::new(NumberOrString::Number(id), peer.clone());
                    let request =
                        CallToolRequestParams::new(tool).with_arguments(arguments.clone());
                    let response = runtime
                        .block_on(server.call_tool(request, context))
                        .unwrap();
                    let CallToolResponse::Complete(result) = &response else {
                        panic!()
                    };
                    assert_ne!(result.is_error, Some(true), "{tool}/{backend}: {result:?}");
                    black_box(response)
                })
            });
        }
        runtime.block_on(server.payments.flush());
    }
    group.finish();
}

criterion_group!(benches, paid_call);
criterion_main!(benches);
