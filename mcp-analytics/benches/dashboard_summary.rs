//! The dashboard's overview over 1,000,000 stored calls (7 days, 20 tools, 1,000 users, 8
//! client name, version and protocol version combinations):
//! `full_overview` is exactly what `api/overview` runs (report, chart series, overall p95,
//! distinct users); `rollup_views` is the chart and tool-table part alone, as separate queries.
//! `startup_1m_calls` is what a writer's start adds on that database: the rollup check when the
//! last run stopped cleanly, after a `kill -9` (one hour's hourly rollups lost and rebuilt from
//! its ~6,000 rows), and the one-time check of every hour after upgrading an older database.
//! Half the calls come from sessionless callers (MCP 2026-07-28) whose sessions the store
//! assigns; `session_timeline` is the session drill-down of one of them.
//!
//! `cargo bench -p mcp-analytics --bench dashboard_summary`

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mcp_analytics::{Status, ToolCallEvent, Transport, store::SqliteStore};

const CALLS: usize = 1_000_000;
const WEEK_MS: i64 = 7 * 86_400_000;

fn seed(store: &mut SqliteStore, now_ms: i64) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut batch = Vec::with_capacity(4096);
    for index in 0..CALLS {
        let random = next();
        let failed = random % 20 == 0;
        batch.push(ToolCallEvent {
            id: format!("{index:032x}"),
            ts_ms: now_ms - WEEK_MS + (index as i64 * WEEK_MS / CALLS as i64),
            server_name: "bench".into(),
            server_version: "1".into(),
            tool: format!("tool_{}", random % 20),
            user_id: Some(format!("user_{}", (random >> 8) % 1000)),
            user_email: None,
            user_name: None,
            session_id: Some(if index % 2 == 0 {
                format!("s-{}", index / 40)
            } else {
                format!("d-{:016x}", (random >> 8) % 1000)
            }),
            client_name: Some(["claude-code", "cursor"][(random >> 40) as usize % 2].into()),
            client_version: Some(["1.2.0", "1.3.0"][(random >> 42) as usize % 2].into()),
            protocol_version: Some(
                ["2025-11-25", "2026-07-28"][(random >> 44) as usize % 2].into(),
            ),
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
            params: Some(r#"{"q":"x"}"#.into()),
            result: None,
            ts_ns: None,
            traceparent: None,
            tracestate: None,
        });
        if batch.len() == 4096 {
            store.append(&batch).unwrap();
            batch.clear();
        }
    }
    store.append(&batch).unwrap();
}

fn dashboard_summary(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("million.db")).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    seed(&mut store, now_ms);
    let mut group = c.benchmark_group("dashboard_1m_calls");
    group.sample_size(10);
    for (name, range_ms, bucket_ms) in [
        ("last_24h", 86_400_000, 900_000),
        ("last_7d", WEEK_MS, 3_600_000),
    ] {
        let since_ms = now_ms - range_ms;
        group.bench_function(format!("{name}/rollup_views"), |b| {
            b.iter(|| {
                let series = store.series(since_ms, bucket_ms, None).unwrap();
                let tools = store.tool_summary(since_ms).unwrap();
                let p95 = store.latency(since_ms).unwrap().quantile(0.95);
                (series, tools, p95)
            })
        });
        group.bench_function(format!("{name}/full_overview"), |b| {
            b.iter(|| store.overview(since_ms, bucket_ms, None).unwrap())
        });
    }
    let session: String = store
        .connection()
        .query_row(
            "SELECT session_id FROM tool_calls WHERE session_id LIKE 'd-%' ORDER BY ts_ms DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    group.bench_function("session_timeline", |b| {
        b.iter(|| store.session(&session, 200).unwrap())
    });
    group.finish();

    let path = dir.path().join("million.db");
    let last_hour = now_ms - now_ms % 3_600_000 - 3_600_000;
    // Breaks the database as the benchmark needs it, beside the store.
    let other = rusqlite::Connection::open(&path).unwrap();
    let mut group = c.benchmark_group("startup_1m_calls");
    group.sample_size(10);
    group.bench_function("open_after_a_clean_stop", |b| {
        b.iter(|| {
            let mut store = SqliteStore::open(&path).unwrap();
            assert_eq!(store.repair_rollups().unwrap(), 0);
        })
    });
    group.bench_function("repair_after_kill_9", |b| {
        b.iter_batched(
            || {
                other
                    .execute_batch(&format!(
                        "DELETE FROM tool_calls_1h WHERE hour_ms = {last_hour};
                         DELETE FROM user_calls_1h WHERE hour_ms = {last_hour};
                         INSERT INTO rollup_dirty (hour_ms) VALUES ({last_hour});"
                    ))
                    .unwrap()
            },
            |()| assert_eq!(store.repair_rollups().unwrap(), 1),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("first_check_after_upgrade", |b| {
        b.iter_batched(
            || {
                other
                    .execute_batch(
                        "INSERT INTO rollup_dirty (hour_ms) SELECT DISTINCT ts_ms - ts_ms % 3600000 FROM tool_calls",
                    )
                    .unwrap()
            },
            |()| assert_eq!(store.repair_rollups().unwrap(), 0),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, dashboard_summary);
criterion_main!(benches);
