//! The SQLite database's schema (the public one documented in the `store` module): one ordered
//! list of migrations for the analytics tables and the payment tables, and the analytics'
//! statements.

// Without the `sqlite` feature only the payment tables are used.
#![cfg_attr(not(feature = "sqlite"), allow(dead_code))]

/// Migrations of the database (the analytics and the payment tables), applied in order;
/// `PRAGMA user_version` records how many ran.
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
    r#"
CREATE TABLE user_details (
    user_id TEXT PRIMARY KEY,
    email   TEXT,
    name    TEXT
) WITHOUT ROWID;

INSERT INTO user_details (user_id, email, name)
    SELECT user_id, user_email, user_name FROM (
        SELECT user_id, user_email, user_name, max(ts_ms) FROM tool_calls
        WHERE user_id IS NOT NULL AND (user_email IS NOT NULL OR user_name IS NOT NULL)
        GROUP BY user_id
    );
"#,
    // Hours whose hourly rollups a writer holds in memory (see `aggregate`). Every hour of an
    // existing database starts listed, so the first start checks them all once.
    r#"
CREATE TABLE rollup_dirty (
    hour_ms INTEGER PRIMARY KEY
);

INSERT INTO rollup_dirty (hour_ms) SELECT DISTINCT ts_ms - ts_ms % 3600000 FROM tool_calls;
"#,
    // The payment tables (used by `payments`). Databases from before migrations were applied to
    // them may hold them already (see `legacy_payment_columns`).
    r#"
CREATE TABLE IF NOT EXISTS payment_customers (
    user_id     TEXT    PRIMARY KEY,
    customer_id TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS payment_checkouts (
    session_id     TEXT    PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    tool           TEXT    NOT NULL,
    price_key      TEXT    NOT NULL,
    mode           TEXT    NOT NULL,
    url            TEXT,
    status         TEXT    NOT NULL,
    amount         INTEGER,
    currency       TEXT,
    expires_ms     INTEGER NOT NULL,
    created_ms     INTEGER NOT NULL,
    fulfilled      INTEGER NOT NULL DEFAULT 0,
    payment_intent TEXT,
    granted        TEXT,
    refunded       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS payment_checkouts_user ON payment_checkouts (user_id, price_key, status);
CREATE INDEX IF NOT EXISTS payment_checkouts_payment ON payment_checkouts (payment_intent);

CREATE TABLE IF NOT EXISTS payment_entitlements (
    user_id             TEXT    NOT NULL,
    price_key           TEXT    NOT NULL,
    credits             INTEGER NOT NULL DEFAULT 0,
    unlimited           INTEGER NOT NULL DEFAULT 0,
    subscription_id     TEXT,
    subscription_status TEXT,
    checked_ms          INTEGER NOT NULL,
    PRIMARY KEY (user_id, price_key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS payment_subscriptions (
    subscription_id TEXT    PRIMARY KEY,
    user_id         TEXT,
    tool            TEXT,
    status          TEXT    NOT NULL,
    updated_ms      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS payment_events (
    id        INTEGER PRIMARY KEY,
    ts_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    user_id   TEXT,
    tool      TEXT,
    amount    INTEGER,
    currency  TEXT,
    reference TEXT,
    detail    TEXT
);
CREATE INDEX IF NOT EXISTS payment_events_ts ON payment_events (ts_ms);

CREATE TABLE IF NOT EXISTS meter_outbox (
    identifier      TEXT    PRIMARY KEY,
    event_name      TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    user_id         TEXT,
    tool            TEXT,
    value           INTEGER NOT NULL,
    ts_s            INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS meter_outbox_due ON meter_outbox (state, next_attempt_ms);

CREATE TABLE IF NOT EXISTS stripe_webhook_events (
    event_id    TEXT    PRIMARY KEY,
    type        TEXT    NOT NULL,
    received_ms INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // The payments core: a checkout's payment status (delayed methods), how a purchase was
    // taken back (so a won dispute restores it), the prices each subscription covers, usage
    // once given up on retried again (nothing is refused for good any more), and refunds or
    // disputes that arrived before their purchase.
    r#"
ALTER TABLE payment_checkouts ADD COLUMN payment_status TEXT;
ALTER TABLE payment_checkouts ADD COLUMN taken_back TEXT;
ALTER TABLE payment_checkouts ADD COLUMN taken_credits INTEGER;
UPDATE payment_checkouts SET payment_status = 'paid' WHERE fulfilled = 1;
-- How many credits the old release took back is unknown: a won dispute returns none.
UPDATE payment_checkouts SET taken_back = CASE
    WHEN EXISTS (SELECT 1 FROM payment_events e WHERE e.kind = 'disputed' AND e.detail = payment_checkouts.session_id)
    THEN 'disputed' ELSE 'refunded' END,
    taken_credits = 0
    WHERE refunded = 1;

ALTER TABLE payment_subscriptions ADD COLUMN prices TEXT;
INSERT OR IGNORE INTO payment_subscriptions (subscription_id, user_id, status, updated_ms)
    SELECT subscription_id, min(user_id), min(subscription_status), max(checked_ms) FROM payment_entitlements
    WHERE subscription_id IS NOT NULL AND subscription_status IS NOT NULL GROUP BY subscription_id;
UPDATE payment_subscriptions SET prices = (
    SELECT group_concat(price_key, '+') FROM (
        SELECT DISTINCT price_key FROM payment_entitlements e
        WHERE e.subscription_id = payment_subscriptions.subscription_id ORDER BY price_key));
CREATE INDEX payment_subscriptions_user ON payment_subscriptions (user_id);

UPDATE meter_outbox SET state = 'pending', next_attempt_ms = 0 WHERE state = 'failed';

CREATE TABLE payment_reversals_held (
    reversal_id    TEXT    PRIMARY KEY,
    kind           TEXT    NOT NULL,
    payment_intent TEXT    NOT NULL,
    amount         INTEGER NOT NULL,
    currency       TEXT    NOT NULL,
    received_ms    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX payment_reversals_held_payment ON payment_reversals_held (payment_intent);
"#,
    // A rollup per quarter hour, written with the per-minute one, so that a day's overview
    // reads a fifteenth of the rows. Hours before it existed are read from `tool_calls_1m`.
    r#"
CREATE TABLE tool_calls_15m (
    quarter_ms      INTEGER NOT NULL,
    server_name     TEXT    NOT NULL,
    tool            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    calls           INTEGER NOT NULL,
    duration_us_sum INTEGER NOT NULL,
    duration_us_max INTEGER NOT NULL,
    latency_hist    BLOB    NOT NULL,
    PRIMARY KEY (quarter_ms, server_name, tool, status)
) WITHOUT ROWID;
"#,
    // Every request other than `tools/call`, and its rollups (written with the rows).
    r#"
CREATE TABLE requests (
    id                  TEXT    NOT NULL UNIQUE,
    ts_ms               INTEGER NOT NULL,
    server_name         TEXT    NOT NULL,
    server_version      TEXT    NOT NULL,
    method              TEXT    NOT NULL,
    target              TEXT,
    user_id             TEXT,
    session_id          TEXT,
    client_name         TEXT,
    client_version      TEXT,
    protocol_version    TEXT,
    transport           TEXT    NOT NULL,
    request_id          TEXT,
    duration_us         INTEGER NOT NULL,
    status              TEXT    NOT NULL,
    error_type          TEXT,
    error_message       TEXT,
    client_capabilities TEXT
);
CREATE INDEX requests_ts ON requests (ts_ms);
CREATE INDEX requests_session ON requests (session_id, ts_ms);

CREATE TABLE requests_1m (
    minute_ms       INTEGER NOT NULL,
    server_name     TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    calls           INTEGER NOT NULL,
    duration_us_sum INTEGER NOT NULL,
    duration_us_max INTEGER NOT NULL,
    latency_hist    BLOB    NOT NULL,
    PRIMARY KEY (minute_ms, server_name, method, target, status)
) WITHOUT ROWID;

CREATE TABLE requests_1h (
    hour_ms         INTEGER NOT NULL,
    server_name     TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    calls           INTEGER NOT NULL,
    duration_us_sum INTEGER NOT NULL,
    duration_us_max INTEGER NOT NULL,
    latency_hist    BLOB    NOT NULL,
    sessions_hll    BLOB    NOT NULL,
    PRIMARY KEY (hour_ms, server_name, method, target, status)
) WITHOUT ROWID;
"#,
    // Sessions of sessionless callers (see `store::sessions`): a row per caller key and per
    // W3C trace id, with its session and its last call.
    r#"
CREATE TABLE session_keys (
    key        TEXT    PRIMARY KEY,
    session_id TEXT    NOT NULL,
    last_ms    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX session_keys_last ON session_keys (last_ms);
"#,
    // Calls per hour by client (name, version, protocol version) and status, and by tool for
    // unknown tools only (every tool times every client version would multiply the rows), for the
    // per-client views and the missing tools; hours stored before are listed in
    // `rollup_dirty` so the next writer rebuilds them from their rows (see `aggregate`). And
    // the servers' tool catalogues (their context cost).
    r#"
CREATE TABLE client_calls_1h (
    hour_ms          INTEGER NOT NULL,
    server_name      TEXT    NOT NULL,
    unknown_tool     TEXT    NOT NULL,
    client_name      TEXT    NOT NULL,
    client_version   TEXT    NOT NULL,
    protocol_version TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    calls            INTEGER NOT NULL,
    duration_us_sum  INTEGER NOT NULL,
    duration_us_max  INTEGER NOT NULL,
    latency_hist     BLOB    NOT NULL,
    sessions_hll     BLOB    NOT NULL,
    PRIMARY KEY (hour_ms, server_name, unknown_tool, client_name, client_version, protocol_version, status)
) WITHOUT ROWID;

INSERT OR IGNORE INTO rollup_dirty (hour_ms) SELECT DISTINCT ts_ms - ts_ms % 3600000 FROM tool_calls;

-- The calls whose arguments did not deserialize, for the tool-quality report.
CREATE INDEX tool_calls_invalid_params ON tool_calls (status, ts_ms) WHERE status = 'invalid_params';

-- Each server version's tool catalogue as measured at its latest start (see `catalog`).
CREATE TABLE tool_catalog (
    server_name    TEXT    NOT NULL,
    server_version TEXT    NOT NULL,
    recorded_ms    INTEGER NOT NULL,
    list_bytes     INTEGER NOT NULL,
    list_tokens    INTEGER NOT NULL,
    tools          TEXT    NOT NULL,
    PRIMARY KEY (server_name, server_version)
) WITHOUT ROWID;
"#,
    // Alerts (see `alerts`): calls per minute by session, tool and arguments (a fingerprint of
    // their redacted text), written with the rows, for the runaway-loop rule; and each rule's
    // state per subject, whose transitions replicas take by compare-and-set.
    r#"
CREATE TABLE tool_loops_1m (
    minute_ms   INTEGER NOT NULL,
    server_name TEXT    NOT NULL,
    session_id  TEXT    NOT NULL,
    tool        TEXT    NOT NULL,
    args_fp     INTEGER NOT NULL,
    calls       INTEGER NOT NULL,
    PRIMARY KEY (minute_ms, server_name, session_id, tool, args_fp)
) WITHOUT ROWID;

CREATE TABLE alert_state (
    rule             TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    server_name      TEXT    NOT NULL,
    tool             TEXT,
    session_id       TEXT,
    status           TEXT    NOT NULL,
    since_ms         INTEGER NOT NULL,
    started_ms       INTEGER NOT NULL,
    value            REAL    NOT NULL,
    summary          TEXT    NOT NULL,
    evaluated_ms     INTEGER NOT NULL,
    delivered        INTEGER NOT NULL,
    claimed_until_ms INTEGER NOT NULL,
    notified_ms      INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    PRIMARY KEY (rule, subject)
) WITHOUT ROWID;
"#,
];

/// Brings the database at `connection` up to the last migration, one transaction each (taken
/// with the write lock, so two processes opening one file at once apply each migration once).
#[cfg(feature = "sqlite")]
pub(crate) fn migrate(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    loop {
        let transaction = rusqlite::Transaction::new_unchecked(
            connection,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let mut version: i64 =
            transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version == 0 && has_table(&transaction, "tool_calls")? {
            // Tables without a version: a database imported from Cloudflare D1, which refuses
            // `PRAGMA user_version` (see `d1::migration`).
            version = unversioned(&transaction)?;
            transaction.pragma_update(None, "user_version", version)?;
        }
        let Some(migration) = usize::try_from(version)
            .ok()
            .and_then(|applied| MIGRATIONS.get(applied))
        else {
            return transaction.commit();
        };
        if version + 1 == PAYMENT_TABLES {
            legacy_payment_columns(&transaction)?;
        }
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", version + 1)?;
        transaction.commit()?;
    }
}

#[cfg(feature = "sqlite")]
fn has_table(connection: &rusqlite::Connection, name: &str) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get(0),
    )
}

/// The tables, indexes and columns of a database, by name, leaving out those SQLite, D1 and
/// wrangler keep (`sqlite_*`, `_cf_*`, `d1_migrations`).
#[cfg(feature = "sqlite")]
fn shape(connection: &rusqlite::Connection) -> rusqlite::Result<Vec<(String, String, String)>> {
    connection
        .prepare(
            "SELECT m.type, m.name, coalesce(group_concat(c.name || ' ' || c.type || ' ' || c.\"notnull\" || ' ' || c.pk, ', '), '') \
             FROM sqlite_master AS m LEFT JOIN pragma_table_info(m.name) AS c ON m.type = 'table' \
             WHERE m.type IN ('table', 'index') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
               AND m.name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND m.name <> 'd1_migrations' \
             GROUP BY m.type, m.name ORDER BY m.type, m.name",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect()
}

/// How many migrations made the tables of a database that records no version: the count whose
/// schema has exactly its tables, indexes and columns. A database matching none is refused
/// rather than migrated over tables of unknown shape.
#[cfg(feature = "sqlite")]
fn unversioned(connection: &rusqlite::Connection) -> rusqlite::Result<i64> {
    let found = shape(connection)?;
    let reference = rusqlite::Connection::open_in_memory()?;
    let mut matched = None;
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        reference.execute_batch(migration)?;
        if shape(&reference)? == found {
            matched = Some(index + 1);
        }
    }
    matched.map(|count| count as i64).ok_or_else(|| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(
                "the database has analytics tables but no schema version, and they match no \
                 version of this mcp-analytics's schema"
                    .into(),
            ),
        )
    })
}

/// The migration that creates the payment tables.
#[cfg(feature = "sqlite")]
const PAYMENT_TABLES: i64 = 7;

/// Payment tables made before they had migrations lack columns added since: added here, so
/// that migration 7 finds them in its shape.
#[cfg(feature = "sqlite")]
fn legacy_payment_columns(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    for (column, definition) in [
        ("payment_intent", "TEXT"),
        ("granted", "TEXT"),
        ("refunded", "INTEGER NOT NULL DEFAULT 0"),
    ] {
        let (table, present): (bool, bool) = connection.query_row(
            "SELECT (SELECT count(*) FROM sqlite_master WHERE name = 'payment_checkouts') > 0, (SELECT count(*) FROM pragma_table_info('payment_checkouts') WHERE name = ?1) > 0",
            [column],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        if table && !present {
            connection.execute_batch(&format!(
                "ALTER TABLE payment_checkouts ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    Ok(())
}

/// SQL for "this status is an error" (kept in step with `Status::is_error`).
pub(crate) const IS_ERROR: &str = "status NOT IN ('ok', 'input_required', 'payment_required')";

/// SQL for "this request status is an error" (kept in step with `RequestStatus::is_error`).
pub(crate) const REQUEST_IS_ERROR: &str = "status NOT IN ('ok', 'payment_required')";

pub(crate) const INSERT_REQUEST: &str = "INSERT OR IGNORE INTO requests (id, ts_ms, server_name, server_version, method, target, user_id, session_id, client_name, client_version, protocol_version, transport, request_id, duration_us, status, error_type, error_message, client_capabilities) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

pub(crate) const UPSERT_REQUEST_MINUTE: &str = "INSERT INTO requests_1m (minute_ms, server_name, method, target, status, calls, duration_us_sum, duration_us_max, latency_hist) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (minute_ms, server_name, method, target, status) DO UPDATE SET calls = calls + excluded.calls, duration_us_sum = duration_us_sum + excluded.duration_us_sum, duration_us_max = max(duration_us_max, excluded.duration_us_max), latency_hist = hist_merge(latency_hist, excluded.latency_hist)";

pub(crate) const UPSERT_REQUEST_HOUR: &str = "INSERT INTO requests_1h (hour_ms, server_name, method, target, status, calls, duration_us_sum, duration_us_max, latency_hist, sessions_hll) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (hour_ms, server_name, method, target, status) DO UPDATE SET calls = calls + excluded.calls, duration_us_sum = duration_us_sum + excluded.duration_us_sum, duration_us_max = max(duration_us_max, excluded.duration_us_max), latency_hist = hist_merge(latency_hist, excluded.latency_hist), sessions_hll = hll_merge(sessions_hll, excluded.sessions_hll)";

pub(crate) const INSERT_CALL: &str = "INSERT OR IGNORE INTO tool_calls (id, ts_ms, server_name, server_version, tool, user_id, session_id, client_name, client_version, protocol_version, transport, request_id, duration_us, status, error_type, error_message, params, result, user_email, user_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";

/// Adds one row to a rollup per time bucket, server, tool and status: `table` with its bucket
/// start in column `time`.
pub(crate) fn upsert_bucket(table: &str, time: &str) -> String {
    format!(
        "INSERT INTO {table} ({time}, server_name, tool, status, calls, duration_us_sum, duration_us_max, latency_hist) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT ({time}, server_name, tool, status) DO UPDATE SET calls = calls + excluded.calls, duration_us_sum = duration_us_sum + excluded.duration_us_sum, duration_us_max = max(duration_us_max, excluded.duration_us_max), latency_hist = hist_merge(latency_hist, excluded.latency_hist)"
    )
}

/// Adds calls to `tool_loops_1m`.
pub(crate) const UPSERT_LOOPS: &str = "INSERT INTO tool_loops_1m (minute_ms, server_name, session_id, tool, args_fp, calls) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (minute_ms, server_name, session_id, tool, args_fp) DO UPDATE SET calls = calls + excluded.calls";

pub(crate) const UPSERT_STATS: &str = "INSERT INTO recorder_stats (ts_ms, pid, recorded, dropped, written, sink_errors) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (pid) DO UPDATE SET ts_ms = excluded.ts_ms, recorded = excluded.recorded, dropped = excluded.dropped, written = excluded.written, sink_errors = excluded.sink_errors";

pub(crate) const UPSERT_HOURLY: &str = "INSERT INTO tool_calls_1h (hour_ms, server_name, tool, status, error_type, calls, duration_us_sum, duration_us_max, latency_hist, users_hll, sessions_hll) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (hour_ms, server_name, tool, status, error_type) DO UPDATE SET calls = calls + excluded.calls, duration_us_sum = duration_us_sum + excluded.duration_us_sum, duration_us_max = max(duration_us_max, excluded.duration_us_max), latency_hist = hist_merge(latency_hist, excluded.latency_hist), users_hll = hll_merge(users_hll, excluded.users_hll), sessions_hll = hll_merge(sessions_hll, excluded.sessions_hll)";

pub(crate) const UPSERT_USER: &str = "INSERT INTO user_calls_1h (hour_ms, user_id, calls, errors) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (hour_ms, user_id) DO UPDATE SET calls = calls + excluded.calls, errors = errors + excluded.errors";

/// The latest email and name seen for a user; a detail a call did not carry is kept.
pub(crate) const UPSERT_USER_DETAILS: &str = "INSERT INTO user_details (user_id, email, name) VALUES (?1, ?2, ?3) ON CONFLICT (user_id) DO UPDATE SET email = coalesce(excluded.email, email), name = coalesce(excluded.name, name)";

/// Adds one row to `client_calls_1h`.
pub(crate) const UPSERT_CLIENT_HOURLY: &str = "INSERT INTO client_calls_1h (hour_ms, server_name, unknown_tool, client_name, client_version, protocol_version, status, calls, duration_us_sum, duration_us_max, latency_hist, sessions_hll) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (hour_ms, server_name, unknown_tool, client_name, client_version, protocol_version, status) DO UPDATE SET calls = calls + excluded.calls, duration_us_sum = duration_us_sum + excluded.duration_us_sum, duration_us_max = max(duration_us_max, excluded.duration_us_max), latency_hist = hist_merge(latency_hist, excluded.latency_hist), sessions_hll = hll_merge(sessions_hll, excluded.sessions_hll)";
