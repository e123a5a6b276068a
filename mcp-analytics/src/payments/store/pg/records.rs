//! The other payment tables on PostgreSQL: customers, `payment_events`, refunds and disputes
//! held for their purchase, and the webhook events applied.

use deadpool_postgres::Transaction;

use crate::payments::store::{EventRow, HeldReversal, PaymentEventKind};

/// How long a reversal waits for its purchase (as on SQLite).
const KEEP_MS: i64 = 30 * 24 * 3_600_000;

pub(crate) async fn customer_of(
    tx: &Transaction<'_>,
    user_id: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT customer_id FROM payment_customers WHERE user_id = $1",
            &[&user_id],
        )
        .await?
        .map(|row| row.get(0)))
}

pub(crate) async fn user_of(
    tx: &Transaction<'_>,
    customer_id: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT user_id FROM payment_customers WHERE customer_id = $1 LIMIT 1",
            &[&customer_id],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Records the user's customer unless one is recorded (the first one stays).
pub(crate) async fn insert_customer(
    tx: &Transaction<'_>,
    user_id: &str,
    customer_id: &str,
    now_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO payment_customers (user_id, customer_id, created_ms) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING",
        &[&user_id, &customer_id, &now_ms],
    )
    .await?;
    Ok(())
}

/// Forgets `customer_id` as the user's customer.
pub(crate) async fn forget_customer(
    tx: &Transaction<'_>,
    user_id: &str,
    customer_id: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "DELETE FROM payment_customers WHERE user_id = $1 AND customer_id = $2",
        &[&user_id, &customer_id],
    )
    .await?;
    Ok(())
}

/// Writes one `payment_events` row.
pub(crate) async fn record(
    tx: &Transaction<'_>,
    ts_ms: i64,
    kind: PaymentEventKind,
    row: &EventRow<'_>,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency, reference, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[&ts_ms, &kind.as_str(), &row.user_id, &row.tool, &row.amount, &row.currency, &row.reference, &row.detail],
    )
    .await?;
    Ok(())
}

/// Whether an event of `kind` already names `reference`.
pub(crate) async fn recorded(
    tx: &Transaction<'_>,
    kind: PaymentEventKind,
    reference: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(tx
        .query_one(
            "SELECT count(*) > 0 FROM payment_events WHERE kind = $1 AND reference = $2",
            &[&kind.as_str(), &reference],
        )
        .await?
        .get(0))
}

/// The amount refunded so far of a checkout's payment.
pub(crate) async fn refunded_total(
    tx: &Transaction<'_>,
    session_id: &str,
) -> Result<i64, tokio_postgres::Error> {
    Ok(tx
        .query_one(
            "SELECT coalesce(sum(amount), 0)::BIGINT FROM payment_events WHERE kind = 'refunded' AND detail = $1",
            &[&session_id],
        )
        .await?
        .get(0))
}

/// Holds a reversal (once per id) and drops ones that waited too long.
pub(crate) async fn hold_reversal(
    tx: &Transaction<'_>,
    reversal: &HeldReversal,
    now_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "DELETE FROM payment_reversals_held WHERE received_ms < $1",
        &[&(now_ms - KEEP_MS)],
    )
    .await?;
    tx.execute(
        "INSERT INTO payment_reversals_held (reversal_id, kind, payment_intent, amount, currency, received_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        &[&reversal.id, &reversal.kind, &reversal.payment_intent, &reversal.amount, &reversal.currency, &now_ms],
    )
    .await?;
    Ok(())
}

/// Takes the reversals held for `payment_intent`, oldest first.
pub(crate) async fn take_reversals(
    tx: &Transaction<'_>,
    payment_intent: &str,
) -> Result<Vec<HeldReversal>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "DELETE FROM payment_reversals_held WHERE payment_intent = $1 RETURNING reversal_id, kind, payment_intent, amount, currency, received_ms",
            &[&payment_intent],
        )
        .await?;
    let mut held: Vec<(i64, HeldReversal)> = rows
        .iter()
        .map(|row| {
            (
                row.get(5),
                HeldReversal {
                    id: row.get(0),
                    kind: row.get(1),
                    payment_intent: row.get(2),
                    amount: row.get(3),
                    currency: row.get(4),
                },
            )
        })
        .collect();
    held.sort_by_key(|(received, _)| *received);
    Ok(held.into_iter().map(|(_, reversal)| reversal).collect())
}

/// Claims a webhook event for applying: `false` when it was applied (or is being applied by
/// another replica, which then answers for it). The claim is part of the caller's transaction:
/// rolled back with it when applying fails.
pub(crate) async fn claim_webhook_event(
    tx: &Transaction<'_>,
    event_id: &str,
    kind: &str,
    now_ms: i64,
) -> Result<bool, tokio_postgres::Error> {
    let claimed = tx
        .execute(
            "INSERT INTO stripe_webhook_events (event_id, type, received_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&event_id, &kind, &now_ms],
        )
        .await?;
    Ok(claimed == 1)
}
