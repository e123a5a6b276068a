//! The analytics tables on PostgreSQL: the columns of the SQLite ones (`BIGINT` for
//! `INTEGER`, `BYTEA` for `BLOB`), applied as component `analytics` of
//! `mcp_analytics_migrations`. Append new migrations; never edit one that shipped.
//!
//! Differences from SQLite, all for several writers sharing one database:
//! - Text that is compared or sorted uses the `"C"` collation, so ties sort by bytes as on
//!   SQLite and both databases answer the same.
//! - There is no `rollup_dirty`: the hourly rollups are written in the rows' transaction.
//! - `recorder_stats` is keyed by host and process id (replicas in containers are often all
//!   process 1).

/// The migrations, in order.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tool_calls (
    id               TEXT COLLATE "C" PRIMARY KEY,
    ts_ms            BIGINT NOT NULL,
    server_name      TEXT COLLATE "C" NOT NULL,
    server_version   TEXT   NOT NULL,
    tool             TEXT COLLATE "C" NOT NULL,
    user_id          TEXT COLLATE "C",
    session_id       TEXT COLLATE "C",
    client_name      TEXT,
    client_version   TEXT,
    protocol_version TEXT,
    transport        TEXT   NOT NULL,
    request_id       TEXT,
    duration_us      BIGINT NOT NULL,
    status           TEXT COLLATE "C" NOT NULL,
    error_type       TEXT COLLATE "C",
    error_message    TEXT,
    params           TEXT,
    result           TEXT,
    user_email       TEXT,
    user_name        TEXT
);
CREATE INDEX tool_calls_ts ON tool_calls (ts_ms);
CREATE INDEX tool_calls_session ON tool_calls (session_id, ts_ms);

CREATE TABLE tool_calls_1m (
    minute_ms       BIGINT NOT NULL,
    server_name     TEXT COLLATE "C" NOT NULL,
    tool            TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    calls           BIGINT NOT NULL,
    duration_us_sum BIGINT NOT NULL,
    duration_us_max BIGINT NOT NULL,
    latency_hist    BYTEA  NOT NULL,
    PRIMARY KEY (minute_ms, server_name, tool, status)
);

CREATE TABLE tool_calls_1h (
    hour_ms         BIGINT NOT NULL,
    server_name     TEXT COLLATE "C" NOT NULL,
    tool            TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    error_type      TEXT COLLATE "C" NOT NULL,
    calls           BIGINT NOT NULL,
    duration_us_sum BIGINT NOT NULL,
    duration_us_max BIGINT NOT NULL,
    latency_hist    BYTEA  NOT NULL,
    users_hll       BYTEA  NOT NULL,
    sessions_hll    BYTEA  NOT NULL,
    PRIMARY KEY (hour_ms, server_name, tool, status, error_type)
);

CREATE TABLE user_calls_1h (
    hour_ms BIGINT NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    calls   BIGINT NOT NULL,
    errors  BIGINT NOT NULL,
    PRIMARY KEY (hour_ms, user_id)
);

CREATE TABLE user_details (
    user_id TEXT COLLATE "C" PRIMARY KEY,
    email   TEXT,
    name    TEXT
);

CREATE TABLE recorder_stats (
    host        TEXT   NOT NULL,
    pid         BIGINT NOT NULL,
    ts_ms       BIGINT NOT NULL,
    recorded    BIGINT NOT NULL,
    dropped     BIGINT NOT NULL,
    written     BIGINT NOT NULL,
    sink_errors BIGINT NOT NULL,
    PRIMARY KEY (host, pid)
);
"#,
    // A rollup per quarter hour, written with the per-minute one, so that a day's overview
    // reads a fifteenth of the rows. Hours it lacks (before it existed, or written by a replica
    // of an older version meanwhile) are read from `tool_calls_1m`.
    r#"
CREATE TABLE tool_calls_15m (
    quarter_ms      BIGINT NOT NULL,
    server_name     TEXT COLLATE "C" NOT NULL,
    tool            TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    calls           BIGINT NOT NULL,
    duration_us_sum BIGINT NOT NULL,
    duration_us_max BIGINT NOT NULL,
    latency_hist    BYTEA  NOT NULL,
    PRIMARY KEY (quarter_ms, server_name, tool, status)
);
"#,
    // Every request other than `tools/call`, and its rollups.
    r#"
CREATE TABLE requests (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    ts_ms               BIGINT NOT NULL,
    server_name         TEXT COLLATE "C" NOT NULL,
    server_version      TEXT   NOT NULL,
    method              TEXT COLLATE "C" NOT NULL,
    target              TEXT COLLATE "C",
    user_id             TEXT COLLATE "C",
    session_id          TEXT COLLATE "C",
    client_name         TEXT,
    client_version      TEXT,
    protocol_version    TEXT,
    transport           TEXT   NOT NULL,
    request_id          TEXT,
    duration_us         BIGINT NOT NULL,
    status              TEXT COLLATE "C" NOT NULL,
    error_type          TEXT COLLATE "C",
    error_message       TEXT,
    client_capabilities TEXT
);
CREATE INDEX requests_ts ON requests (ts_ms);
CREATE INDEX requests_session ON requests (session_id, ts_ms);

CREATE TABLE requests_1m (
    minute_ms       BIGINT NOT NULL,
    server_name     TEXT COLLATE "C" NOT NULL,
    method          TEXT COLLATE "C" NOT NULL,
    target          TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    calls           BIGINT NOT NULL,
    duration_us_sum BIGINT NOT NULL,
    duration_us_max BIGINT NOT NULL,
    latency_hist    BYTEA  NOT NULL,
    PRIMARY KEY (minute_ms, server_name, method, target, status)
);

CREATE TABLE requests_1h (
    hour_ms         BIGINT NOT NULL,
    server_name     TEXT COLLATE "C" NOT NULL,
    method          TEXT COLLATE "C" NOT NULL,
    target          TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    calls           BIGINT NOT NULL,
    duration_us_sum BIGINT NOT NULL,
    duration_us_max BIGINT NOT NULL,
    latency_hist    BYTEA  NOT NULL,
    sessions_hll    BYTEA  NOT NULL,
    PRIMARY KEY (hour_ms, server_name, method, target, status)
);
"#,
    // Sessions of sessionless callers (see `store::sessions`).
    r#"
CREATE TABLE session_keys (
    key        TEXT COLLATE "C" PRIMARY KEY,
    session_id TEXT COLLATE "C" NOT NULL,
    last_ms    BIGINT NOT NULL
);
CREATE INDEX session_keys_last ON session_keys (last_ms);
"#,
    // Calls per hour by client (name, version, protocol version) and status, and by tool for
    // unknown tools only (every tool times every client version would multiply the rows), for the
    // per-client views and the missing tools. Hours stored before have none (PostgreSQL keeps
    // no `rollup_dirty` to rebuild them from). And the servers' tool catalogues.
    r#"
CREATE TABLE client_calls_1h (
    hour_ms          BIGINT NOT NULL,
    server_name      TEXT COLLATE "C" NOT NULL,
    unknown_tool     TEXT COLLATE "C" NOT NULL,
    client_name      TEXT COLLATE "C" NOT NULL,
    client_version   TEXT COLLATE "C" NOT NULL,
    protocol_version TEXT COLLATE "C" NOT NULL,
    status           TEXT COLLATE "C" NOT NULL,
    calls            BIGINT NOT NULL,
    duration_us_sum  BIGINT NOT NULL,
    duration_us_max  BIGINT NOT NULL,
    latency_hist     BYTEA  NOT NULL,
    sessions_hll     BYTEA  NOT NULL,
    PRIMARY KEY (hour_ms, server_name, unknown_tool, client_name, client_version, protocol_version, status)
);

CREATE INDEX tool_calls_invalid_params ON tool_calls (status, ts_ms) WHERE status = 'invalid_params';

CREATE TABLE tool_catalog (
    server_name    TEXT COLLATE "C" NOT NULL,
    server_version TEXT COLLATE "C" NOT NULL,
    recorded_ms    BIGINT NOT NULL,
    list_bytes     BIGINT NOT NULL,
    list_tokens    BIGINT NOT NULL,
    tools          TEXT   NOT NULL,
    PRIMARY KEY (server_name, server_version)
);
"#,
    // Alerts (see `alerts`): calls per minute by session, tool and arguments' fingerprint,
    // written in the rows' transaction, for the runaway-loop rule; and each rule's state per
    // subject, whose transitions replicas take by compare-and-set.
    r#"
CREATE TABLE tool_loops_1m (
    minute_ms   BIGINT NOT NULL,
    server_name TEXT COLLATE "C" NOT NULL,
    session_id  TEXT COLLATE "C" NOT NULL,
    tool        TEXT COLLATE "C" NOT NULL,
    args_fp     BIGINT NOT NULL,
    calls       BIGINT NOT NULL,
    PRIMARY KEY (minute_ms, server_name, session_id, tool, args_fp)
);

CREATE TABLE alert_state (
    rule             TEXT COLLATE "C" NOT NULL,
    subject          TEXT COLLATE "C" NOT NULL,
    kind             TEXT   NOT NULL,
    server_name      TEXT   NOT NULL,
    tool             TEXT,
    session_id       TEXT,
    status           TEXT COLLATE "C" NOT NULL,
    since_ms         BIGINT NOT NULL,
    started_ms       BIGINT NOT NULL,
    value            DOUBLE PRECISION NOT NULL,
    summary          TEXT   NOT NULL,
    evaluated_ms     BIGINT NOT NULL,
    delivered        BIGINT NOT NULL,
    claimed_until_ms BIGINT NOT NULL,
    notified_ms      BIGINT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    PRIMARY KEY (rule, subject)
);
"#,
];

/// Upserts a `session_keys` row (see `SessionTable::upsert`): `$4` take, `$5` the idle gap.
pub(super) const UPSERT_SESSION_KEY: &str = "INSERT INTO session_keys (key, session_id, last_ms) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET session_id = CASE WHEN $4 OR session_keys.last_ms < excluded.last_ms - $5 THEN excluded.session_id ELSE session_keys.session_id END, last_ms = CASE WHEN $4 AND session_keys.session_id <> excluded.session_id THEN excluded.last_ms ELSE greatest(session_keys.last_ms, excluded.last_ms) END RETURNING session_id";

/// The columns a batch is copied with, in order (those of `tool_calls`).
pub(super) const CALL_COLUMNS: &str = "id, ts_ms, server_name, server_version, tool, user_id, session_id, client_name, client_version, protocol_version, transport, request_id, duration_us, status, error_type, error_message, params, result, user_email, user_name";

/// The session's staging tables batches are copied into (emptied by every commit).
pub(super) const CREATE_STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS tool_calls_staging (LIKE tool_calls) ON COMMIT DELETE ROWS; CREATE TEMP TABLE IF NOT EXISTS requests_staging (LIKE requests) ON COMMIT DELETE ROWS";

/// The columns a batch of requests is copied with, in order (those of `requests`).
pub(super) const REQUEST_COLUMNS: &str = "id, ts_ms, server_name, server_version, method, target, user_id, session_id, client_name, client_version, protocol_version, transport, request_id, duration_us, status, error_type, error_message, client_capabilities";

/// The staged requests not stored yet, in id order; answers the ids stored.
pub(super) const INSERT_STAGED_REQUESTS: &str = "INSERT INTO requests SELECT * FROM requests_staging ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id";

/// The staged rows not stored yet, in id order (so concurrent writers of one batch take the
/// ids' locks in one order); answers the ids stored.
pub(super) const INSERT_STAGED: &str = "INSERT INTO tool_calls SELECT * FROM tool_calls_staging ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id";

/// Adds hourly per-user counts (`$1` hours, `$2` users, `$3` calls, `$4` errors), in key order.
pub(super) const UPSERT_USERS: &str = "INSERT INTO user_calls_1h (hour_ms, user_id, calls, errors) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[]) AS v(hour_ms, user_id, calls, errors) ORDER BY hour_ms, user_id ON CONFLICT (hour_ms, user_id) DO UPDATE SET calls = user_calls_1h.calls + excluded.calls, errors = user_calls_1h.errors + excluded.errors";

/// The latest email and name of users (`$1` users, `$2` emails, `$3` names); a detail a call
/// did not carry is kept.
pub(super) const UPSERT_DETAILS: &str = "INSERT INTO user_details (user_id, email, name) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS v(user_id, email, name) ORDER BY user_id ON CONFLICT (user_id) DO UPDATE SET email = coalesce(excluded.email, user_details.email), name = coalesce(excluded.name, user_details.name)";

/// Adds calls per minute, session, tool and arguments (`$1` minutes, `$2` servers, `$3`
/// sessions, `$4` tools, `$5` fingerprints, `$6` calls), in key order.
pub(super) const UPSERT_LOOPS: &str = "INSERT INTO tool_loops_1m (minute_ms, server_name, session_id, tool, args_fp, calls) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) AS v(minute_ms, server_name, session_id, tool, args_fp, calls) ORDER BY minute_ms, server_name, session_id, tool, args_fp ON CONFLICT (minute_ms, server_name, session_id, tool, args_fp) DO UPDATE SET calls = tool_loops_1m.calls + excluded.calls";

/// This process's pipeline counters.
pub(super) const UPSERT_STATS: &str = "INSERT INTO recorder_stats (host, pid, ts_ms, recorded, dropped, written, sink_errors) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (host, pid) DO UPDATE SET ts_ms = excluded.ts_ms, recorded = excluded.recorded, dropped = excluded.dropped, written = excluded.written, sink_errors = excluded.sink_errors";
