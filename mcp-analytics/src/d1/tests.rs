//! D1 emulated by a SQLite connection without the store's SQL functions (D1 is SQLite minus
//! custom functions; a batch is one transaction), compared with the native store on the same
//! events.

use std::{
    cell::{Cell, RefCell},
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use proptest::prelude::*;
use rusqlite::{Connection, types::ValueRef};

use super::*;
use crate::{
    Method, RequestEvent, RequestStatus, Status, ToolCallEvent,
    store::{
        CLIENTS_PER_HOUR, OTHER_CLIENTS, SqliteStore,
        request_tests::{call, now_ms, request},
    },
};

/// A D1 database: SQLite without `hist_merge`/`hll_merge`, at most 100 parameters per
/// statement, integers beyond 2^53 travelling as floats as JavaScript numbers do.
pub(crate) struct SqliteD1 {
    connection: Connection,
    /// The message of every batch that failed, in order.
    failures: RefCell<Vec<String>>,
    /// How many batches ran.
    batches: Cell<usize>,
}

impl SqliteD1 {
    pub(crate) fn new() -> Self {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(&migration()).unwrap();
        Self {
            connection,
            failures: RefCell::default(),
            batches: Cell::new(0),
        }
    }

    pub(crate) fn run(&self, statements: &[Statement]) -> rusqlite::Result<Vec<Outcome>> {
        let transaction = self.connection.unchecked_transaction()?;
        let mut outcomes = Vec::with_capacity(statements.len());
        for statement in statements {
            // D1 binds at most 100 parameters per statement.
            assert!(statement.params.len() <= 100, "{}", statement.sql);
            let mut prepared = transaction.prepare(&statement.sql)?;
            for (index, value) in statement.params.iter().enumerate() {
                let bound = match value {
                    Value::Null => rusqlite::types::Value::Null,
                    Value::Int(value) if value.abs() <= MAX_SAFE_INT => (*value).into(),
                    Value::Int(value) => (*value as f64).into(),
                    Value::Real(value) => (*value).into(),
                    Value::Text(text) => text.clone().into(),
                    Value::Blob(bytes) => bytes.clone().into(),
                };
                prepared.raw_bind_parameter(index + 1, bound)?;
            }
            let columns = prepared.column_count();
            let mut rows = Vec::new();
            let mut raw = prepared.raw_query();
            while let Some(row) = raw.next()? {
                rows.push(
                    (0..columns)
                        .map(|index| match row.get_ref(index).unwrap() {
                            ValueRef::Null => Value::Null,
                            ValueRef::Integer(value) if value.abs() <= MAX_SAFE_INT => {
                                Value::Int(value)
                            }
                            ValueRef::Integer(value) => Value::Real(value as f64),
                            ValueRef::Real(value) => Value::Real(value),
                            ValueRef::Text(text) => {
                                Value::Text(String::from_utf8_lossy(text).into_owned())
                            }
                            ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
                        })
                        .collect(),
                );
            }
            drop(raw);
            let changes = if columns == 0 {
                transaction.changes()
            } else {
                0
            };
            outcomes.push(Outcome { rows, changes });
        }
        transaction.commit()?;
        Ok(outcomes)
    }
}

impl Executor for SqliteD1 {
    async fn batch(&self, statements: &[Statement]) -> Result<Vec<Outcome>, D1Error> {
        self.batches.set(self.batches.get() + 1);
        self.run(statements).map_err(|error| {
            self.failures.borrow_mut().push(error.to_string());
            D1Error::new(error.to_string())
        })
    }
}

/// An executor that yields once before each batch, so a test interleaves two writers.
struct Stepped<'d>(&'d SqliteD1);

/// Pending once, then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

impl Executor for Stepped<'_> {
    async fn batch(&self, statements: &[Statement]) -> Result<Vec<Outcome>, D1Error> {
        YieldOnce(false).await;
        self.0.batch(statements).await
    }
}

/// Runs a future whose executor never waits.
fn block<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(futures::task::noop_waker_ref());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

const IDLE: Duration = Duration::from_secs(60);

fn native() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("native.db")).unwrap();
    store.set_session_idle(IDLE);
    (dir, store)
}

/// The analytics tables the writers fill.
const TABLES: [&str; 12] = [
    "tool_calls",
    "requests",
    "tool_calls_1m",
    "tool_calls_15m",
    "tool_calls_1h",
    "client_calls_1h",
    "user_calls_1h",
    "user_details",
    "tool_loops_1m",
    "requests_1m",
    "requests_1h",
    "session_keys",
];

/// Every row of `table`, sorted.
fn rows(connection: &Connection, table: &str) -> Vec<Vec<rusqlite::types::Value>> {
    let mut statement = connection
        .prepare(&format!("SELECT * FROM {table}"))
        .unwrap();
    let columns = statement.column_count();
    let mut rows: Vec<Vec<rusqlite::types::Value>> = statement
        .query_map([], |row| (0..columns).map(|index| row.get(index)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows
}

fn assert_same_tables(d1: &SqliteD1, native: &SqliteStore) {
    for table in TABLES {
        let (found, expected) = (
            rows(&d1.connection, table),
            rows(native.connection(), table),
        );
        let differs = found.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            found == expected,
            "{table}: {} rows on D1, {} natively; first difference at row {differs:?}",
            found.len(),
            expected.len()
        );
    }
}

/// A deterministic random source.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len() as u64) as usize]
    }
}

const KEYS: [&str; 3] = [
    "d-0123456789abcdef",
    "d-fedcba9876543210",
    "d-00000000000000aa",
];
const TRACES: [&str; 2] = [
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
];

fn random_call(random: &mut Random, id: usize, ts_ms: i64) -> ToolCallEvent {
    let status = Status::ALL[random.below(Status::ALL.len() as u64) as usize];
    let tool = if status == Status::UnknownTool {
        format!("missing_{}", random.below(4))
    } else {
        random.pick(&["add", "divide", "search"]).to_owned()
    };
    let session = match random.below(4) {
        0 => "mcp-session-1",
        1 => "mcp-session-2",
        _ => random.pick(&KEYS),
    };
    let mut event = call(&format!("c{id}"), ts_ms, session);
    event.server_name = random.pick(&["alpha", "beta"]).into();
    event.tool = tool;
    event.status = status;
    event.duration_us = random.below(2_000_000);
    event.user_id = match random.below(3) {
        0 => None,
        _ => Some(random.pick(&["alice", "bob", "carol"]).into()),
    };
    event.user_email = event
        .user_id
        .as_ref()
        .filter(|_| random.below(2) == 0)
        .map(|user| format!("{user}@example.com"));
    event.client_name = Some(random.pick(&["inspector", "claude", "cursor"]).into());
    event.error_type = status.is_error().then(|| "-32602".to_owned());
    event.error_message = status.is_error().then(|| "bad things".to_owned());
    event.params = Some(format!("{{\"a\":{}}}", random.below(3)));
    if random.below(5) == 0 {
        event.traceparent = Some(random.pick(&TRACES).into());
    }
    event
}

fn random_request(random: &mut Random, id: usize, ts_ms: i64) -> RequestEvent {
    let method = Method::ALL[random.below(Method::ALL.len() as u64) as usize];
    let status = RequestStatus::ALL[random.below(RequestStatus::ALL.len() as u64) as usize];
    let target = match method {
        Method::PromptsGet | Method::ResourcesRead => Some(format!("target_{}", random.below(3))),
        _ => None,
    };
    let session = random.pick(&[KEYS[0], KEYS[1], "mcp-session-1"]);
    let mut event = request(
        &format!("r{id}"),
        ts_ms,
        method,
        target.as_deref(),
        session,
        status,
    );
    event.server_name = random.pick(&["alpha", "beta"]).into();
    event.duration_us = random.below(100_000);
    event
}

/// Batches of calls and requests over three hours ending about now, some delivered again.
fn random_batches(seed: u64) -> Vec<(Vec<ToolCallEvent>, Vec<RequestEvent>)> {
    let mut random = Random(seed | 1);
    let start = now_ms() - 3 * 3_600_000;
    let mut ts_ms = start;
    let mut id = 0;
    let mut batches: Vec<(Vec<ToolCallEvent>, Vec<RequestEvent>)> = Vec::new();
    for _ in 0..6 {
        if !batches.is_empty() && random.below(4) == 0 {
            let again = batches[random.below(batches.len() as u64) as usize].clone();
            batches.push(again);
            continue;
        }
        let mut calls = Vec::new();
        let mut requests = Vec::new();
        for _ in 0..random.below(30) + 1 {
            ts_ms += random.below(90_000) as i64;
            id += 1;
            if random.below(4) == 0 {
                requests.push(random_request(&mut random, id, ts_ms));
            } else {
                calls.push(random_call(&mut random, id, ts_ms));
            }
        }
        if random.below(3) == 0 && !calls.is_empty() {
            // A repeated id within a batch: its first event counts.
            let mut repeated = calls[0].clone();
            repeated.duration_us += 1;
            calls.push(repeated);
        }
        batches.push((calls, requests));
    }
    batches
}

fn store_both(
    d1: &SqliteD1,
    native: &mut SqliteStore,
    calls: &[ToolCallEvent],
    requests: &[RequestEvent],
) -> (Written, Written) {
    let written = block(write(d1, calls, requests, IDLE)).unwrap();
    let expected = Written {
        calls: native.append(calls).unwrap(),
        requests: native.append_requests(requests).unwrap(),
    };
    (written, expected)
}

/// The readers' answers on both databases agree.
fn assert_same_reports(d1: &SqliteD1, native: &SqliteStore, since_ms: i64) {
    assert_eq!(
        block(report(d1, since_ms, None, None)).unwrap(),
        native.report(since_ms, None).unwrap()
    );
    assert_eq!(
        block(report(d1, since_ms, Some("add"), Some("alpha"))).unwrap(),
        native
            .server_report(since_ms, Some("add"), "alpha")
            .unwrap()
    );
    for bucket_ms in [60_000, 900_000, 3_600_000] {
        assert_eq!(
            block(overview(d1, since_ms, bucket_ms, None)).unwrap(),
            native.overview(since_ms, bucket_ms, None).unwrap(),
            "bucket {bucket_ms}"
        );
    }
    assert_eq!(
        block(recent_errors(d1, since_ms, 20, None, None)).unwrap(),
        native.recent_errors(since_ms, 20, None).unwrap()
    );
    let sessions = native.recent_sessions(since_ms, 10).unwrap();
    assert_eq!(block(recent_sessions(d1, since_ms, 10)).unwrap(), sessions);
    for summary in sessions.iter().take(3) {
        assert_eq!(
            block(session(d1, &summary.session_id, 50)).unwrap(),
            native.session(&summary.session_id, 50).unwrap()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn d1_writes_leave_the_same_rows_rollups_and_reports_as_the_native_store(seed in any::<u64>()) {
        let d1 = SqliteD1::new();
        let (_dir, mut native) = native();
        for (calls, requests) in random_batches(seed) {
            let (written, expected) = store_both(&d1, &mut native, &calls, &requests);
            prop_assert_eq!(written, expected);
        }
        assert_same_tables(&d1, &native);
        assert_same_reports(&d1, &native, now_ms() - 6 * 3_600_000);
        assert_same_reports(&d1, &native, now_ms() - 2 * 86_400_000);
    }
}

#[test]
fn an_unraced_batch_takes_one_read_and_one_write() {
    let d1 = SqliteD1::new();
    let t = now_ms();
    let calls = [call("a", t, KEYS[0]), call("b", t + 10, KEYS[0])];
    let requests = [request(
        "r",
        t + 20,
        Method::ToolsList,
        None,
        KEYS[0],
        RequestStatus::Ok,
    )];
    block(write(&d1, &calls, &requests, IDLE)).unwrap();
    assert_eq!(d1.batches.get(), 2);
    let again = block(write(&d1, &calls, &requests, IDLE)).unwrap();
    assert_eq!(
        again,
        Written::default(),
        "a batch delivered again counts once"
    );
}

#[test]
fn two_writers_racing_on_one_rollup_row_lose_no_count() {
    let d1 = SqliteD1::new();
    let (_dir, mut native) = native();
    let t = now_ms() - now_ms().rem_euclid(60_000);
    let first = [call("a", t, "mcp-session-1")];
    let mut second = call("b", t + 1, "mcp-session-1");
    second.duration_us = 7_000;
    let second = [second];
    let stepped = Stepped(&d1);
    let mut one = std::pin::pin!(write(&stepped, &first, &[], IDLE));
    let mut two = std::pin::pin!(write(&stepped, &second, &[], IDLE));
    let mut context = Context::from_waker(futures::task::noop_waker_ref());
    // Both read the same (empty) rollup rows before either writes.
    for _ in 0..2 {
        assert!(one.as_mut().poll(&mut context).is_pending());
        assert!(two.as_mut().poll(&mut context).is_pending());
    }
    // The first writes; the second's write finds the rows changed, fails and plans again.
    let Poll::Ready(written) = one.as_mut().poll(&mut context) else {
        panic!("the first writer finishes")
    };
    assert_eq!(written.unwrap().calls, 1);
    let written = loop {
        if let Poll::Ready(written) = two.as_mut().poll(&mut context) {
            break written.unwrap();
        }
    };
    assert_eq!(written.calls, 1);
    let failures = d1.failures.borrow().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("constraint failed"), "{failures:?}");
    native.append(&first).unwrap();
    native.append(&second).unwrap();
    assert_same_tables(&d1, &native);
    let calls: i64 = d1
        .connection
        .query_row("SELECT sum(calls) FROM tool_calls_1h", [], |row| row.get(0))
        .unwrap();
    assert_eq!(calls, 2);
}

#[test]
fn a_writer_racing_another_on_an_hour_s_last_client_slot_counts_its_client_as_other() {
    let d1 = SqliteD1::new();
    let (_dir, mut native) = native();
    let t = now_ms() - now_ms().rem_euclid(3_600_000);
    let client = |id: usize| {
        let mut event = call(&format!("c{id}"), t + id as i64, "mcp-session-1");
        event.client_name = Some(format!("client-{id}"));
        event
    };
    let filling: Vec<_> = (0..CLIENTS_PER_HOUR - 1).map(client).collect();
    block(write(&d1, &filling, &[], IDLE)).unwrap();
    native.append(&filling).unwrap();
    // Other tools and minutes than each other's: only the hour's allowance is shared.
    let (mut first, mut second) = (client(1000), client(1001));
    first.tool = "add".into();
    second.tool = "divide".into();
    second.ts_ms += 120_000;
    let (first, second) = ([first], [second]);
    let stepped = Stepped(&d1);
    let mut one = std::pin::pin!(write(&stepped, &first, &[], IDLE));
    let mut two = std::pin::pin!(write(&stepped, &second, &[], IDLE));
    let mut context = Context::from_waker(futures::task::noop_waker_ref());
    for _ in 0..2 {
        assert!(one.as_mut().poll(&mut context).is_pending());
        assert!(two.as_mut().poll(&mut context).is_pending());
    }
    assert!(one.as_mut().poll(&mut context).is_ready());
    while two.as_mut().poll(&mut context).is_pending() {}
    let failures = d1.failures.borrow().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("session_keys.key"),
        "the allowance check: {failures:?}"
    );
    native.append(&first).unwrap();
    native.append(&second).unwrap();
    assert_same_tables(&d1, &native);
    let others: i64 = d1
        .connection
        .query_row(
            "SELECT sum(calls) FROM client_calls_1h WHERE client_name = ?1",
            [OTHER_CLIENTS],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        others, 1,
        "the hundred-and-first client is counted as other"
    );
}

#[test]
fn fingerprints_and_durations_beyond_a_javascript_number_are_stored_exactly_or_capped() {
    let d1 = SqliteD1::new();
    let t = now_ms();
    let mut event = call("a", t, "mcp-session-1");
    event.params = Some("{\"fingerprint\":\"wide\"}".into());
    event.duration_us = u64::MAX;
    block(write(&d1, &[event.clone()], &[], IDLE)).unwrap();
    let (_dir, mut native) = native();
    native.append(&[event]).unwrap();
    let fingerprint = |connection: &Connection| -> i64 {
        connection
            .query_row("SELECT args_fp FROM tool_loops_1m", [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!(
        fingerprint(&d1.connection),
        fingerprint(native.connection())
    );
    assert!(
        fingerprint(&d1.connection).abs() > MAX_SAFE_INT,
        "the test needs a wide one"
    );
    let duration: i64 = d1
        .connection
        .query_row("SELECT duration_us FROM tool_calls", [], |row| row.get(0))
        .unwrap();
    assert_eq!(duration, MAX_SAFE_INT);
}

#[test]
fn a_batch_that_keeps_losing_races_fails_after_its_attempts() {
    /// Fails every write as a lost race would.
    struct AlwaysRaced(SqliteD1);
    impl Executor for AlwaysRaced {
        async fn batch(&self, statements: &[Statement]) -> Result<Vec<Outcome>, D1Error> {
            if statements.iter().any(|s| s.sql.starts_with("INSERT")) {
                return Err(D1Error::new("UNIQUE constraint failed: tool_calls.id"));
            }
            self.0.batch(statements).await
        }
    }
    let executor = AlwaysRaced(SqliteD1::new());
    let error = block(write(&executor, &[call("a", now_ms(), "s")], &[], IDLE)).unwrap_err();
    assert!(error.message().contains("8 times"), "{error}");
}

#[test]
fn the_committed_d1_migration_is_the_schema() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/workers/migrations/0001_mcp_analytics.sql"
    );
    if std::env::var_os("MCP_ANALYTICS_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
        std::fs::write(path, migration()).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == migration(),
        "{path} differs from the schema's migrations: regenerate it with MCP_ANALYTICS_BLESS=1 cargo test -p mcp-analytics --lib d1::tests::the_committed_d1_migration"
    );
}

#[test]
fn past_an_hour_s_allowances_unknown_tools_clients_and_targets_roll_up_as_other_as_natively() {
    let d1 = SqliteD1::new();
    let (_dir, mut native) = native();
    let hour = now_ms() - now_ms().rem_euclid(3_600_000) - 3_600_000;
    let calls: Vec<ToolCallEvent> = (0..230)
        .map(|n| {
            let mut event = call(&format!("c{n}"), hour + n as i64 * 1_000, "mcp-session-1");
            event.status = Status::UnknownTool;
            event.tool = format!("invented_{n}");
            event.client_name = Some(format!("client-{}", n % 115));
            event
        })
        .collect();
    let requests: Vec<RequestEvent> = (0..230)
        .map(|n| {
            request(
                &format!("r{n}"),
                hour + n as i64 * 1_000,
                Method::ResourcesRead,
                Some(&format!("file:///{n}")),
                "mcp-session-1",
                RequestStatus::Ok,
            )
        })
        .collect();
    for (calls, requests) in [
        (&calls[..120], &requests[..120]),
        (&calls[120..], &requests[120..]),
    ] {
        let (written, expected) = store_both(&d1, &mut native, calls, requests);
        assert_eq!(written, expected);
    }
    assert_same_tables(&d1, &native);
    let others: i64 = d1
        .connection
        .query_row(
            "SELECT sum(calls) FROM tool_calls_1h WHERE tool = '(other unknown tools)'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(others, 130);
}

#[test]
fn a_writer_whose_caller_key_another_writer_moved_on_meanwhile_places_its_calls_again() {
    let d1 = SqliteD1::new();
    let (_dir, mut native) = native();
    let t = now_ms() - 600_000;
    let opening = [call("a", t, KEYS[0])];
    block(write(&d1, &opening, &[], IDLE)).unwrap();
    native.append(&opening).unwrap();
    // A late call from before the key's last one leaves its row as it was; meanwhile another
    // writer stores a call after the idle gap, which starts a new session for the key.
    let late = [call("late", t - 10, KEYS[0])];
    let mut after_gap = call("after", t + 70_000, KEYS[0]);
    after_gap.server_name = "elsewhere".into();
    let after_gap = [after_gap];
    let stepped = Stepped(&d1);
    let mut one = std::pin::pin!(write(&stepped, &late, &[], IDLE));
    let mut two = std::pin::pin!(write(&stepped, &after_gap, &[], IDLE));
    let mut context = Context::from_waker(futures::task::noop_waker_ref());
    for _ in 0..2 {
        assert!(one.as_mut().poll(&mut context).is_pending());
        assert!(two.as_mut().poll(&mut context).is_pending());
    }
    assert!(two.as_mut().poll(&mut context).is_ready());
    while one.as_mut().poll(&mut context).is_pending() {}
    assert_eq!(d1.failures.borrow().len(), 1, "{:?}", d1.failures.borrow());
    native.append(&after_gap).unwrap();
    native.append(&late).unwrap();
    assert_same_tables(&d1, &native);
}

#[test]
fn a_tool_catalogue_shows_in_the_report_as_natively() {
    use crate::catalog::{ToolCatalog, ToolCost};
    let d1 = SqliteD1::new();
    let (_dir, mut native) = native();
    let catalog = ToolCatalog {
        server_name: "server".into(),
        server_version: "1.0.0".into(),
        recorded_ms: now_ms(),
        list_bytes: 2_048,
        list_tokens: 512,
        tools: vec![ToolCost {
            tool: "search".into(),
            bytes: 2_000,
            tokens: 500,
        }],
    };
    block(write_catalog(&d1, &catalog)).unwrap();
    native.write_catalog(&catalog).unwrap();
    let calls = [call("a", now_ms(), "mcp-session-1")];
    store_both(&d1, &mut native, &calls, &[]);
    let since = now_ms() - 3_600_000;
    let report = block(report(&d1, since, None, None)).unwrap();
    assert_eq!(report.context_cost, [catalog]);
    assert_eq!(report, native.report(since, None).unwrap());
    assert_eq!(
        rows(&d1.connection, "tool_catalog"),
        rows(native.connection(), "tool_catalog")
    );
}

#[test]
fn a_database_made_by_the_d1_migration_opens_as_this_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d1.db");
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.execute_batch(&super::migration()).unwrap();
    connection
        .execute_batch("INSERT INTO tool_calls (id, ts_ms, server_name, server_version, tool, transport, duration_us, status) VALUES ('d1-call', 1000, 's', '1', 't', 'http', 5, 'ok')")
        .unwrap();
    drop(connection);
    let store = SqliteStore::open(&path).unwrap();
    let calls: i64 = store
        .connection()
        .query_row("SELECT count(*) FROM tool_calls", [], |row| row.get(0))
        .unwrap();
    assert_eq!(calls, 1);
    let version: i64 = store
        .connection()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, crate::schema::MIGRATIONS.len() as i64);
}
