//! The payment tables in the analytics database: who is which Stripe customer, what each user
//! bought, open checkouts, the meter-event outbox, seen webhooks and `payment_events` (the
//! documented analytics table). Only the payments module writes them.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

/// Columns added after the first release: `(table, column, definition)`, added to older
/// databases when missing.
const ADDED_COLUMNS: [(&str, &str, &str); 3] = [
    ("payment_checkouts", "payment_intent", "TEXT"),
    ("payment_checkouts", "granted", "TEXT"),
    (
        "payment_checkouts",
        "refunded",
        "INTEGER NOT NULL DEFAULT 0",
    ),
];

fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, definition) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |row| row.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS payment_checkouts_payment ON payment_checkouts (payment_intent)",
    )
}

/// A paid checkout a refund or a dispute may take back.
pub(crate) struct PaidCheckout {
    pub session_id: String,
    pub user_id: String,
    pub tool: String,
    pub price_key: String,
    pub amount: Option<i64>,
    /// `unlimited`, a number of credits, or `subscription`.
    pub granted: Option<String>,
}

/// Whether moving a subscription from `stored` to `new` status would go back in its life:
/// Stripe delivers events in any order, and a late one must not undo a later state. A
/// `canceled` or `incomplete_expired` subscription never changes again, and one that got past
/// `incomplete` never returns to it.
fn is_stale_transition(stored: Option<&str>, new: &str) -> bool {
    match stored {
        None => false,
        Some(stored) if stored == new => false,
        Some("canceled" | "incomplete_expired") => true,
        Some(_) => new == "incomplete",
    }
}

/// Creates the payment tables when missing.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS payment_customers (
    user_id     TEXT    PRIMARY KEY,
    customer_id TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS payment_checkouts (
    session_id TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    tool       TEXT    NOT NULL,
    price_key  TEXT    NOT NULL,
    mode       TEXT    NOT NULL,
    url        TEXT,
    status     TEXT    NOT NULL,
    amount     INTEGER,
    currency   TEXT,
    expires_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    fulfilled  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS payment_checkouts_user ON payment_checkouts (user_id, price_key, status);

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
"#;

/// A kind of row in `payment_events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentEventKind {
    /// A Checkout Session was created for a user and tool.
    CheckoutCreated,
    /// A checkout was paid (one-time payments carry the amount).
    CheckoutCompleted,
    /// A checkout expired unpaid.
    CheckoutExpired,
    /// An invoice payment failed.
    PaymentFailed,
    /// An invoice was paid (subscription revenue).
    InvoicePaid,
    /// A subscription started.
    SubscriptionStarted,
    /// A subscription changed status.
    SubscriptionUpdated,
    /// A subscription ended.
    SubscriptionCancelled,
    /// Usage was reported to Stripe.
    MeterEventSent,
    /// Reporting usage failed for now and will be retried.
    MeterEventRetried,
    /// Stripe refused the usage for good.
    MeterEventFailed,
    /// A payment was refunded (the amount refunded); a full refund of a one-time purchase
    /// takes back what it granted.
    Refunded,
    /// A payment was disputed (a chargeback, the amount withdrawn); the purchase is taken back.
    Disputed,
    /// A dispute was decided for the seller (the amount returned).
    DisputeWon,
}

impl PaymentEventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CheckoutCreated => "checkout_created",
            Self::CheckoutCompleted => "checkout_completed",
            Self::CheckoutExpired => "checkout_expired",
            Self::PaymentFailed => "payment_failed",
            Self::InvoicePaid => "invoice_paid",
            Self::SubscriptionStarted => "subscription_started",
            Self::SubscriptionUpdated => "subscription_updated",
            Self::SubscriptionCancelled => "subscription_cancelled",
            Self::MeterEventSent => "meter_event_sent",
            Self::MeterEventRetried => "meter_event_retried",
            Self::MeterEventFailed => "meter_event_failed",
            Self::Refunded => "refunded",
            Self::Disputed => "disputed",
            Self::DisputeWon => "dispute_won",
        }
    }
}

/// One `payment_events` row to write.
#[derive(Clone, Debug, Default)]
pub(crate) struct EventRow<'a> {
    pub user_id: Option<&'a str>,
    pub tool: Option<&'a str>,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// What a user holds for one price.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EntitlementRow {
    pub credits: i64,
    pub unlimited: bool,
    pub subscription_id: Option<String>,
    pub subscription_status: Option<String>,
    pub checked_ms: i64,
}

/// A stored checkout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckoutRow {
    pub session_id: String,
    pub url: Option<String>,
    pub status: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub expires_ms: i64,
    pub fulfilled: bool,
}

/// A checkout to store.
pub(crate) struct NewCheckout<'a> {
    pub session_id: &'a str,
    pub user_id: &'a str,
    pub tool: &'a str,
    pub price_key: &'a str,
    pub mode: &'a str,
    pub url: Option<&'a str>,
    pub status: &'a str,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    pub expires_ms: i64,
}

/// A meter event waiting in (or taken from) the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MeterRow {
    pub identifier: String,
    pub event_name: String,
    pub customer_id: String,
    pub user_id: Option<String>,
    pub tool: Option<String>,
    pub value: i64,
    pub ts_s: i64,
    pub attempts: i64,
}

/// `(user_id, tool, status)` of a subscription.
pub(crate) type SubscriptionOwner = (Option<String>, Option<String>, String);

/// The payment tables behind one connection.
pub(crate) struct PaymentStore {
    conn: Connection,
}

impl PaymentStore {
    /// Opens (creating when needed) the payment tables in the database at `path`.
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        Self::prepare(conn)
    }

    fn prepare(conn: Connection) -> rusqlite::Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        add_missing_columns(&conn)?;
        Ok(Self { conn })
    }

    /// Runs `work` in one transaction (committed when it succeeds). It takes the write lock
    /// at once (`BEGIN IMMEDIATE`, waiting up to the busy timeout): a transaction that read
    /// first could not upgrade after another connection (the analytics writer) committed.
    pub(crate) fn transaction<R>(
        &self,
        work: impl FnOnce(&Self) -> rusqlite::Result<R>,
    ) -> rusqlite::Result<R> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let result = work(self)?;
        tx.commit()?;
        Ok(result)
    }

    pub(crate) fn customer(&self, user_id: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT customer_id FROM payment_customers WHERE user_id = ?1")?
            .query_row([user_id], |row| row.get(0))
            .optional()
    }

    pub(crate) fn user_of_customer(&self, customer_id: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT user_id FROM payment_customers WHERE customer_id = ?1",
                [customer_id],
                |row| row.get(0),
            )
            .optional()
    }

    pub(crate) fn insert_customer(
        &self,
        user_id: &str,
        customer_id: &str,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO payment_customers (user_id, customer_id, created_ms) VALUES (?1, ?2, ?3)",
            params![user_id, customer_id, now_ms],
        )?;
        Ok(())
    }

    pub(crate) fn entitlement(
        &self,
        user_id: &str,
        price_key: &str,
    ) -> rusqlite::Result<Option<EntitlementRow>> {
        self.conn
            .query_row(
                "SELECT credits, unlimited, subscription_id, subscription_status, checked_ms FROM payment_entitlements WHERE user_id = ?1 AND price_key = ?2",
                [user_id, price_key],
                |row| {
                    Ok(EntitlementRow {
                        credits: row.get(0)?,
                        unlimited: row.get(1)?,
                        subscription_id: row.get(2)?,
                        subscription_status: row.get(3)?,
                        checked_ms: row.get(4)?,
                    })
                },
            )
            .optional()
    }

    /// Adds `credits` (or unlimited use) to what the user holds for the price.
    pub(crate) fn grant(
        &self,
        user_id: &str,
        price_key: &str,
        credits: i64,
        unlimited: bool,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO payment_entitlements (user_id, price_key, credits, unlimited, checked_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id, price_key) DO UPDATE SET credits = credits + excluded.credits, unlimited = unlimited OR excluded.unlimited, checked_ms = excluded.checked_ms",
            params![user_id, price_key, credits, unlimited, now_ms],
        )?;
        Ok(())
    }

    /// Records the subscription state behind the user's access to the price.
    pub(crate) fn set_subscription(
        &self,
        user_id: &str,
        price_key: &str,
        subscription: Option<(&str, &str)>,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        let (id, status) = subscription.unzip();
        self.conn.execute(
            "INSERT INTO payment_entitlements (user_id, price_key, subscription_id, subscription_status, checked_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id, price_key) DO UPDATE SET subscription_id = excluded.subscription_id, subscription_status = excluded.subscription_status, checked_ms = excluded.checked_ms",
            params![user_id, price_key, id, status, now_ms],
        )?;
        Ok(())
    }

    /// Notes that the provider was asked at `now_ms` (negative results are cached briefly).
    pub(crate) fn touch(
        &self,
        user_id: &str,
        price_key: &str,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO payment_entitlements (user_id, price_key, checked_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, price_key) DO UPDATE SET checked_ms = excluded.checked_ms",
            params![user_id, price_key, now_ms],
        )?;
        Ok(())
    }

    /// Uses one credit; `false` when none was left.
    pub(crate) fn consume_credit(&self, user_id: &str, price_key: &str) -> rusqlite::Result<bool> {
        let changed = self.conn.execute(
            "UPDATE payment_entitlements SET credits = credits - 1 WHERE user_id = ?1 AND price_key = ?2 AND credits > 0",
            [user_id, price_key],
        )?;
        Ok(changed == 1)
    }

    /// Remembers the subscription's user and tool (for invoices) and its status.
    pub(crate) fn upsert_subscription(
        &self,
        subscription_id: &str,
        user_id: Option<&str>,
        tool: Option<&str>,
        status: &str,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO payment_subscriptions (subscription_id, user_id, tool, status, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (subscription_id) DO UPDATE SET user_id = coalesce(excluded.user_id, user_id), tool = coalesce(excluded.tool, tool), status = excluded.status, updated_ms = excluded.updated_ms",
            params![subscription_id, user_id, tool, status, now_ms],
        )?;
        Ok(())
    }

    /// Whether `status` is older news for the subscription than what is stored (see
    /// [`is_stale_transition`]): such an event must not be applied.
    pub(crate) fn is_late_status(
        &self,
        subscription_id: &str,
        status: &str,
    ) -> rusqlite::Result<bool> {
        let stored = self
            .subscription(subscription_id)?
            .map(|(_, _, stored)| stored);
        Ok(is_stale_transition(stored.as_deref(), status))
    }

    /// `(user_id, tool, status)` of a known subscription.
    pub(crate) fn subscription(
        &self,
        subscription_id: &str,
    ) -> rusqlite::Result<Option<SubscriptionOwner>> {
        self.conn
            .query_row(
                "SELECT user_id, tool, status FROM payment_subscriptions WHERE subscription_id = ?1",
                [subscription_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
    }

    pub(crate) fn insert_checkout(
        &self,
        checkout: &NewCheckout<'_>,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO payment_checkouts (session_id, user_id, tool, price_key, mode, url, status, amount, currency, expires_ms, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (session_id) DO UPDATE SET status = excluded.status, amount = coalesce(excluded.amount, amount), currency = coalesce(excluded.currency, currency)",
            params![
                checkout.session_id,
                checkout.user_id,
                checkout.tool,
                checkout.price_key,
                checkout.mode,
                checkout.url,
                checkout.status,
                checkout.amount,
                checkout.currency,
                checkout.expires_ms,
                now_ms
            ],
        )?;
        Ok(())
    }

    fn checkout_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CheckoutRow> {
        Ok(CheckoutRow {
            session_id: row.get(0)?,
            url: row.get(1)?,
            status: row.get(2)?,
            amount: row.get(3)?,
            currency: row.get(4)?,
            expires_ms: row.get(5)?,
            fulfilled: row.get(6)?,
        })
    }

    /// The newest open checkout of the user for the price.
    pub(crate) fn open_checkout(
        &self,
        user_id: &str,
        price_key: &str,
    ) -> rusqlite::Result<Option<CheckoutRow>> {
        self.conn
            .query_row(
                "SELECT session_id, url, status, amount, currency, expires_ms, fulfilled FROM payment_checkouts WHERE user_id = ?1 AND price_key = ?2 AND status = 'open' ORDER BY created_ms DESC LIMIT 1",
                [user_id, price_key],
                Self::checkout_row,
            )
            .optional()
    }

    pub(crate) fn checkout(&self, session_id: &str) -> rusqlite::Result<Option<CheckoutRow>> {
        self.conn
            .query_row(
                "SELECT session_id, url, status, amount, currency, expires_ms, fulfilled FROM payment_checkouts WHERE session_id = ?1",
                [session_id],
                Self::checkout_row,
            )
            .optional()
    }

    /// `(user, tool, price_key, mode)` of a stored checkout.
    pub(crate) fn checkout_owner(
        &self,
        session_id: &str,
    ) -> rusqlite::Result<Option<(String, String, String, String)>> {
        self.conn
            .query_row(
                "SELECT user_id, tool, price_key, mode FROM payment_checkouts WHERE session_id = ?1",
                [session_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()
    }

    pub(crate) fn set_checkout_status(
        &self,
        session_id: &str,
        status: &str,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE payment_checkouts SET status = ?2 WHERE session_id = ?1",
            [session_id, status],
        )?;
        Ok(())
    }

    /// Notes what a fulfilled checkout granted and the payment behind it (for refunds).
    pub(crate) fn set_checkout_grant(
        &self,
        session_id: &str,
        payment_intent: Option<&str>,
        granted: &str,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE payment_checkouts SET payment_intent = ?2, granted = ?3 WHERE session_id = ?1",
            params![session_id, payment_intent, granted],
        )?;
        Ok(())
    }

    /// The fulfilled checkout paid by `payment_intent`.
    pub(crate) fn paid_checkout(
        &self,
        payment_intent: &str,
    ) -> rusqlite::Result<Option<PaidCheckout>> {
        self.conn
            .query_row(
                "SELECT session_id, user_id, tool, price_key, amount, granted FROM payment_checkouts WHERE payment_intent = ?1 AND fulfilled = 1",
                [payment_intent],
                |row| {
                    Ok(PaidCheckout {
                        session_id: row.get(0)?,
                        user_id: row.get(1)?,
                        tool: row.get(2)?,
                        price_key: row.get(3)?,
                        amount: row.get(4)?,
                        granted: row.get(5)?,
                    })
                },
            )
            .optional()
    }

    /// Takes back what a checkout granted (once per checkout; `false` when already taken).
    pub(crate) fn revoke(&self, checkout: &PaidCheckout) -> rusqlite::Result<bool> {
        let changed = self.conn.execute(
            "UPDATE payment_checkouts SET refunded = 1 WHERE session_id = ?1 AND refunded = 0",
            [&checkout.session_id],
        )?;
        if changed == 0 {
            return Ok(false);
        }
        let (user, key) = (&checkout.user_id, &checkout.price_key);
        match checkout.granted.as_deref() {
            Some("unlimited") => {
                self.conn.execute(
                    "UPDATE payment_entitlements SET unlimited = 0 WHERE user_id = ?1 AND price_key = ?2",
                    [user, key],
                )?;
            }
            Some(credits) => {
                if let Ok(credits) = credits.parse::<i64>() {
                    self.conn.execute(
                        "UPDATE payment_entitlements SET credits = max(credits - ?3, 0) WHERE user_id = ?1 AND price_key = ?2",
                        params![user, key, credits],
                    )?;
                }
            }
            None => {}
        }
        Ok(true)
    }

    /// The amount refunded so far of a checkout's payment (its `refunded` events).
    pub(crate) fn refunded_total(&self, session_id: &str) -> rusqlite::Result<i64> {
        self.conn.query_row(
            "SELECT coalesce(sum(amount), 0) FROM payment_events WHERE kind = 'refunded' AND detail = ?1",
            [session_id],
            |row| row.get(0),
        )
    }

    /// Whether a payment event of `kind` already names `reference` (a refund or a dispute).
    pub(crate) fn event_recorded(
        &self,
        kind: PaymentEventKind,
        reference: &str,
    ) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT count(*) > 0 FROM payment_events WHERE kind = ?1 AND reference = ?2",
            [kind.as_str(), reference],
            |row| row.get(0),
        )
    }

    /// Marks a checkout fulfilled; `true` only the first time (so a purchase grants once).
    pub(crate) fn mark_fulfilled(&self, session_id: &str) -> rusqlite::Result<bool> {
        let changed = self.conn.execute(
            "UPDATE payment_checkouts SET fulfilled = 1, status = 'complete' WHERE session_id = ?1 AND fulfilled = 0",
            [session_id],
        )?;
        Ok(changed == 1)
    }

    /// How many checkouts the user was offered for the price (paid, expired or replaced).
    pub(crate) fn checkout_count(&self, user_id: &str, price_key: &str) -> rusqlite::Result<i64> {
        self.conn.query_row(
            "SELECT count(*) FROM payment_checkouts WHERE user_id = ?1 AND price_key = ?2",
            [user_id, price_key],
            |row| row.get(0),
        )
    }

    pub(crate) fn record_event(
        &self,
        ts_ms: i64,
        kind: PaymentEventKind,
        row: &EventRow<'_>,
    ) -> rusqlite::Result<()> {
        self.conn.prepare_cached(
            "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency, reference, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![ts_ms, kind.as_str(), row.user_id, row.tool, row.amount, row.currency, row.reference, row.detail])?;
        Ok(())
    }

    /// Whether a webhook event was already applied.
    pub(crate) fn webhook_applied(&self, event_id: &str) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT count(*) > 0 FROM stripe_webhook_events WHERE event_id = ?1",
            [event_id],
            |row| row.get(0),
        )
    }

    /// Remembers that a webhook event was applied (a redelivery is then not applied again).
    pub(crate) fn mark_webhook_applied(
        &self,
        event_id: &str,
        kind: &str,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO stripe_webhook_events (event_id, type, received_ms) VALUES (?1, ?2, ?3)",
            params![event_id, kind, now_ms],
        )?;
        Ok(())
    }

    /// Puts meter events into the outbox (a repeated identifier is ignored).
    pub(crate) fn enqueue_meters(
        &mut self,
        rows: &[MeterRow],
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO meter_outbox (identifier, event_name, customer_id, user_id, tool, value, ts_s, state, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)",
            )?;
            for row in rows {
                insert.execute(params![
                    row.identifier,
                    row.event_name,
                    row.customer_id,
                    row.user_id,
                    row.tool,
                    row.value,
                    row.ts_s,
                    now_ms
                ])?;
            }
        }
        tx.commit()
    }

    /// Pending meter events due by `now_ms`, oldest first.
    pub(crate) fn due_meters(&self, now_ms: i64, limit: usize) -> rusqlite::Result<Vec<MeterRow>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT identifier, event_name, customer_id, user_id, tool, value, ts_s, attempts FROM meter_outbox WHERE state = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms LIMIT ?2",
        )?;
        statement
            .query_map(params![now_ms, limit as i64], |row| {
                Ok(MeterRow {
                    identifier: row.get(0)?,
                    event_name: row.get(1)?,
                    customer_id: row.get(2)?,
                    user_id: row.get(3)?,
                    tool: row.get(4)?,
                    value: row.get(5)?,
                    ts_s: row.get(6)?,
                    attempts: row.get(7)?,
                })
            })?
            .collect()
    }

    /// When the next pending meter event is due.
    pub(crate) fn next_meter_due(&self) -> rusqlite::Result<Option<i64>> {
        self.conn.query_row(
            "SELECT min(next_attempt_ms) FROM meter_outbox WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )
    }

    /// Moves a meter event to `state` (`sent`, `failed`, or `pending` with a later attempt).
    pub(crate) fn update_meter(
        &self,
        identifier: &str,
        state: &str,
        next_attempt_ms: i64,
        error: Option<&str>,
    ) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE meter_outbox SET state = ?2, attempts = attempts + 1, next_attempt_ms = ?3, last_error = ?4 WHERE identifier = ?1",
            )?
            .execute(params![identifier, state, next_attempt_ms, error])?;
        Ok(())
    }

    /// Meter events not yet delivered.
    pub(crate) fn pending_meters(&self) -> rusqlite::Result<i64> {
        self.conn.query_row(
            "SELECT count(*) FROM meter_outbox WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::is_stale_transition;

    #[test]
    fn late_subscription_events_do_not_undo_later_states() {
        // First sight, the same state, and forward moves apply.
        for (stored, new) in [
            (None, "incomplete"),
            (Some("incomplete"), "active"),
            (Some("active"), "past_due"),
            (Some("past_due"), "active"),
            (Some("active"), "canceled"),
            (Some("canceled"), "canceled"),
        ] {
            assert!(!is_stale_transition(stored, new), "{stored:?} → {new}");
        }
        // Nothing revives an ended subscription, and a paid one is never incomplete again.
        for (stored, new) in [
            (Some("canceled"), "active"),
            (Some("canceled"), "past_due"),
            (Some("incomplete_expired"), "active"),
            (Some("active"), "incomplete"),
            (Some("trialing"), "incomplete"),
        ] {
            assert!(is_stale_transition(stored, new), "{stored:?} → {new}");
        }
    }
}
