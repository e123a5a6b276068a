//! The payment tables on Cloudflare D1 (feature `workers`), reached through a
//! [`crate::d1::Executor`]. D1 has no interactive transactions and many isolates write it at
//! once: every operation is one statement or one atomic batch whose writes carry their own
//! conditions (as PostgreSQL's are for replicas), never a read in Rust followed by a write.
//! What only Stripe's webhooks reach (expired checkouts, invoices, refunds and disputes) is
//! not stored here yet: it answers [`StoreError::NotOnD1`], so the gate fails closed.

use std::{future::Future, pin::Pin, sync::Arc};

use super::{CheckoutRow, EventRow, PaymentEventKind, StoreError, TakenBack};
use crate::{
    d1::{D1Error, Outcome, Statement, Value},
    payments::{
        domain::{CheckoutStatus, EntitlementKey, Granted, PaymentStatus},
        provider::CheckoutInfo,
    },
};

/// What [`SharedExecutor::batch`] returns.
pub(crate) type BatchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Outcome>, D1Error>> + Send + 'a>>;

/// An [`Executor`](crate::d1::Executor) the payment components share between calls. On
/// `wasm32` a Worker's D1 binding is not `Send`; the Worker's one thread makes it so there.
pub(crate) trait SharedExecutor: Send + Sync {
    /// [`Executor::batch`](crate::d1::Executor::batch).
    fn batch<'a>(&'a self, statements: &'a [Statement]) -> BatchFuture<'a>;
}

/// The payment tables of a D1 database.
#[derive(Clone)]
pub(crate) struct D1Payments(Arc<dyn SharedExecutor>);

impl D1Payments {
    #[cfg(any(test, target_arch = "wasm32"))]
    pub(crate) fn new(executor: Arc<dyn SharedExecutor>) -> Self {
        Self(executor)
    }

    /// Runs `statements` as one atomic batch.
    pub(crate) async fn batch(&self, statements: &[Statement]) -> Result<Vec<Outcome>, StoreError> {
        Ok(self.0.batch(statements).await?)
    }

    /// The rows of one statement.
    pub(crate) async fn rows(&self, statement: Statement) -> Result<Vec<Vec<Value>>, StoreError> {
        let mut outcomes = self.batch(std::slice::from_ref(&statement)).await?;
        Ok(outcomes
            .pop()
            .map(|outcome| outcome.rows)
            .unwrap_or_default())
    }

    /// How many rows one statement changed.
    pub(crate) async fn execute(&self, statement: Statement) -> Result<u64, StoreError> {
        let mut outcomes = self.batch(std::slice::from_ref(&statement)).await?;
        Ok(outcomes.pop().map_or(0, |outcome| outcome.changes))
    }
}

#[cfg(all(test, feature = "sqlite"))]
impl D1Payments {
    /// A fresh D1 database on real SQLite (the D1 tests' executor), shared by whoever clones
    /// it; each batch first lets other tasks run, as D1's round trips do.
    pub(crate) fn on_sqlite() -> Self {
        struct Shared(std::sync::Mutex<crate::d1::tests::SqliteD1>);
        impl SharedExecutor for Shared {
            fn batch<'a>(&'a self, statements: &'a [Statement]) -> BatchFuture<'a> {
                Box::pin(async move {
                    tokio::task::yield_now().await;
                    let database = self.0.lock().unwrap_or_else(|e| e.into_inner());
                    database
                        .run(statements)
                        .map_err(|error| D1Error::new(error.to_string()))
                })
            }
        }
        Self::new(Arc::new(Shared(std::sync::Mutex::new(
            crate::d1::tests::SqliteD1::new(),
        ))))
    }
}

/// A cell read as text.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::Text(text) => Some(text.clone()),
        _ => None,
    }
}

/// A cell read as an integer (D1 may answer a whole number as a float).
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(int) => Some(*int),
        Value::Real(real) if real.fract() == 0.0 => Some(*real as i64),
        _ => None,
    }
}

fn opt_int(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::Int)
}

fn opt_text(value: Option<&str>) -> Value {
    Value::from(value)
}

/// The first column of the first row, as text.
fn first_text(rows: &[Vec<Value>]) -> Option<String> {
    rows.first().and_then(|row| row.first()).and_then(text)
}

const CHECKOUT_COLUMNS: &str = "session_id, user_id, tool, price_key, url, status, payment_status, amount, currency, expires_ms, fulfilled, granted, taken_back, taken_credits";

fn checkout_row(row: &[Value]) -> Option<CheckoutRow> {
    let text_at = |index: usize| row.get(index).and_then(text);
    let int_at = |index: usize| row.get(index).and_then(int);
    Some(CheckoutRow {
        session_id: text_at(0)?,
        user_id: text_at(1)?,
        tool: text_at(2)?,
        key: EntitlementKey::from_stored(text_at(3)?),
        url: text_at(4),
        status: CheckoutStatus::from(text_at(5)?.as_str()),
        payment_status: text_at(6).as_deref().map(PaymentStatus::from),
        amount: int_at(7),
        currency: text_at(8),
        expires_ms: int_at(9)?,
        fulfilled: int_at(10)? != 0,
        granted: text_at(11).as_deref().and_then(Granted::decode),
        taken_back: text_at(12).as_deref().and_then(TakenBack::parse),
        taken_credits: int_at(13),
    })
}

/// Stores a checkout, or updates a stored one's status and amount (SQLite's `insert`).
pub(crate) fn insert_checkout(
    session: &CheckoutInfo,
    user: &str,
    tool: &str,
    key: &EntitlementKey,
    now_ms: i64,
    on_conflict: &str,
) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO payment_checkouts (session_id, user_id, tool, price_key, mode, url, status, payment_status, amount, currency, expires_ms, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (session_id) {on_conflict}"
        ),
        vec![
            session.id.as_str().into(),
            user.into(),
            tool.into(),
            key.as_str().into(),
            session.mode.as_str().into(),
            opt_text(session.url.as_deref()),
            session.status.as_str().into(),
            session.payment_status.as_str().into(),
            opt_int(session.amount_total),
            opt_text(session.currency.as_deref()),
            Value::Int(session.expires_at.saturating_mul(1000)),
            Value::Int(now_ms),
        ],
    )
}

/// The update of [`insert_checkout`] when the checkout is stored.
pub(crate) const UPDATE_CHECKOUT: &str = "DO UPDATE SET status = excluded.status, payment_status = coalesce(excluded.payment_status, payment_status), amount = coalesce(excluded.amount, amount), currency = coalesce(excluded.currency, currency)";

/// Records a `payment_events` row, when `condition` (SQL over the row's parameters, or `1`)
/// holds; extra parameters follow the row's eight.
pub(crate) fn record_event(
    ts_ms: i64,
    kind: PaymentEventKind,
    row: &EventRow<'_>,
    condition: &str,
    extra: Vec<Value>,
) -> Statement {
    let mut params = vec![
        Value::Int(ts_ms),
        kind.as_str().into(),
        opt_text(row.user_id),
        opt_text(row.tool),
        opt_int(row.amount),
        opt_text(row.currency),
        opt_text(row.reference),
        opt_text(row.detail),
    ];
    params.extend(extra);
    Statement::new(
        format!(
            "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency, reference, detail) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE {condition}"
        ),
        params,
    )
}

/// Records the user's customer unless one is recorded (the first one stays).
pub(crate) fn insert_customer(user: &str, customer: &str, now_ms: i64) -> Statement {
    Statement::new(
        "INSERT OR IGNORE INTO payment_customers (user_id, customer_id, created_ms) VALUES (?1, ?2, ?3)",
        vec![user.into(), customer.into(), Value::Int(now_ms)],
    )
}

fn customer_of_statement(user: &str) -> Statement {
    Statement::new(
        "SELECT customer_id FROM payment_customers WHERE user_id = ?1",
        vec![user.into()],
    )
}

impl D1Payments {
    pub(crate) async fn customer_of(&self, user: &str) -> Result<Option<String>, StoreError> {
        Ok(first_text(&self.rows(customer_of_statement(user)).await?))
    }

    /// Records `customer` as the user's unless one is recorded, in one batch that reads back
    /// the one that stays.
    pub(crate) async fn keep_customer(
        &self,
        user: &str,
        customer: &str,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let outcomes = self
            .batch(&[
                insert_customer(user, customer, now_ms),
                customer_of_statement(user),
            ])
            .await?;
        Ok(outcomes
            .last()
            .and_then(|outcome| first_text(&outcome.rows))
            .unwrap_or_else(|| customer.to_owned()))
    }

    pub(crate) async fn forget_customer(
        &self,
        user: &str,
        customer: &str,
    ) -> Result<(), StoreError> {
        self.execute(Statement::new(
            "DELETE FROM payment_customers WHERE user_id = ?1 AND customer_id = ?2",
            vec![user.into(), customer.into()],
        ))
        .await?;
        Ok(())
    }

    /// Marks the user's overdue open checkouts for the key expired, then reads the newest one
    /// that may still pay (one batch).
    pub(crate) async fn pending_checkout(
        &self,
        user: &str,
        key: &EntitlementKey,
        now_ms: i64,
    ) -> Result<Option<CheckoutRow>, StoreError> {
        let params = || vec![user.into(), key.as_str().into(), Value::Int(now_ms)];
        let outcomes = self
            .batch(&[
                Statement::new(
                    "UPDATE payment_checkouts SET status = 'expired' WHERE user_id = ?1 AND price_key = ?2 AND status = 'open' AND expires_ms <= ?3",
                    params(),
                ),
                Statement::new(
                    format!(
                        "SELECT {CHECKOUT_COLUMNS} FROM payment_checkouts WHERE user_id = ?1 AND price_key = ?2 AND fulfilled = 0
                         AND ((status = 'open' AND expires_ms > ?3) OR (status = 'complete' AND payment_status = 'unpaid'))
                         ORDER BY created_ms DESC LIMIT 1"
                    ),
                    params(),
                ),
            ])
            .await?;
        Ok(outcomes
            .last()
            .and_then(|outcome| outcome.rows.first())
            .and_then(|row| checkout_row(row)))
    }

    pub(crate) async fn checkouts_offered(
        &self,
        user: &str,
        key: &EntitlementKey,
    ) -> Result<i64, StoreError> {
        let rows = self
            .rows(Statement::new(
                "SELECT count(*) FROM payment_checkouts WHERE user_id = ?1 AND price_key = ?2",
                vec![user.into(), key.as_str().into()],
            ))
            .await?;
        Ok(rows
            .first()
            .and_then(|row| row.first())
            .and_then(int)
            .unwrap_or(0))
    }

    /// Records a checkout just created and its `checkout_created` event, in one batch.
    pub(crate) async fn checkout_created(
        &self,
        session: &CheckoutInfo,
        user: &str,
        tool: &str,
        key: &EntitlementKey,
        event: &EventRow<'_>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.batch(&[
            insert_checkout(session, user, tool, key, now_ms, UPDATE_CHECKOUT),
            record_event(
                now_ms,
                PaymentEventKind::CheckoutCreated,
                event,
                "1",
                Vec::new(),
            ),
        ])
        .await?;
        Ok(())
    }

    /// Sets a stored checkout's status (unless it was fulfilled).
    pub(crate) async fn set_checkout_status(
        &self,
        session_id: &str,
        status: &CheckoutStatus,
    ) -> Result<(), StoreError> {
        self.execute(Statement::new(
            "UPDATE payment_checkouts SET status = ?2 WHERE session_id = ?1 AND fulfilled = 0",
            vec![session_id.into(), status.as_str().into()],
        ))
        .await?;
        Ok(())
    }
}
