//! The SQLite schema (the public one documented in the README) and its migrations.

/// Migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tool_calls (
    id               TEXT    NOT NULL UNIQUE,
    ts_ms            INTEGER NOT NULL,
    server_name      TEXT    NOT NULL,
    server_version   TEXT    NOT NULL,
    tool             TEXT    NOT NULL,
    user_id          TEXT,
    session_id       TEXT,
    client_name      TEXT,
    client_version   TEXT,
    protocol_version TEXT,
    transport        TEXT    NOT NULL,
    request_id       TEXT,
    duration_us      INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    error_type       TEXT,
    error_message    TEXT,
    params           TEXT,
    result           TEXT
);
CREATE INDEX tool_calls_ts ON tool_calls (ts_ms);

CREATE TABLE tool_calls_1m (
    minute_ms       INTEGER NOT NULL,
    server_name     TEXT    NOT NULL,
    tool            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    calls           INTEGER NOT NULL,
    duration_us_sum INTEGER NOT NULL,
    duration_us_max INTEGER NOT NULL,
    latency_hist    BLOB    NOT NULL,
    PRIMARY KEY (minute_ms, server_name, tool, status)
) WITHOUT ROWID;

CREATE TABLE recorder_stats (
    ts_ms       INTEGER NOT NULL,
    pid         INTEGER NOT NULL,
    recorded    INTEGER NOT NULL,
    dropped     INTEGER NOT NULL,
    written     INTEGER NOT NULL,
    sink_errors INTEGER NOT NULL,
    PRIMARY KEY (pid)
);
"#,
    r#"
CREATE INDEX tool_calls_session ON tool_calls (session_id, ts_ms);
"#,
    r#"
CREATE TABLE tool_calls_1h (
    hour_ms         INTEGER NOT NULL,
    server_name     TEXT    NOT NULL,
    tool            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    error_type      TEXT    NOT NULL,
    calls           INTEGER NOT NULL,
    duration_us_sum INTEGER NOT NULL,
    duration_us_max INTEGER NOT NULL,
    latency_hist    BLOB    NOT NULL,
    users_hll       BLOB    NOT NULL,
    sessions_hll    BLOB    NOT NULL,
    PRIMARY KEY (hour_ms, server_name, tool, status, error_type)
) WITHOUT ROWID;

CREATE TABLE user_calls_1h (
    hour_ms INTEGER NOT NULL,
    user_id TEXT    NOT NULL,
    calls   INTEGER NOT NULL,
    errors  INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, user_id)
) WITHOUT ROWID;

INSERT INTO user_calls_1h
    SELECT ts_ms - ts_ms % 3600000, user_id, count(*), sum(status NOT IN ('ok', 'input_required'))
    FROM tool_calls WHERE user_id IS NOT NULL GROUP BY 1, 2;
"#,
    r#"
ALTER TABLE tool_calls ADD COLUMN user_email TEXT;
ALTER TABLE tool_calls ADD COLUMN user_name TEXT;
"#,
];

/// SQL for "this status is an error" (kept in step with `Status::is_error`).
pub(crate) const IS_ERROR: &str = "status NOT IN ('ok', 'input_required', 'payment_required')";

pub(crate) const INSERT_CALL: &str = "INSERT OR IGNORE INTO tool_calls (id, ts_ms, server_name, server_version, tool, user_id, session_id, client_name, client_version, protocol_version, transport, request_id, duration_us, status, error_type, error_message, params, result, user_email, user_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";

pub(crate) const UPSERT_ROLLUP: &str = "INSERT INTO tool_calls_1m (minute_ms, server_name, tool, status, calls, duration_us_sum, duration_us_max, latency_hist) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (minute_ms, server_name, tool, status) DO UPDATE SET calls = calls + excluded.calls, duration_us_sum = duration_us_sum + excluded.duration_us_sum, duration_us_max = max(duration_us_max, excluded.duration_us_max), latency_hist = hist_merge(latency_hist, excluded.latency_hist)";

pub(crate) const UPSERT_STATS: &str = "INSERT INTO recorder_stats (ts_ms, pid, recorded, dropped, written, sink_errors) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (pid) DO UPDATE SET ts_ms = excluded.ts_ms, recorded = excluded.recorded, dropped = excluded.dropped, written = excluded.written, sink_errors = excluded.sink_errors";

pub(crate) const UPSERT_HOURLY: &str = "INSERT INTO tool_calls_1h (hour_ms, server_name, tool, status, error_type, calls, duration_us_sum, duration_us_max, latency_hist, users_hll, sessions_hll) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (hour_ms, server_name, tool, status, error_type) DO UPDATE SET calls = calls + excluded.calls, duration_us_sum = duration_us_sum + excluded.duration_us_sum, duration_us_max = max(duration_us_max, excluded.duration_us_max), latency_hist = hist_merge(latency_hist, excluded.latency_hist), users_hll = hll_merge(users_hll, excluded.users_hll), sessions_hll = hll_merge(sessions_hll, excluded.sessions_hll)";

pub(crate) const UPSERT_USER: &str = "INSERT INTO user_calls_1h (hour_ms, user_id, calls, errors) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (hour_ms, user_id) DO UPDATE SET calls = calls + excluded.calls, errors = errors + excluded.errors";

#[cfg(test)]
mod tests {
    use crate::event::{Status, ToolCallEvent, Transport};

    /// A database made before `user_email` / `user_name` gains them, old rows reading NULL.
    #[test]
    fn user_detail_columns_are_added_to_existing_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let connection = rusqlite::Connection::open(&path).unwrap();
            for migration in &super::MIGRATIONS[..3] {
                connection.execute_batch(migration).unwrap();
            }
            connection.pragma_update(None, "user_version", 3).unwrap();
            connection
                .execute("INSERT INTO tool_calls (id, ts_ms, server_name, server_version, tool, transport, duration_us, status) VALUES ('old', 1, 's', '1', 't', 'http', 1, 'ok')", [])
                .unwrap();
        }
        let mut store = super::super::SqliteStore::open(&path).unwrap();
        let event = ToolCallEvent {
            id: "new".into(),
            ts_ms: 2,
            server_name: "s".into(),
            server_version: "1".into(),
            tool: "t".into(),
            user_id: Some("u".into()),
            user_email: Some("u***@example.com".into()),
            user_name: None,
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
        };
        assert_eq!(store.append(&[event]).unwrap(), 1);
        drop(store);
        let connection = rusqlite::Connection::open(&path).unwrap();
        let emails: Vec<Option<String>> = connection
            .prepare("SELECT user_email FROM tool_calls ORDER BY ts_ms")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(emails, [None, Some("u***@example.com".to_owned())]);
    }
}
