//! The analytics on PostgreSQL, on a throwaway cluster the bench starts (as the tests do;
//! `fsync` and `synchronous_commit` off). `postgres_writer/batch_4096` stores batches of 4,096
//! events of a busy hour (50,000 calls a second) through the store's `Sink` as the writer
//! thread does: binary `COPY`, insert once per id, the per-minute and hourly rollups in the
//! same transaction. `postgres_dashboard_1m_calls` is the dashboard's overview over 1,000,000
//! stored calls (7 days, 20 tools, 1,000 users), exactly what `api/overview` runs.
//!
//! `cargo bench -p mcp-analytics --features postgres --bench postgres_analytics`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mcp_analytics::{Database, Sink, Status, ToolCallEvent, Transport, store::PgStore};

#[path = "../src/postgres/test_cluster.rs"]
#[allow(dead_code)]
mod cluster;

const BATCH: usize = 4096;
const CALLS: usize = 1_000_000;
const WEEK_MS: i64 = 7 * 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Event `index` of a week of calls ending at `now_ms`.
fn event(index: usize, random: u64, now_ms: i64) -> ToolCallEvent {
    call(
        index,
        random,
        now_ms - WEEK_MS + (index as i64 * WEEK_MS / CALLS as i64),
    )
}

/// Event `index` of a busy hour: 50,000 calls a second, as the writer would see them.
fn live_event(index: usize, random: u64, now_ms: i64) -> ToolCallEvent {
    call(index, random, now_ms - 3_600_000 + index as i64 / 50)
}

fn call(index: usize, random: u64, ts_ms: i64) -> ToolCallEvent {
    let failed = random.is_multiple_of(20);
    ToolCallEvent {
        id: format!("0190a5c2-0000-7000-8000-{index:012x}"),
        ts_ms,
        server_name: "bench".into(),
        server_version: "1.0.0".into(),
        tool: format!("tool_{}", random % 20),
        user_id: Some(format!("user_{}", (random >> 8) % 1000)),
        user_email: None,
        user_name: None,
        session_id: Some(format!("c-{:016x}", index / 40)),
        client_name: Some("claude-code".into()),
        client_version: Some("2.1.0".into()),
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
        error_message: failed.then(|| "upstream timed out".into()),
        params: Some(r#"{"city":"Berlin","units":"metric","days":3}"#.into()),
        result: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }
}

fn random_sequence() -> impl FnMut() -> u64 {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

fn open(name: &str) -> PgStore {
    let Database::Postgres(url) = Database::from(cluster::Cluster::shared().create_database(name))
    else {
        unreachable!("a postgres URL")
    };
    PgStore::open(&url).unwrap()
}

fn postgres_analytics(c: &mut Criterion) {
    let now_ms = now_ms();
    let mut group = c.benchmark_group("postgres_writer");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    let mut store = open("bench_writer");
    let mut next = random_sequence();
    let mut start = 0;
    group.bench_function("batch_4096", |b| {
        b.iter_batched(
            || {
                let batch: Vec<ToolCallEvent> = (start..start + BATCH)
                    .map(|index| live_event(index, next(), now_ms))
                    .collect();
                start += BATCH;
                batch
            },
            |batch| Sink::write(&mut store, &batch).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut store = open("bench_million");
    let mut next = random_sequence();
    let seeding = std::time::Instant::now();
    for first in (0..CALLS).step_by(BATCH) {
        let batch: Vec<ToolCallEvent> = (first..(first + BATCH).min(CALLS))
            .map(|index| event(index, next(), now_ms))
            .collect();
        store.append(&batch).unwrap();
    }
    let elapsed = seeding.elapsed();
    eprintln!(
        "seeded {CALLS} calls in {elapsed:.1?} ({:.0} events/s)",
        CALLS as f64 / elapsed.as_secs_f64()
    );
    let mut group = c.benchmark_group("postgres_dashboard_1m_calls");
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

criterion_group!(benches, postgres_analytics);
criterion_main!(benches);
