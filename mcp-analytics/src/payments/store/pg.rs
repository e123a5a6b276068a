//! The payment tables on PostgreSQL (feature `postgres`): the same tables as on SQLite, plus
//! what several replicas need to share — credit reservations with a lease, the local test
//! provider's checkout sessions, and claims on meter events.

pub(crate) mod checkouts;
pub(crate) mod holdings;
pub(crate) mod records;

use deadpool_postgres::Pool;

use crate::database::PostgresUrl;

/// The payments' migrations on PostgreSQL, applied in order (component `payments` in
/// `mcp_analytics_migrations`).
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE payment_customers (
    user_id     TEXT   PRIMARY KEY,
    customer_id TEXT   NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE payment_checkouts (
    session_id     TEXT    PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    tool           TEXT    NOT NULL,
    price_key      TEXT    NOT NULL,
    mode           TEXT    NOT NULL,
    url            TEXT,
    status         TEXT    NOT NULL,
    amount         BIGINT,
    currency       TEXT,
    expires_ms     BIGINT  NOT NULL,
    created_ms     BIGINT  NOT NULL,
    fulfilled      BOOLEAN NOT NULL DEFAULT FALSE,
    payment_intent TEXT,
    granted        TEXT,
    payment_status TEXT,
    taken_back     TEXT,
    taken_credits  BIGINT
);
CREATE INDEX payment_checkouts_user ON payment_checkouts (user_id, price_key, status);
CREATE INDEX payment_checkouts_payment ON payment_checkouts (payment_intent);

CREATE TABLE payment_entitlements (
    user_id             TEXT    NOT NULL,
    price_key           TEXT    NOT NULL,
    credits             BIGINT  NOT NULL DEFAULT 0,
    unlimited           BOOLEAN NOT NULL DEFAULT FALSE,
    subscription_id     TEXT,
    subscription_status TEXT,
    checked_ms          BIGINT  NOT NULL,
    PRIMARY KEY (user_id, price_key)
);

-- A credit reserved by a running call on some replica: `credits` above still counts it, and
-- the credits free to reserve are those not reserved by a live lease. Using it deletes the row
-- and the credit; a failed call deletes the row (the credit is free again); a row whose lease
-- ran out (its replica died) frees its credit too.
CREATE TABLE payment_reservations (
    reservation_id TEXT   PRIMARY KEY,
    user_id        TEXT   NOT NULL,
    price_key      TEXT   NOT NULL,
    replica        TEXT   NOT NULL,
    lease_until_ms BIGINT NOT NULL
);
CREATE INDEX payment_reservations_lease ON payment_reservations (lease_until_ms);

CREATE TABLE payment_subscriptions (
    subscription_id TEXT   PRIMARY KEY,
    user_id         TEXT,
    tool            TEXT,
    status          TEXT   NOT NULL,
    updated_ms      BIGINT NOT NULL,
    prices          TEXT
);
CREATE INDEX payment_subscriptions_user ON payment_subscriptions (user_id);

CREATE TABLE payment_events (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts_ms     BIGINT NOT NULL,
    kind      TEXT   NOT NULL,
    user_id   TEXT,
    tool      TEXT,
    amount    BIGINT,
    currency  TEXT,
    reference TEXT,
    detail    TEXT
);
CREATE INDEX payment_events_ts ON payment_events (ts_ms);

-- Meter events waiting for delivery. A replica sending one holds a claim until
-- `claim_until_ms`; a claim left by a dead replica runs out and another takes the row over.
CREATE TABLE meter_outbox (
    identifier      TEXT   PRIMARY KEY,
    event_name      TEXT   NOT NULL,
    customer_id     TEXT   NOT NULL,
    user_id         TEXT,
    tool            TEXT,
    value           BIGINT NOT NULL,
    ts_s            BIGINT NOT NULL,
    state           TEXT   NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_error      TEXT,
    claimed_by      TEXT,
    claim_until_ms  BIGINT
);
CREATE INDEX meter_outbox_due ON meter_outbox (state, next_attempt_ms);

CREATE TABLE stripe_webhook_events (
    event_id    TEXT   PRIMARY KEY,
    type        TEXT   NOT NULL,
    received_ms BIGINT NOT NULL
);

CREATE TABLE payment_reversals_held (
    reversal_id    TEXT   PRIMARY KEY,
    kind           TEXT   NOT NULL,
    payment_intent TEXT   NOT NULL,
    amount         BIGINT NOT NULL,
    currency       TEXT   NOT NULL,
    received_ms    BIGINT NOT NULL
);
CREATE INDEX payment_reversals_held_payment ON payment_reversals_held (payment_intent);

-- The local test provider's checkout sessions, so that `/pay/{id}` works on every replica.
CREATE TABLE payment_local_sessions (
    session_id TEXT   PRIMARY KEY,
    session    TEXT   NOT NULL,
    created_ms BIGINT NOT NULL
);
"#,
    // The local test provider's subscriptions beside its sessions, both found by customer;
    // reservations found by user and key.
    r#"
ALTER TABLE payment_local_sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'checkout';
ALTER TABLE payment_local_sessions ADD COLUMN customer TEXT;
CREATE INDEX payment_local_sessions_customer ON payment_local_sessions (customer, kind);
CREATE INDEX payment_reservations_user ON payment_reservations (user_id, price_key);
"#,
    // A credit used, by its reservation, kept as long as a lease: using it again (a retry after
    // an error whose transaction had committed) finds it here and uses nothing more.
    r#"
CREATE TABLE payment_credits_used (
    reservation_id TEXT   PRIMARY KEY,
    until_ms       BIGINT NOT NULL
);
CREATE INDEX payment_credits_used_until ON payment_credits_used (until_ms);
"#,
];

/// The payment tables in one PostgreSQL database, shared by every replica.
#[derive(Clone)]
pub(crate) struct PgPayments {
    pub(crate) url: PostgresUrl,
    pub(crate) pool: Pool,
}

impl PgPayments {
    /// Brings the payment tables at `url` up to date and makes a pool for them (connected on
    /// first use).
    pub(crate) fn open(url: &PostgresUrl) -> Result<Self, crate::Error> {
        crate::postgres::migrate_blocking(url, "payments", MIGRATIONS)?;
        Ok(Self {
            url: url.clone(),
            pool: crate::postgres::pool(url, 16)?,
        })
    }
}
