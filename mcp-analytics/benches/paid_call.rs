//! What the payment gate adds to a call by an entitled user: the same trivial tool, free and
//! behind `#[paid]` (metered subscription: entitlement from memory, one meter event per call,
//! committed to the outbox before the call returns or queued for the sender thread), through the
//! generated `ServerHandler::call_tool`. No Stripe request is made on this
//! path (Stripe's own paid tool makes 2–4 sequential round trips per call). Uses the local test
//! provider, so the purchase is made once, before timing, through its checkout page.
//!
//! `cargo bench -p mcp-analytics --bench paid_call`

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_analytics::{
    Analytics, Payments, mcp_server, paid,
    payments::MeterDurability,
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
    async fn paid_add(&self, args: AddArgs) -> String {
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

/// Buys the subscription through the local provider's checkout page (served on loopback).
async fn buy(server: &Bench, peer: &Peer<RoleServer>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    server.payments.set_public_url(&format!("http://{addr}"));
    let router = server.payments.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let arguments = serde_json::json!({"a": 1, "b": 2})
        .as_object()
        .unwrap()
        .clone();
    let context = RequestContext::new(NumberOrString::Number(0), peer.clone());
    let request = CallToolRequestParams::new("paid_add").with_arguments(arguments);
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
}

fn paid_call(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("paid_call");
    for (label, recorded) in [("analytics_disabled", false), ("analytics_enabled", true)] {
        for durability in [MeterDurability::Queued, MeterDurability::Committed] {
            let analytics = match recorded {
                false => Analytics::disabled(),
                true => Analytics::builder()
                    .write_interval(Duration::from_millis(50))
                    .build()
                    .unwrap(),
            };
            let name = format!("{durability:?}").to_lowercase();
            let database = dir.path().join(format!("{label}-{name}.db"));
            let payments = Payments::builder()
                .database(&database)
                .meter_durability(durability)
                .build()
                .unwrap();
            let server = Bench {
                analytics,
                payments,
            };
            let peer = runtime.block_on(peer(server.clone()));
            runtime.block_on(buy(&server, &peer));
            let arguments = serde_json::json!({"a": 2, "b": 3})
                .as_object()
                .unwrap()
                .clone();
            // The free tool once per analytics setting; the paid one per durability.
            let paid = ("paid_add", format!("paid_add/{label}/{name}"));
            let cases = match durability {
                MeterDurability::Queued => vec![("add", format!("add/{label}")), paid],
                MeterDurability::Committed => vec![paid],
            };
            for (tool, id_label) in cases {
                let mut id = 1;
                group.bench_function(id_label, |b| {
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
                        assert_ne!(result.is_error, Some(true), "{result:?}");
                        black_box(response)
                    })
                });
                runtime.block_on(server.analytics.flush());
                runtime.block_on(server.payments.flush());
            }
            // Every paid call left exactly one meter event in the outbox.
            let connection = rusqlite::Connection::open(&database).unwrap();
            let events: i64 = connection
                .query_row("SELECT count(*) FROM meter_outbox", [], |row| row.get(0))
                .unwrap();
            assert!(events > 0, "no meter events were recorded");
        }
    }
    group.finish();
}

criterion_group!(benches, paid_call);
criterion_main!(benches);
