-- mcp-analytics: the analytics and payment tables on Cloudflare D1.
-- Generated from the native schema's migrations: regenerate with
-- MCP_ANALYTICS_BLESS=1 cargo test -p mcp-analytics --lib d1::tests::the_committed_d1_migration

-- Migration 1
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

-- Migration 2
CREATE INDEX tool_calls_session ON tool_calls (session_id, ts_ms);

-- Migration 3
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

-- Migration 4
ALTER TABLE tool_calls ADD COLUMN user_email TEXT;
ALTER TABLE tool_calls ADD COLUMN user_name TEXT;

-- Migration 5
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

-- Migration 6
CREATE TABLE rollup_dirty (
    hour_ms INTEGER PRIMARY KEY
);

INSERT INTO rollup_dirty (hour_ms) SELECT DISTINCT ts_ms - ts_ms % 3600000 FROM tool_calls;

-- Migration 7
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

-- Migration 8
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

-- Migration 9
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

-- Migration 10
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

-- Migration 11
CREATE TABLE session_keys (
    key        TEXT    PRIMARY KEY,
    session_id TEXT    NOT NULL,
    last_ms    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX session_keys_last ON session_keys (last_ms);

-- Migration 12
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

-- Migration 13
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
