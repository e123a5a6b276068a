//! What analytics adds to a tool call: the same trivial tool called through the generated
//! `ServerHandler::call_tool` with analytics disabled (straight to the tool) and enabled
//! (capture, classify, queue; sanitizing and storage happen on the writer thread).
//!
//! `cargo bench -p mcp-analytics --bench call_overhead`

use criterion::{Criterion, criterion_group, criterion_main};
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
    let mut group = c.benchmark_group("call_tool");
    for (name, analytics) in [
        ("analytics_disabled", Analytics::disabled()),
        ("analytics_enabled", Analytics::builder().build().unwrap()),
    ] {
        let server = Bench {
            analytics: analytics.clone(),
        };
        let mut id = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                id += 1;
                let context = RequestContext::new(NumberOrString::Number(id), peer.clone());
                let request = CallToolRequestParams::new("add").with_arguments(arguments.clone());
                runtime
                    .block_on(server.call_tool(request, context))
                    .unwrap()
            })
        });
        runtime.block_on(analytics.flush());
        let stats = analytics.stats();
        if analytics.is_enabled() {
            eprintln!(
                "{name}: recorded {} events, dropped {} (queue full)",
                stats.recorded, stats.dropped
            );
        }
    }
    group.finish();
}

criterion_group!(benches, call_overhead);
criterion_main!(benches);
