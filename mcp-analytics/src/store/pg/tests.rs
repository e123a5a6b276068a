//! The PostgreSQL store against a throwaway cluster: the same answers as SQLite for the same
//! events, a batch delivered twice counted once, and two writers at once losing nothing.

use super::PgStore;
use crate::{
    Database, Method, RequestEvent, Sink, Status, ToolCallEvent, Transport,
    catalog::ToolCatalog,
    postgres::test_cluster::Cluster,
    store::{
        LatencyHistogram, OTHER_CLIENTS, OTHER_TARGETS, OTHER_UNKNOWN_TOOLS, SqliteStore,
        TARGETS_PER_HOUR, request_tests::requests, source::Source,
    },
};

const HOUR_MS: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A fresh database of the shared test cluster, opened.
fn open(name: &str) -> PgStore {
    let Database::Postgres(url) = Database::from(Cluster::shared().create_database(name)) else {
        unreachable!("a postgres URL")
    };
    PgStore::open(&url).expect("the test cluster's database opens")
}

/// `count` varied events from `start_ms` on, ids prefixed by `prefix`: 2 servers, 6 tools, every
/// status, 40 users (some with details), 25 sessions, 400 distinct unknown tool names, and
/// clients of 2 names or none, 4 versions (one missing) and 2 protocol versions.
fn events(prefix: &str, count: usize, start_ms: i64) -> Vec<ToolCallEvent> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d ^ prefix.len() as u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|index| {
            let random = next();
            let status = Status::ALL[(random % 23) as usize % Status::ALL.len()];
            let tool = if status == Status::UnknownTool {
                format!("missing_{}", random % 400)
            } else {
                format!("tool_{}", random % 6)
            };
            let user = (random % 5 != 0).then(|| format!("user-{}", (random >> 8) % 40));
            ToolCallEvent {
                id: format!("{prefix}-{index:06}"),
                ts_ms: start_ms + (index as i64 * 7_919) % (2 * HOUR_MS),
                server_name: format!("server-{}", (random >> 16) % 2),
                server_version: "1.0.0".into(),
                tool,
                user_email: user
                    .as_ref()
                    .filter(|_| random % 3 == 0)
                    .map(|user| format!("{user}@example.com")),
                user_name: None,
                user_id: user,
                session_id: (random % 7 != 0).then(|| format!("session-{}", (random >> 24) % 25)),
                client_name: ((random >> 40) % 3 != 0)
                    .then(|| ["client", "inspector"][(random >> 42) as usize % 2].to_owned()),
                client_version: (random % 4 != 0).then(|| format!("1.{}", (random >> 44) % 3)),
                protocol_version: Some(
                    ["2025-06-18", "2026-07-28"][(random >> 48) as usize % 2].into(),
                ),
                transport: Transport::Http,
                request_id: Some(index.to_string()),
                duration_us: (random >> 32) % 2_000_000,
                status,
                error_type: status
                    .is_error()
                    .then(|| ["timeout", "bad_input", ""][(random % 3) as usize].to_owned())
                    .filter(|kind| !kind.is_empty()),
                error_message: status.is_error().then(|| "it failed".to_owned()),
                params: Some(r#"{"city":"Paris"}"#.into()),
                result: None,
                ts_ns: None,
                traceparent: None,
                tracestate: None,
            }
        })
        .collect()
}

/// Checks that every rollup of `store` adds up to its raw rows.
fn assert_rollups_equal_rows(store: &PgStore) {
    let (rows, minutes, quarters, hours, users, raw_users) = store.run(async {
        let one = |sql: &'static str| async move {
            store
                .client
                .query_one(sql, &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        };
        (
            one("SELECT count(*) FROM tool_calls").await,
            one("SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) FROM tool_calls_1m").await,
            one("SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) FROM tool_calls_15m").await,
            one("SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) FROM tool_calls_1h").await,
            one("SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) FROM user_calls_1h").await,
            one("SELECT count(*) FROM tool_calls WHERE user_id IS NOT NULL").await,
        )
    });
    assert_eq!(
        (minutes, quarters, hours, users),
        (rows, rows, rows, raw_users)
    );
    let (loops, sessioned) = store.run(async {
        let one = |sql: &'static str| async move {
            store
                .client
                .query_one(sql, &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        };
        (
            one("SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) FROM tool_loops_1m").await,
            one("SELECT count(*) FROM tool_calls WHERE session_id IS NOT NULL").await,
        )
    });
    assert_eq!(loops, sessioned);
    let clients = store.run(async {
        store
            .client
            .query_one(
                "SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) FROM client_calls_1h",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    });
    assert_eq!(clients, rows);
    let (requests, request_minutes, request_hours) = store.run(async {
        let one = |sql: &'static str| async move {
            store
                .client
                .query_one(sql, &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        };
        (
            one("SELECT count(*) FROM requests").await,
            one("SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) FROM requests_1m").await,
            one("SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) FROM requests_1h").await,
        )
    });
    assert_eq!((request_minutes, request_hours), (requests, requests));
    // Every histogram counts its row's calls.
    let histograms = store.run(async {
        store
            .client
            .query(
                "SELECT calls, latency_hist FROM tool_calls_1m UNION ALL SELECT calls, latency_hist FROM tool_calls_15m UNION ALL SELECT calls, latency_hist FROM tool_calls_1h UNION ALL SELECT calls, latency_hist FROM client_calls_1h UNION ALL SELECT calls, latency_hist FROM requests_1m UNION ALL SELECT calls, latency_hist FROM requests_1h",
                &[],
            )
            .await
            .unwrap()
    });
    for row in histograms {
        let histogram = LatencyHistogram::decode(row.get(1)).unwrap();
        assert_eq!(histogram.count(), row.get::<_, i64>(0) as u64);
    }
}

#[test]
fn the_same_events_give_the_same_report_overview_and_views_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteStore::open(dir.path().join("a.db")).unwrap();
    let mut postgres = open("same_answers");
    let start_ms = now_ms() - 3 * HOUR_MS;
    let tools: Vec<rmcp::model::Tool> = ["search", "fetch"]
        .into_iter()
        .map(|name| {
            serde_json::from_value(serde_json::json!({
                "name": name,
                "description": "A tool.",
                "inputSchema": {"type": "object"},
            }))
            .unwrap()
        })
        .collect();
    for version in ["1.0.0", "1.1.0"] {
        let catalog = ToolCatalog::measure("server-1", version, &tools);
        sqlite.write_catalog(&catalog).unwrap();
        postgres.write_catalog(&catalog).unwrap();
    }
    let events = events("same", 8_000, start_ms);
    for batch in events.chunks(700) {
        assert_eq!(sqlite.append(batch).unwrap(), batch.len());
        assert_eq!(postgres.append(batch).unwrap(), batch.len());
    }
    // Ids are unique across both tables (one generator makes them).
    for batch in requests("same-request", 3_000, start_ms).chunks(700) {
        assert_eq!(sqlite.append_requests(batch).unwrap(), batch.len());
        assert_eq!(postgres.append_requests(batch).unwrap(), batch.len());
    }
    for since_ms in [0, start_ms + HOUR_MS / 2, now_ms() - HOUR_MS / 2] {
        for tool in [None, Some("tool_1")] {
            assert_eq!(
                postgres.report(since_ms, tool).unwrap(),
                sqlite.report(since_ms, tool).unwrap(),
                "report since {since_ms} for {tool:?}"
            );
        }
        assert_eq!(
            postgres.server_report(since_ms, None, "server-1").unwrap(),
            sqlite.server_report(since_ms, None, "server-1").unwrap()
        );
        for bucket_ms in [60_000, 900_000, HOUR_MS] {
            for server in [None, Some("server-0")] {
                assert_eq!(
                    postgres.overview(since_ms, bucket_ms, server).unwrap(),
                    sqlite.overview(since_ms, bucket_ms, server).unwrap(),
                    "overview since {since_ms} by {bucket_ms} for {server:?}"
                );
            }
            assert_eq!(
                postgres
                    .series(since_ms, bucket_ms, Some("tool_2"))
                    .unwrap(),
                sqlite.series(since_ms, bucket_ms, Some("tool_2")).unwrap()
            );
        }
        assert_eq!(
            postgres.recent_errors(since_ms, 50, None).unwrap(),
            sqlite.recent_errors(since_ms, 50, None).unwrap()
        );
        assert_eq!(
            postgres.tool_errors(since_ms, 50, "tool_1").unwrap(),
            sqlite.tool_errors(since_ms, 50, "tool_1").unwrap()
        );
        assert_eq!(
            postgres.recent_sessions(since_ms, 30).unwrap(),
            sqlite.recent_sessions(since_ms, 30).unwrap()
        );
        assert_eq!(
            postgres.tool_summary(since_ms).unwrap(),
            sqlite.tool_summary(since_ms).unwrap()
        );
        assert_eq!(
            postgres.latency(since_ms).unwrap(),
            sqlite.latency(since_ms).unwrap()
        );
        assert_eq!(
            postgres.users(since_ms).unwrap(),
            sqlite.users(since_ms).unwrap()
        );
    }
    assert_eq!(
        postgres.session("session-3", 500).unwrap(),
        sqlite.session("session-3", 500).unwrap()
    );
    let report = postgres.report(0, None).unwrap();
    assert_eq!(report.calls, 8_000);
    assert_eq!(report.context_cost.len(), 1, "{:?}", report.context_cost);
    assert_eq!(report.context_cost[0].tools.len(), 2);
    assert!(!report.error_kinds.is_empty() && !report.top_users.is_empty());
    assert_eq!(
        report
            .requests
            .iter()
            .map(|method| method.usage.calls)
            .sum::<u64>(),
        3_000
    );
    assert!(report.tools.iter().all(|tool| tool.listed_sessions > 0));
    assert!(report.clients.len() >= 10 && report.protocol_versions.len() == 2);
    assert_eq!(
        report
            .clients
            .iter()
            .map(|client| client.calls)
            .sum::<u64>(),
        8_000
    );
    assert!(
        report
            .missing_tools
            .iter()
            .any(|tool| tool.tool == OTHER_UNKNOWN_TOOLS),
        "the missing tools use the rollup's names"
    );
    assert!(
        report
            .resources
            .iter()
            .any(|resource| resource.uri == OTHER_TARGETS),
        "more resource URIs in an hour than its allowance"
    );
    assert!(
        report
            .tools
            .iter()
            .any(|tool| tool.tool == OTHER_UNKNOWN_TOOLS),
        "more unknown names in an hour than its allowance"
    );
    assert_rollups_equal_rows(&postgres);
}

#[test]
fn a_read_only_store_answers_as_the_writer_and_cannot_write() {
    let Database::Postgres(url) = Database::from(Cluster::shared().create_database("read_only"))
    else {
        unreachable!("a postgres URL")
    };
    let mut writer = PgStore::open(&url).unwrap();
    let start_ms = now_ms() - HOUR_MS;
    writer.append(&events("read-only", 500, start_ms)).unwrap();
    let mut reader = PgStore::open_read_only(&url).unwrap();
    assert_eq!(
        reader.report(0, None).unwrap(),
        writer.report(0, None).unwrap()
    );
    let catalog = ToolCatalog::measure("server-1", "1.0.0", &[]);
    let refused = reader.write_catalog(&catalog).unwrap_err();
    assert_eq!(
        refused.code(),
        Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION),
        "{refused:?}"
    );
    assert_eq!(writer.report(0, None).unwrap().calls, 500);
}

#[test]
fn a_batch_written_twice_counts_once() {
    let mut store = open("twice");
    let batch = events("twice", 500, now_ms() - HOUR_MS);
    assert_eq!(store.append(&batch).unwrap(), 500);
    assert_eq!(store.append(&batch).unwrap(), 0);
    // A batch that repeats an id, and overlaps the first one.
    let mut overlapping = events("twice", 600, now_ms() - HOUR_MS)[400..].to_vec();
    overlapping.push(overlapping[150].clone());
    assert_eq!(store.append(&overlapping).unwrap(), 100);
    assert_eq!(store.report(0, None).unwrap().calls, 600);
    let requests = requests("twice", 300, now_ms() - HOUR_MS);
    assert_eq!(store.append_requests(&requests).unwrap(), 300);
    assert_eq!(store.append_requests(&requests[100..]).unwrap(), 0);
    assert_rollups_equal_rows(&store);
}

#[test]
fn two_writers_at_once_store_the_sum_and_rollups_equal_the_rows() {
    let url = Cluster::shared().create_database("two_writers");
    let Database::Postgres(url) = Database::from(url) else {
        unreachable!()
    };
    let start_ms = now_ms() - 2 * HOUR_MS;
    // Both write the same minutes, tools, users and sessions, and both deliver one shared
    // batch (as two collectors given one exporter's retry would).
    let shared: Vec<ToolCallEvent> = events("shared", 1_000, start_ms)
        .into_iter()
        .filter(|event| event.status != Status::UnknownTool)
        .collect();
    let writers: Vec<Vec<ToolCallEvent>> = ["left", "right"]
        .into_iter()
        .map(|name| {
            let mut mine = events(name, 20_000, start_ms);
            mine.extend(shared.iter().cloned());
            // Fewer unknown names than an hour's allowance, so which ones are kept does not
            // depend on the order the writers interleave in (see the next test).
            for event in &mut mine {
                if event.status == Status::UnknownTool {
                    event.tool = format!("missing_{}", event.tool.len() * 7 % 30);
                }
            }
            mine
        })
        .collect();
    std::thread::scope(|scope| {
        for events in &writers {
            let url = url.clone();
            scope.spawn(move || {
                let mut sink = PgStore::open(&url).unwrap();
                for batch in events.chunks(100) {
                    Sink::write(&mut sink, batch).unwrap();
                }
                Sink::flush(&mut sink, &crate::Stats::default()).unwrap();
            });
        }
    });
    let store = PgStore::open(&url).unwrap();
    assert_eq!(
        store.report(0, None).unwrap().calls,
        (writers[0].len() + writers[1].len() - shared.len()) as u64
    );
    assert_rollups_equal_rows(&store);
    // And the rollups are what one writer of all events makes.
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteStore::open(dir.path().join("all.db")).unwrap();
    for events in &writers {
        for batch in events.chunks(5_000) {
            sqlite.append(batch).unwrap();
        }
    }
    assert_eq!(
        store.report(0, None).unwrap(),
        sqlite.report(0, None).unwrap()
    );
    let since_ms = now_ms() - 86_000_000;
    assert_eq!(
        store.overview(since_ms, 60_000, None).unwrap(),
        sqlite.overview(since_ms, 60_000, None).unwrap()
    );
    assert_eq!(store.users(0).unwrap(), sqlite.users(0).unwrap());
    // The loop counts too: the same fingerprints, the calls of both writers summed.
    assert_eq!(loops(&store), loops(sqlite.connection()));
}

/// Every `tool_loops_1m` row, in key order.
fn loops<S: Source>(db: &S) -> Vec<(i64, String, String, String, i64, i64)>
where
    S::Error: std::fmt::Debug,
{
    db.rows(
        "SELECT minute_ms, server_name, session_id, tool, args_fp, calls FROM tool_loops_1m ORDER BY minute_ms, server_name, session_id, tool, args_fp",
        &[],
        |row| {
            Ok((
                row.int(0)?,
                row.string(1)?,
                row.string(2)?,
                row.string(3)?,
                row.int(4)?,
                row.int(5)?,
            ))
        },
    )
    .unwrap()
}

#[test]
fn loop_minutes_a_day_older_than_a_new_batch_s_hour_are_pruned() {
    let mut store = open("loops_pruned");
    let hour = now_ms() - now_ms().rem_euclid(HOUR_MS);
    let old = events("old", 50, hour - 30 * HOUR_MS);
    store.append(&old).unwrap();
    assert!(!loops(&store).is_empty());
    let new = events("new", 50, hour);
    store.append(&new).unwrap();
    let kept = loops(&store);
    assert!(!kept.is_empty());
    assert!(
        kept.iter().all(|row| row.0 >= hour - 24 * HOUR_MS),
        "{kept:?}"
    );
}

/// Writes each writer's items on a store of its own, in batches of 10, all writers' batches in
/// lockstep.
fn in_lockstep<T: Sync>(
    url: &crate::PostgresUrl,
    writers: &[Vec<T>],
    write: impl Fn(&mut PgStore, &[T]) + Sync,
) {
    let barrier = std::sync::Barrier::new(writers.len());
    std::thread::scope(|scope| {
        for items in writers {
            let (barrier, write) = (&barrier, &write);
            scope.spawn(move || {
                let mut sink = PgStore::open(url).unwrap();
                for batch in items.chunks(10) {
                    barrier.wait();
                    write(&mut sink, batch);
                }
            });
        }
    });
}

#[test]
fn two_writers_keep_the_unknown_tool_allowance_of_an_hour_between_them() {
    let url = Cluster::shared().create_database("unknown_allowance");
    let Database::Postgres(url) = Database::from(url) else {
        unreachable!()
    };
    let hour = now_ms() - now_ms().rem_euclid(HOUR_MS) - HOUR_MS;
    let writers: Vec<Vec<ToolCallEvent>> = ["a", "b"]
        .into_iter()
        .map(|name| {
            events(name, 150, hour)
                .into_iter()
                .enumerate()
                .map(|(index, mut event)| {
                    event.ts_ms = hour + index as i64;
                    event.server_name = "server".into();
                    event.status = Status::UnknownTool;
                    event.tool = format!("{name}_missing_{index}");
                    event
                })
                .collect()
        })
        .collect();
    in_lockstep(&url, &writers, |sink, batch| {
        Sink::write(sink, batch).unwrap()
    });
    let store = PgStore::open(&url).unwrap();
    let names: Vec<String> = store
        .run(async {
            store
                .client
                .query(
                    "SELECT DISTINCT tool FROM tool_calls_1h WHERE hour_ms = $1",
                    &[&hour],
                )
                .await
                .unwrap()
        })
        .iter()
        .map(|row| row.get(0))
        .collect();
    let own = names
        .iter()
        .filter(|name| *name != OTHER_UNKNOWN_TOOLS)
        .count();
    assert_eq!(
        own,
        crate::store::UNKNOWN_TOOLS_PER_HOUR,
        "distinct unknown names kept for the hour: {names:?}"
    );
    assert_rollups_equal_rows(&store);
}

#[test]
fn two_writers_keep_the_client_allowance_of_an_hour_between_them() {
    let url = Cluster::shared().create_database("client_allowance");
    let Database::Postgres(url) = Database::from(url) else {
        unreachable!()
    };
    let hour = now_ms() - now_ms().rem_euclid(HOUR_MS) - HOUR_MS;
    let writers: Vec<Vec<ToolCallEvent>> = ["a", "b"]
        .into_iter()
        .map(|name| {
            events(name, 150, hour)
                .into_iter()
                .enumerate()
                .map(|(index, mut event)| {
                    event.ts_ms = hour + index as i64;
                    event.server_name = "server".into();
                    event.client_name = Some(format!("{name}-client-{index}"));
                    event
                })
                .collect()
        })
        .collect();
    in_lockstep(&url, &writers, |sink, batch| {
        Sink::write(sink, batch).unwrap()
    });
    let store = PgStore::open(&url).unwrap();
    let clients: Vec<(String, String, String)> = store
        .run(async {
            store
                .client
                .query(
                    "SELECT DISTINCT client_name, coalesce(client_version, ''), coalesce(protocol_version, '') FROM client_calls_1h WHERE hour_ms = $1",
                    &[&hour],
                )
                .await
                .unwrap()
        })
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let own = clients
        .iter()
        .filter(|(name, _, _)| name != OTHER_CLIENTS)
        .count();
    assert_eq!(
        own,
        crate::store::CLIENTS_PER_HOUR,
        "distinct clients kept for the hour: {clients:?}"
    );
    assert_rollups_equal_rows(&store);
}

#[test]
fn two_writers_keep_the_target_allowance_of_an_hour_between_them() {
    let url = Cluster::shared().create_database("target_allowance");
    let Database::Postgres(url) = Database::from(url) else {
        unreachable!()
    };
    let hour = now_ms() - now_ms().rem_euclid(HOUR_MS) - HOUR_MS;
    let writers: Vec<Vec<RequestEvent>> = ["a", "b"]
        .into_iter()
        .map(|name| {
            requests(name, 150, hour)
                .into_iter()
                .enumerate()
                .map(|(index, mut request)| {
                    request.ts_ms = hour + index as i64;
                    request.server_name = "server".into();
                    request.method = Method::ResourcesRead;
                    request.target = Some(format!("test://{name}/{index}"));
                    request
                })
                .collect()
        })
        .collect();
    in_lockstep(&url, &writers, |sink, batch| {
        Sink::write_requests(sink, batch).unwrap()
    });
    let store = PgStore::open(&url).unwrap();
    let targets: Vec<String> = store
        .run(async {
            store
                .client
                .query(
                    "SELECT DISTINCT target FROM requests_1h WHERE hour_ms = $1",
                    &[&hour],
                )
                .await
                .unwrap()
        })
        .iter()
        .map(|row| row.get(0))
        .collect();
    let own = targets
        .iter()
        .filter(|target| *target != OTHER_TARGETS)
        .count();
    assert_eq!(
        own, TARGETS_PER_HOUR,
        "targets kept for the hour: {targets:?}"
    );
    assert_rollups_equal_rows(&store);
}

#[test]
fn two_writers_at_once_continue_one_sessionless_caller_s_session_and_split_it_after_the_gap() {
    use crate::store::request_tests::call;
    const KEY: &str = "d-0123456789abcdef";
    const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let url = Cluster::shared().create_database("sessionless_writers");
    let Database::Postgres(url) = Database::from(url) else {
        unreachable!()
    };
    let open = || {
        let mut store = PgStore::open(&url).unwrap();
        store.set_session_idle(std::time::Duration::from_secs(1));
        store
    };
    let t = now_ms();
    // Calls 10 ms apart, alternating between the writers, each writing its own at once.
    std::thread::scope(|scope| {
        for writer in 0..2_i64 {
            let mut store = open();
            scope.spawn(move || {
                for n in (writer..200).step_by(2) {
                    store
                        .append(&[call(&format!("a{n:03}"), t + n * 10, KEY)])
                        .unwrap();
                }
            });
        }
    });
    let (mut first, mut second) = (open(), open());
    // 3 s later: a new session; then the same trace from another key, 5 s later still.
    let mut traced = call("b", t + 5_000, KEY);
    traced.traceparent = Some(TRACE.into());
    first.append(&[traced]).unwrap();
    let mut joined = call("c", t + 10_000, "d-fedcba9876543210");
    joined.traceparent = Some(TRACE.into());
    second.append(&[joined]).unwrap();

    let sessions = |sql: &str| -> Vec<String> {
        let mut found = Vec::new();
        super::super::source::Source::each(&first, sql, &[], &mut |row| {
            found.push(row.string(0)?);
            Ok(())
        })
        .unwrap();
        found
    };
    assert_eq!(
        sessions("SELECT DISTINCT session_id FROM tool_calls WHERE id LIKE 'a%'"),
        [format!("{KEY}-{t:x}")],
        "200 calls 10 ms apart from two writers: one session"
    );
    let later = sessions("SELECT session_id FROM tool_calls WHERE id IN ('b', 'c') ORDER BY id");
    assert_eq!(later[0], format!("{KEY}-{:x}", t + 5_000));
    assert_eq!(later[1], later[0], "the trace joins another key's call");
}
