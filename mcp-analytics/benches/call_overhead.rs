//! What analytics adds to a tool call: the same trivial tool called through the generated
//! `ServerHandler::call_tool` with analytics disabled (straight to the tool) and enabled
//! (capture, classify, queue; sanitizing and storage happen on the writer thread, which runs
//! concurrently on the other core). Also the whole pipeline's throughput into SQLite.
//!
//! `cargo bench -p mcp-analytics --bench call_overhead`

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcp_analytics::{
    Analytics, mcp_server,
    rmcp::{
        RoleServer, ServerHandler, ServiceExt,
        model::{
            CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, NumberOrString,
        },
        service::{Peer, RequestContext},
    },
    serde_json, tool,
};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

struct Bench {
    analytics: Analytics,
}

#[mcp_server(name = "bench", version = "1.0.0", analytics = self.analytics)]
impl Bench {
    #[tool]
    async fn add(&self, args: AddArgs) -> String {
        (args.a + args.b).to_string()
    }
}

/// A real server peer (legacy handshake over a duplex), so contexts look like stdio ones.
async fn peer() -> Peer<RoleServer> {
    let (server_io, client_io) = tokio::io::duplex(4096);
    let server = tokio::spawn(async move {
        Bench {
            analytics: Analytics::disabled(),
        }
        .serve(server_io)
        .await
        .expect("server")
    });
    let client_info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("bench", "1"),
    );
    let client = client_info.serve(client_io).await.expect("client");
    std::mem::forget(client);
    let running = server.await.expect("join");
    let peer = running.peer().clone();
    std::mem::forget(running);
    peer
}

/// Calls per timed chunk; the queue (65,536) never fills, so every call is really recorded.
const CHUNK: u64 = 8192;

fn call_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let peer = runtime.block_on(peer());
    let arguments = serde_json::json!({"a": 2, "b": 3})
        .as_object()
        .unwrap()
        .clone();
    let idle_writer = || {
        Analytics::builder()
            .write_interval(Duration::from_secs(3600))
            .build()
            .unwrap()
    };
    let mut group = c.benchmark_group("call_tool");
    // (name, analytics, calls per timed chunk): with an hour-long write interval and chunks
    // below the writer's wake-up mark (4,096 queued) the writer sleeps while calls are timed and
    // catches up between chunks: the call path alone. `busy_writer` lets the writer run on the
    // other core meanwhile (the worst case: back-to-back calls and a writer that never rests).
    for (name, analytics, chunk) in [
        ("analytics_disabled", Analytics::disabled(), CHUNK),
        ("analytics_enabled", idle_writer(), 2048),
        (
            "analytics_enabled_busy_writer",
            Analytics::builder().build().unwrap(),
            CHUNK,
        ),
    ] {
        let server = Bench {
            analytics: analytics.clone(),
        };
        let mut id = 0;
        let mut one_call = || {
            id += 1;
            let context = RequestContext::new(NumberOrString::Number(id), peer.clone());
            let request = CallToolRequestParams::new("add").with_arguments(arguments.clone());
            runtime
                .block_on(server.call_tool(request, context))
                .unwrap()
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let calls = left.min(chunk);
                    let started = Instant::now();
                    for _ in 0..calls {
                        black_box(one_call());
                    }
                    timed += started.elapsed();
                    // Not timed: let the writer catch up so the queue never overflows.
                    runtime.block_on(analytics.flush());
                    left -= calls;
                }
                timed
            })
        });
        let stats = analytics.stats();
        assert_eq!(
            stats.dropped, 0,
            "{name}: the benchmark must not overflow the queue"
        );
    }
    group.finish();
}

/// The writer alone on one core: 2,048 calls are queued while it sleeps (not timed), then the
/// time to sanitize them, write them to SQLite (rows and rollup) and flush is measured; and the
/// whole pipeline with calls and writer running at once.
fn pipeline_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let peer = runtime.block_on(peer());
    let arguments = serde_json::json!({"a": 2, "b": 3})
        .as_object()
        .unwrap()
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(20);
    let mut id = 0;
    let mut calls = |server: &Bench, count: u64| {
        for _ in 0..count {
            id += 1;
            let context = RequestContext::new(NumberOrString::Number(id), peer.clone());
            let request = CallToolRequestParams::new("add").with_arguments(arguments.clone());
            black_box(
                runtime
                    .block_on(server.call_tool(request, context))
                    .unwrap(),
            );
        }
    };

    let sleeping = Analytics::builder()
        .database(dir.path().join("drain.db"))
        .write_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let server = Bench {
        analytics: sleeping.clone(),
    };
    group.throughput(Throughput::Elements(2048));
    group.bench_function("writer_sqlite_2048", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                calls(&server, 2048);
                let started = Instant::now();
                runtime.block_on(sleeping.flush());
                timed += started.elapsed();
            }
            timed
        })
    });

    let analytics = Analytics::builder()
        .database(dir.path().join("p.db"))
        .build()
        .unwrap();
    let server = Bench {
        analytics: analytics.clone(),
    };
    group.throughput(Throughput::Elements(CHUNK));
    group.bench_function("calls_to_sqlite_8192", |b| {
        b.iter(|| {
            calls(&server, CHUNK);
            runtime.block_on(analytics.flush());
        })
    });
    group.finish();
    assert_eq!(analytics.stats().dropped + sleeping.stats().dropped, 0);
}

criterion_group!(benches, call_overhead, pipeline_throughput);
criterion_main!(benches);
