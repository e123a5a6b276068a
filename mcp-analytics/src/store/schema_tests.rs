//! The database's migrations, as the analytics store sees them.

use crate::event::{Status, ToolCallEvent, Transport};

fn event(
    id: &str,
    ts_ms: i64,
    user: &str,
    email: Option<&str>,
    name: Option<&str>,
) -> ToolCallEvent {
    ToolCallEvent {
        id: id.into(),
        ts_ms,
        server_name: "s".into(),
        server_version: "1".into(),
        tool: "t".into(),
        user_id: Some(user.into()),
        user_email: email.map(str::to_owned),
        user_name: name.map(str::to_owned),
        session_id: None,
        client_name: None,
        client_version: None,
        protocol_version: None,
        transport: Transport::Http,
        request_id: None,
        duration_us: 1,
        status: Status::Ok,
        error_type: None,
        error_message: None,
        params: None,
        result: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }
}

/// A database with the first `count` migrations applied.
fn database_at(path: &std::path::Path, count: usize, rows: &str) {
    let connection = rusqlite::Connection::open(path).unwrap();
    for migration in &crate::schema::MIGRATIONS[..count] {
        connection.execute_batch(migration).unwrap();
    }
    connection
        .pragma_update(None, "user_version", count as i64)
        .unwrap();
    connection.execute_batch(rows).unwrap();
}

fn strings(path: &std::path::Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    let columns = statement.column_count();
    statement
        .query_map([], |row| (0..columns).map(|index| row.get(index)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A database made before `user_email` / `user_name` gains them, old rows reading NULL.
#[test]
fn user_detail_columns_are_added_to_existing_databases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    database_at(
        &path,
        3,
        "INSERT INTO tool_calls (id, ts_ms, server_name, server_version, tool, transport, duration_us, status) VALUES ('old', 1, 's', '1', 't', 'http', 1, 'ok')",
    );
    let mut store = super::SqliteStore::open(&path).unwrap();
    let new = event("new", 2, "u", Some("u***@example.com"), None);
    assert_eq!(store.append(&[new]).unwrap(), 1);
    drop(store);
    assert_eq!(
        strings(&path, "SELECT user_email FROM tool_calls ORDER BY ts_ms"),
        [vec![None], vec![Some("u***@example.com".to_owned())]]
    );
}

/// The user directory of a database made before it holds each user's latest details.
#[test]
fn user_details_are_backfilled_from_stored_calls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    database_at(
        &path,
        4,
        "INSERT INTO tool_calls (id, ts_ms, server_name, server_version, tool, transport, duration_us, status, user_id, user_email, user_name) VALUES
            ('1', 1, 's', '1', 't', 'http', 1, 'ok', 'u', 'old@example.com', 'Old'),
            ('2', 3, 's', '1', 't', 'http', 1, 'ok', 'u', 'new@example.com', 'New'),
            ('3', 2, 's', '1', 't', 'http', 1, 'ok', 'u', 'mid@example.com', NULL),
            ('4', 4, 's', '1', 't', 'http', 1, 'ok', 'v', NULL, NULL)",
    );
    drop(super::SqliteStore::open(&path).unwrap());
    let some = |text: &str| Some(text.to_owned());
    assert_eq!(
        strings(&path, "SELECT user_id, email, name FROM user_details"),
        [vec![some("u"), some("new@example.com"), some("New")]]
    );
}

/// Top users carry their latest email and name; a call without details keeps them.
#[test]
fn top_users_carry_their_latest_details() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = super::SqliteStore::open(dir.path().join("a.db")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let details = |store: &super::SqliteStore| {
        let report = store.report(now - 60_000, None).unwrap();
        report
            .top_users
            .into_iter()
            .map(|user| (user.user_id, user.calls, user.email, user.name))
            .collect::<Vec<_>>()
    };
    let some = |text: &str| Some(text.to_owned());
    store
        .append(&[
            event("1", now, "u", Some("a***@example.com"), Some("A*** B***")),
            event("2", now, "u", None, None),
            event("3", now, "w", None, None),
        ])
        .unwrap();
    assert_eq!(
        details(&store),
        [
            (
                "u".to_owned(),
                2,
                some("a***@example.com"),
                some("A*** B***")
            ),
            ("w".to_owned(), 1, None, None),
        ]
    );
    store
        .append(&[event("4", now, "u", Some("b***@example.com"), None)])
        .unwrap();
    assert_eq!(
        details(&store)[0],
        (
            "u".to_owned(),
            3,
            some("b***@example.com"),
            some("A*** B***")
        )
    );
    // Within one batch too: the later call's email, the earlier call's name.
    store
        .append(&[
            event("5", now, "x", Some("x***@example.com"), Some("X***")),
            event("6", now, "x", Some("y***@example.com"), None),
        ])
        .unwrap();
    assert!(
        details(&store).contains(&("x".to_owned(), 2, some("y***@example.com"), some("X***"))),
        "{:?}",
        details(&store)
    );
    // Narrower scopes read the rows, and the same directory.
    let report = store.report(now - 60_000, Some("t")).unwrap();
    assert_eq!(report.top_users[0].email, some("b***@example.com"));
}

/// Hours whose quarter-hour rollup is missing or short — written before it existed, or by an
/// older writer sharing the database — are read from the per-minute rollup: the overview does
/// not change.
#[test]
fn hours_the_quarter_hour_rollup_lacks_are_read_per_minute() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut store = super::SqliteStore::open(&path).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let events: Vec<ToolCallEvent> = (0..600)
        .map(|n| {
            let mut event = event(
                &n.to_string(),
                now - 5 * 3_600_000 + n * 29_999,
                "u",
                None,
                None,
            );
            event.duration_us = 100 + (n as u64 * 7_919) % 90_000;
            event
        })
        .collect();
    store.append(&events).unwrap();
    let since = now - 4 * 3_600_000 - 1_234_567;
    let overview = |store: &super::SqliteStore| store.overview(since, 900_000, None).unwrap();
    let whole = overview(&store);
    assert_eq!(
        whole.report.calls,
        events
            .iter()
            .filter(|e| e.ts_ms >= since - since % 60_000)
            .count() as u64,
        "exact to the minute"
    );
    let quarters = |sql: &str| store.connection().execute(sql, []).unwrap();
    let hour = now - now % 3_600_000 - 2 * 3_600_000;
    // Whole hours are read from the quarter-hour rollup (here made to count one call more,
    // with the hourly one agreeing).
    quarters(&format!(
        "UPDATE tool_calls_15m SET calls = calls + 1 WHERE quarter_ms = {hour}"
    ));
    quarters(&format!(
        "UPDATE tool_calls_1h SET calls = calls + 1 WHERE hour_ms = {hour}"
    ));
    assert_eq!(overview(&store).report.calls, whole.report.calls + 1);
    quarters(&format!(
        "UPDATE tool_calls_1h SET calls = calls - 1 WHERE hour_ms = {hour}"
    ));
    assert_eq!(
        overview(&store),
        whole,
        "the hour disagrees: read per minute"
    );
    assert!(
        quarters(&format!(
            "DELETE FROM tool_calls_15m WHERE quarter_ms >= {hour} AND quarter_ms < {hour} + 3600000"
        )) > 0
    );
    assert_eq!(overview(&store), whole, "an hour without quarter rows");
    assert_eq!(
        quarters(&format!(
            "DELETE FROM tool_calls_15m WHERE quarter_ms = {hour} + 3600000"
        )),
        1
    );
    assert_eq!(overview(&store), whole, "an hour missing one quarter");
    quarters("DELETE FROM tool_calls_15m");
    assert_eq!(overview(&store), whole, "no quarter rows at all");
}

/// A read-only store reads a current database, cannot write to it, and refuses an outdated one
/// (it cannot migrate it) naming the fix.
#[test]
fn a_read_only_store_reads_but_never_writes_and_refuses_an_outdated_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("current.db");
    let mut store = super::SqliteStore::open(&path).unwrap();
    store.append(&[event("1", 1, "u", None, None)]).unwrap();
    drop(store);
    let mut reader = super::SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(reader.report(0, None).unwrap().calls, 1);
    let refused = reader
        .append(&[event("2", 2, "u", None, None)])
        .unwrap_err();
    assert_eq!(
        refused.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ReadOnly),
        "{refused}"
    );
    drop(reader);
    assert_eq!(strings(&path, "SELECT id FROM tool_calls").len(), 1);

    let old = dir.path().join("old.db");
    database_at(&old, 3, "");
    let error = super::SqliteStore::open_read_only(&old)
        .err()
        .expect("an outdated schema is refused")
        .to_string();
    assert!(
        error.contains("schema is version 3") && error.contains("open it once with a server"),
        "{error}"
    );
}

/// Tables without a schema version, as an imported D1 database has them: the first `count`
/// migrations applied, `PRAGMA user_version` left at 0.
fn unversioned_database_at(path: &std::path::Path, count: usize) {
    let connection = rusqlite::Connection::open(path).unwrap();
    for migration in &crate::schema::MIGRATIONS[..count] {
        connection.execute_batch(migration).unwrap();
    }
    connection
        .execute_batch(
            "CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL); \
             INSERT INTO tool_calls (id, ts_ms, server_name, server_version, tool, transport, duration_us, status) VALUES ('d1-call', 1000, 's', '1', 't', 'http', 5, 'ok');",
        )
        .unwrap();
}

fn raw_calls(store: &super::SqliteStore) -> i64 {
    store
        .connection()
        .query_row("SELECT count(*) FROM tool_calls", [], |row| row.get(0))
        .unwrap()
}

fn user_version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

#[test]
fn unversioned_tables_of_an_older_schema_are_migrated_from_where_they_stand() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("older.db");
    unversioned_database_at(&path, 6);
    let mut store = super::SqliteStore::open(&path).unwrap();
    store
        .append(&[event("after", 2000, "u", None, None)])
        .unwrap();
    assert_eq!(raw_calls(&store), 2);
    assert_eq!(user_version(&path), crate::schema::MIGRATIONS.len() as i64);
}

#[test]
fn unversioned_tables_of_no_known_shape_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.db");
    unversioned_database_at(&path, crate::schema::MIGRATIONS.len());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("ALTER TABLE tool_calls ADD COLUMN extra TEXT")
        .unwrap();
    let error = super::SqliteStore::open(&path).err().unwrap().to_string();
    assert!(error.contains("no schema version"), "{error}");
    assert_eq!(user_version(&path), 0);
}
