//! PostgreSQL, on a throwaway cluster the benchmark starts (`mcp_analytics_tests::postgres::
//! Cluster`), mirroring `mcp-analytics`'s SQLite benches:
//!
//! - `paid_call_by_database`: what the payment gate adds to an entitled call on PostgreSQL and
//!   on SQLite (a metered subscription, entitled from memory; and a credit, reserved and used in
//!   the database), through the generated `ServerHandler::call_tool` as in `paid_call`. The
//!   purchases are made once, before timing, through the local test provider's checkout page.
//! - `postgres_store/append_4096_events`: batches written as the writer thread writes them
//!   (binary `COPY`, rollups upserted), as in `writer_throughput`.
//! - `dashboard_1m_calls_postgres`: the dashboard's overview over 1,000,000 stored calls
//!   (7 days, 20 tools, 1,000 users), as in `dashboard_summary`.
//!
//! `cargo bench -p mcp-analytics-tests --bench postgres`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mcp_analytics::{
    Analytics, Database, Payments, Sink, Status, ToolCallEvent, Transport, mcp_server, paid,
    rmcp::{
        RoleServer, ServerHandler, ServiceExt,
        model::{
            CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig,
            Implementation, NumberOrString,
        },
        service::{Peer, RequestContext},
    },
    serde_json,
    store::PgStore,
    tool,
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
    let cluster = Cluster::shared();
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

/// A new database on the bench's cluster, as analytics storage.
fn pg_store(name: &str) -> PgStore {
    let Database::Postgres(url) = Database::from(Cluster::shared().create_database(name).as_str())
    else {
        unreachable!("the cluster hands out postgres:// URLs")
    };
    PgStore::open(&url).unwrap()
}

/// Event `index` of a stream spread evenly over `span_ms` up to `end_ms`.
fn event(index: usize, total: usize, end_ms: i64, span_ms: i64) -> ToolCallEvent {
    let random = (index as u64 ^ 0x2545_f491_4f6c_dd1d).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let failed = random.is_multiple_of(20);
    ToolCallEvent {
        id: format!("{index:032x}"),
        ts_ms: end_ms - span_ms + (index as i64 * span_ms / total.max(1) as i64),
        server_name: "bench".into(),
        server_version: "1".into(),
        tool: format!("tool_{}", random % 20),
        user_id: Some(format!("user_{}", (random >> 8) % 1000)),
        user_email: None,
        user_name: None,
        session_id: Some(format!("s-{}", index / 40)),
        client_name: Some("client".into()),
        client_version: Some("1".into()),
        protocol_version: Some("2025-11-25".into()),
        transport: Transport::Http,
        request_id: Some(index.to_string()),
        duration_us: 100 + (random >> 20) % 50_000,
        status: if failed {
            Status::ToolError
        } else {
            Status::Ok
        },
        error_type: failed.then(|| "tool_error".into()),
        error_message: failed.then(|| "failed".into()),
        params: Some(r#"{"city":"Berlin","units":"metric","days":3}"#.into()),
        result: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }
}

const BATCH: usize = 4096;

fn writer_throughput(c: &mut Criterion) {
    let mut store = pg_store("writer_throughput");
    let now_ms = now_ms();
    let mut next = 0;
    let mut group = c.benchmark_group("postgres_store");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    group.bench_function("append_4096_events", |b| {
        b.iter_batched_ref(
            || {
                next += BATCH;
                // A day of traffic, as a busy server's writer meets it.
                (next..next + BATCH)
                    .map(|i| event(i, 10_000_000, now_ms, 86_400_000))
                    .collect::<Vec<_>>()
            },
            |batch| Sink::write(&mut store, batch).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

const CALLS: usize = 1_000_000;
const WEEK_MS: i64 = 7 * 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn dashboard_summary(c: &mut Criterion) {
    let mut store = pg_store("dashboard_1m_calls");
    let now_ms = now_ms();
    let mut batch = Vec::with_capacity(BATCH);
    for index in 0..CALLS {
        batch.push(event(index, CALLS, now_ms, WEEK_MS));
        if batch.len() == BATCH {
            store.append(&batch).unwrap();
            batch.clear();
        }
    }
    store.append(&batch).unwrap();
    let week = store.overview(now_ms - WEEK_MS, 3_600_000, None).unwrap();
    assert_eq!(week.report.calls, CALLS as u64, "every call is stored");
    let mut group = c.benchmark_group("dashboard_1m_calls_postgres");
    group.sample_size(10);
    for (name, range_ms, bucket_ms) in [
        ("last_24h", 86_400_000, 900_000),
        ("last_7d", WEEK_MS, 3_600_000),
    ] {
        let since_ms = now_ms - range_ms;
        group.bench_function(format!("{name}/full_overview"), |b| {
            b.iter(|| store.overview(since_ms, bucket_ms, None).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, paid_call, writer_throughput, dashboard_summary);
criterion_main!(benches);
