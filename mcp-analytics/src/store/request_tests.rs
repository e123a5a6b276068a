//! Storing and reading the requests other than `tools/call` on SQLite (`pg/tests.rs` checks that
//! PostgreSQL answers the same).

use super::{OTHER_TARGETS, SqliteStore, TARGETS_PER_HOUR};
use crate::{
    Method, RequestEvent, RequestStatus, Status, ToolCallEvent, Transport,
    store::allowance::hour_of,
};

const HOUR_MS: i64 = 3_600_000;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A request of `method` about `target` in `session`, answered with `status`.
pub(crate) fn request(
    id: &str,
    ts_ms: i64,
    method: Method,
    target: Option<&str>,
    session: &str,
    status: RequestStatus,
) -> RequestEvent {
    RequestEvent {
        id: id.into(),
        ts_ms,
        server_name: "server".into(),
        server_version: "1.0.0".into(),
        method,
        target: target.map(str::to_owned),
        user_id: Some("alice".into()),
        session_id: Some(session.into()),
        client_name: Some("client".into()),
        client_version: Some("1.0".into()),
        protocol_version: Some("2025-11-25".into()),
        transport: Transport::Http,
        request_id: Some(id.into()),
        duration_us: 1_000,
        error_type: status.is_error().then(|| "-32602".to_owned()),
        error_message: status.is_error().then(|| "no such thing".to_owned()),
        status,
        client_capabilities: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }
}

/// `count` varied requests from `start_ms` on, ids prefixed by `prefix`: 2 servers, every method
/// and status, 6 prompt names, 300 resource URIs (past an hour's allowance when there are over
/// 1,000 requests an hour), 25 sessions.
pub(super) fn requests(prefix: &str, count: usize, start_ms: i64) -> Vec<RequestEvent> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ prefix.len() as u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|index| {
            let random = next();
            // Half are reads, so an hour has more resource URIs than its allowance.
            let method = if random % 2 == 0 {
                Method::ResourcesRead
            } else {
                Method::ALL[(random >> 40) as usize % Method::ALL.len()]
            };
            let status = if random % 3 == 0 {
                RequestStatus::ALL[(random >> 8) as usize % RequestStatus::ALL.len()]
            } else {
                RequestStatus::Ok
            };
            let target = match method {
                Method::PromptsGet => Some(format!("prompt_{}", (random >> 12) % 6)),
                Method::ResourcesRead | Method::ResourcesSubscribe => {
                    Some(format!("test://item/{}", (random >> 12) % 300))
                }
                _ => None,
            };
            let mut request = request(
                &format!("{prefix}-{index:06}"),
                start_ms + (index as i64 * 7_919) % (2 * HOUR_MS),
                method,
                target.as_deref(),
                &format!("session-{}", (random >> 24) % 25),
                status,
            );
            request.server_name = format!("server-{}", (random >> 16) % 2);
            request.duration_us = (random >> 32) % 2_000_000;
            request
        })
        .collect()
}

pub(crate) fn call(id: &str, ts_ms: i64, session: &str) -> ToolCallEvent {
    ToolCallEvent {
        id: id.into(),
        ts_ms,
        server_name: "server".into(),
        server_version: "1.0.0".into(),
        tool: "search".into(),
        user_id: Some("alice".into()),
        user_email: None,
        user_name: None,
        session_id: Some(session.into()),
        client_name: Some("client".into()),
        client_version: Some("1.0".into()),
        protocol_version: Some("2025-11-25".into()),
        transport: Transport::Http,
        request_id: Some(id.into()),
        duration_us: 2_000,
        status: Status::Ok,
        error_type: None,
        error_message: None,
        params: Some("{}".into()),
        result: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }
}

fn count(store: &SqliteStore, sql: &str) -> i64 {
    store
        .connection()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

#[test]
fn requests_are_reported_per_method_prompt_and_resource_and_tools_as_listed_and_called() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("r.db")).unwrap();
    let now = now_ms();
    use Method::*;
    use RequestStatus::{InvalidParams, Ok};
    let batch = [
        request("1", now, Initialize, None, "s1", Ok),
        request("2", now, Initialize, None, "s2", Ok),
        request("3", now, ToolsList, None, "s1", Ok),
        request("4", now, ToolsList, None, "s1", Ok),
        request("5", now, ToolsList, None, "s2", Ok),
        request("6", now, PromptsGet, Some("greet"), "s1", Ok),
        request("7", now, PromptsGet, Some("greet"), "s2", Ok),
        request("8", now, PromptsGet, Some("missing"), "s2", InvalidParams),
        request("9", now, ResourcesRead, Some("file:///a"), "s1", Ok),
        request("10", now, Ping, None, "s3", Ok),
    ];
    assert_eq!(store.append_requests(&batch).unwrap(), batch.len());
    assert_eq!(store.append(&[call("c1", now, "s1")]).unwrap(), 1);
    assert_eq!(
        store.append_requests(&batch).unwrap(),
        0,
        "a batch delivered twice counts once"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM requests"), 10);
    // The minute rollup (the last hour) and the hourly one (all time) agree.
    for since_ms in [now - HOUR_MS, 0] {
        let report = store.report(since_ms, None).unwrap();
        let methods: Vec<(&str, u64, u64, u64)> = report
            .requests
            .iter()
            .map(|method| {
                let usage = &method.usage;
                (
                    method.method.as_str(),
                    usage.calls,
                    usage.errors,
                    method.sessions,
                )
            })
            .collect();
        assert_eq!(
            methods,
            [
                ("prompts/get", 3, 1, 2),
                ("tools/list", 3, 0, 2),
                ("initialize", 2, 0, 2),
                ("ping", 1, 0, 1),
                ("resources/read", 1, 0, 1),
            ],
            "busiest first, ties by name"
        );
        let prompts: Vec<(&str, u64, u64)> = report
            .prompts
            .iter()
            .map(|prompt| {
                (
                    prompt.name.as_str(),
                    prompt.usage.calls,
                    prompt.usage.errors,
                )
            })
            .collect();
        assert_eq!(prompts, [("greet", 2, 0), ("missing", 1, 1)]);
        assert_eq!(report.resources.len(), 1);
        assert_eq!(report.resources[0].uri, "file:///a");
        assert!(report.resources[0].usage.p95_ms > 0.0);
        let search = &report.tools[0];
        assert_eq!(
            (search.sessions, search.listed_sessions),
            (1, 2),
            "called in one session, listed in two"
        );
        assert_eq!(report.calls, 1, "tool calls alone");
    }
}

#[test]
fn both_request_rollups_count_every_stored_request_once_in_its_method() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("v.db")).unwrap();
    let start_ms = now_ms() - 3 * HOUR_MS;
    let batch = requests("varied", 4_000, start_ms);
    for chunk in batch.chunks(300) {
        store.append_requests(chunk).unwrap();
    }
    assert_eq!(store.append_requests(&batch[..500]).unwrap(), 0);
    for rollup in ["requests_1m", "requests_1h"] {
        assert_eq!(
            count(&store, &format!("SELECT sum(calls) FROM {rollup}")),
            4_000,
            "{rollup}"
        );
        let per_method = format!(
            "SELECT count(*) FROM (SELECT method, count(*) AS n FROM requests GROUP BY method) AS raw JOIN (SELECT method, sum(calls) AS n FROM {rollup} GROUP BY method) AS rolled USING (method, n)"
        );
        assert_eq!(
            count(&store, &per_method),
            count(&store, "SELECT count(DISTINCT method) FROM requests"),
            "{rollup} per method"
        );
    }
    let report = store.report(0, None).unwrap();
    let errors: u64 = report
        .requests
        .iter()
        .map(|method| method.usage.errors)
        .sum();
    let stored_errors = count(
        &store,
        &format!(
            "SELECT count(*) FROM requests WHERE {}",
            crate::schema::REQUEST_IS_ERROR
        ),
    );
    assert_eq!(errors as i64, stored_errors);
}

#[test]
fn targets_past_the_hourly_allowance_roll_up_as_other_targets_and_raw_rows_keep_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let hour = hour_of(now_ms());
    let read = |index: usize| {
        request(
            &format!("r{index}"),
            hour + index as i64,
            Method::ResourcesRead,
            Some(&format!("test://item/{index}")),
            "s",
            RequestStatus::Ok,
        )
    };
    let batch: Vec<RequestEvent> = (0..TARGETS_PER_HOUR + 50).map(read).collect();
    store.append_requests(&batch).unwrap();
    // Prompts have an allowance of their own.
    let prompt = request(
        "p",
        hour,
        Method::PromptsGet,
        Some("greet"),
        "s",
        RequestStatus::Ok,
    );
    store.append_requests(&[prompt]).unwrap();
    drop(store);
    // A restarted writer reads the hour's admitted targets back.
    let mut store = SqliteStore::open(&path).unwrap();
    let mut again = read(3);
    again.id = "again".into();
    store
        .append_requests(&[read(TARGETS_PER_HOUR + 60), again])
        .unwrap();
    let report = store.report(hour, None).unwrap();
    let other = report
        .resources
        .iter()
        .find(|resource| resource.uri == OTHER_TARGETS)
        .expect("an other-targets row");
    assert_eq!(other.usage.calls, 51);
    assert_eq!(report.resources.len(), TARGETS_PER_HOUR + 1);
    let three = report
        .resources
        .iter()
        .find(|resource| resource.uri == "test://item/3")
        .unwrap();
    assert_eq!(three.usage.calls, 2, "an admitted target stays admitted");
    assert_eq!(report.prompts.len(), 1);
    assert_eq!(
        count(&store, "SELECT count(DISTINCT target) FROM requests"),
        TARGETS_PER_HOUR as i64 + 52
    );
}

#[test]
fn a_session_shows_its_requests_next_to_its_calls_and_recent_errors_include_failed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let now = now_ms();
    store
        .append_requests(&[
            request(
                "a",
                now - 3,
                Method::Initialize,
                None,
                "s1",
                RequestStatus::Ok,
            ),
            request(
                "b",
                now - 2,
                Method::ToolsList,
                None,
                "s1",
                RequestStatus::Ok,
            ),
            request(
                "d",
                now,
                Method::PromptsGet,
                Some("missing"),
                "s1",
                RequestStatus::InvalidParams,
            ),
        ])
        .unwrap();
    store.append(&[call("c", now - 1, "s1")]).unwrap();
    let timeline = store.session("s1", 100).unwrap();
    assert_eq!(
        (timeline.start_ms, timeline.calls, timeline.requests),
        (Some(now - 3), 1, 3),
        "starts with its first request; one tool call, three other requests"
    );
    assert!(timeline.end_ms.unwrap() >= now, "{timeline:?}");
    assert_eq!(
        timeline.duration_ms,
        timeline.end_ms.unwrap() - timeline.start_ms.unwrap()
    );
    let session: Vec<(String, String)> = timeline
        .timeline
        .into_iter()
        .map(|row| (row.method, row.tool))
        .collect();
    let pair = |method: &str, tool: &str| (method.to_owned(), tool.to_owned());
    assert_eq!(
        session,
        [
            pair("initialize", ""),
            pair("tools/list", ""),
            pair("tools/call", "search"),
            pair("prompts/get", "missing"),
        ]
    );
    assert_eq!(
        store.session("s1", 2).unwrap().timeline.len(),
        2,
        "the limit holds"
    );
    let unknown = store.session("nobody", 10).unwrap();
    assert_eq!(
        (
            unknown.start_ms,
            unknown.end_ms,
            unknown.calls,
            unknown.timeline.len()
        ),
        (None, None, 0, 0)
    );
    let errors = store.recent_errors(now - HOUR_MS, 10, None).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].method.as_str(), errors[0].status.as_str()),
        ("prompts/get", "invalid_params")
    );
}

#[test]
fn a_database_from_before_requests_gains_their_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let before = crate::schema::MIGRATIONS.len() - 1;
        for migration in &crate::schema::MIGRATIONS[..before] {
            connection.execute_batch(migration).unwrap();
        }
        connection
            .pragma_update(None, "user_version", before as i64)
            .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    let ping = request("p", now_ms(), Method::Ping, None, "s", RequestStatus::Ok);
    assert_eq!(store.append_requests(&[ping]).unwrap(), 1);
    assert_eq!(count(&store, "SELECT sum(calls) FROM requests_1h"), 1);
}

#[test]
fn the_sql_error_test_agrees_with_request_status_is_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("e.db")).unwrap();
    for status in RequestStatus::ALL {
        let sql = format!(
            "SELECT {} FROM (SELECT '{}' AS status)",
            crate::schema::REQUEST_IS_ERROR,
            status.as_str()
        );
        assert_eq!(count(&store, &sql) == 1, status.is_error(), "{status}");
    }
}
