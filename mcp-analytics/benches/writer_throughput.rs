//! How fast the writer stores events: batches of 4,096 sanitized events written through the
//! store's `Sink` (as the writer thread does) into a SQLite file: WAL, one transaction per batch,
//! the per-minute rollup in it, hourly rollups at most once a second — on one core.
//! `append_4096_sessionless_events` are calls of 200 sessionless callers (MCP 2026-07-28), a
//! quarter of them in W3C traces, whose sessions the store assigns as it writes them.
//!
//! `cargo bench -p mcp-analytics --bench writer_throughput`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mcp_analytics::{Sink, Status, ToolCallEvent, Transport, store::SqliteStore};

const BATCH: usize = 4096;

/// `sessionless`: 200 callers' derived keys instead of protocol sessions, every 4th call traced.
fn events(start: usize, sessionless: bool) -> Vec<ToolCallEvent> {
    (start..start + BATCH)
        .map(|i| ToolCallEvent {
            id: format!("0190a5c2-0000-7000-8000-{i:012x}"),
            ts_ms: 1_764_000_000_000 + (i as i64) * 3,
            server_name: "bench".into(),
            server_version: "1.0.0".into(),
            tool: format!("tool_{}", i % 20),
            user_id: Some(format!("user_{}", i % 1000)),
            user_email: None,
            user_name: None,
            session_id: Some(if sessionless {
                format!("d-{:016x}", i % 200)
            } else {
                format!("c-{:016x}", i / 50)
            }),
            client_name: Some("claude-code".into()),
            client_version: Some("2.1.0".into()),
            protocol_version: Some("2025-11-25".into()),
            transport: Transport::Http,
            request_id: Some(i.to_string()),
            duration_us: 200 + (i as u64 * 7919) % 50_000,
            status: if i % 20 == 0 {
                Status::ToolError
            } else {
                Status::Ok
            },
            error_type: (i % 20 == 0).then(|| "tool_error".into()),
            error_message: (i % 20 == 0).then(|| "upstream timed out".into()),
            params: Some(r#"{"city":"Berlin","units":"metric","days":3}"#.into()),
            result: Some(
                r#"{"content":[{"type":"text","text":"Sunny, 21°C"}],"isError":false}"#.into(),
            ),
            ts_ns: None,
            traceparent: (sessionless && i % 4 == 0)
                .then(|| format!("00-{:032x}-{:016x}-01", 1 + i / 400, 1 + i)),
            tracestate: None,
        })
        .collect()
}

fn writer_throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("bench.db")).unwrap();
    let mut next = 0;
    let mut group = c.benchmark_group("sqlite_store");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    for (name, sessionless) in [
        ("append_4096_events", false),
        ("append_4096_sessionless_events", true),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    next += BATCH;
                    events(next, sessionless)
                },
                |batch| Sink::write(&mut store, batch).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, writer_throughput);
criterion_main!(benches);
