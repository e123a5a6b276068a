//! `payment_checkouts` on PostgreSQL: the queries of the SQLite table's type
//! ([`crate::payments::store::Checkouts`]), inside a transaction.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use crate::payments::{
    domain::{CheckoutStatus, EntitlementKey, Granted, PaymentStatus},
    provider::CheckoutInfo,
    store::{TakenBack, checkouts::CheckoutRow},
};

const COLUMNS: &str = "session_id, user_id, tool, price_key, url, status, payment_status, amount, currency, expires_ms, fulfilled, granted, taken_back, taken_credits";

fn row(row: &Row) -> CheckoutRow {
    let text = |index: usize| row.get::<_, Option<String>>(index);
    CheckoutRow {
        session_id: row.get(0),
        user_id: row.get(1),
        tool: row.get(2),
        key: EntitlementKey::from_stored(row.get::<_, String>(3)),
        url: row.get(4),
        status: CheckoutStatus::from(row.get::<_, &str>(5)),
        payment_status: text(6).as_deref().map(PaymentStatus::from),
        amount: row.get(7),
        currency: row.get(8),
        expires_ms: row.get(9),
        fulfilled: row.get(10),
        granted: text(11).as_deref().and_then(Granted::decode),
        taken_back: text(12).as_deref().and_then(TakenBack::parse),
        taken_credits: row.get(13),
    }
}

/// Stores the provider's checkout `session` of `user` for `tool`, or updates a stored one's
/// status and amount.
pub(crate) async fn insert(
    tx: &Transaction<'_>,
    session: &CheckoutInfo,
    user_id: &str,
    tool: &str,
    key: &EntitlementKey,
    now_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO payment_checkouts (session_id, user_id, tool, price_key, mode, url, status, payment_status, amount, currency, expires_ms, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (session_id) DO UPDATE SET status = excluded.status, payment_status = coalesce(excluded.payment_status, payment_checkouts.payment_status), amount = coalesce(excluded.amount, payment_checkouts.amount), currency = coalesce(excluded.currency, payment_checkouts.currency)",
        &[
            &session.id,
            &user_id,
            &tool,
            &key.as_str(),
            &session.mode.as_str(),
            &session.url,
            &session.status.as_str(),
            &session.payment_status.as_str(),
            &session.amount_total,
            &session.currency,
            &session.expires_at.saturating_mul(1000),
            &now_ms,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get(
    tx: &Transaction<'_>,
    session_id: &str,
) -> Result<Option<CheckoutRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM payment_checkouts WHERE session_id = $1");
    Ok(tx.query_opt(&sql, &[&session_id]).await?.as_ref().map(row))
}

/// The user's newest checkout for the key that may still pay (see the SQLite `pending`), after
/// marking open ones past their expiry expired.
pub(crate) async fn pending(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &EntitlementKey,
    now_ms: i64,
) -> Result<Option<CheckoutRow>, tokio_postgres::Error> {
    tx.execute(
        "UPDATE payment_checkouts SET status = 'expired' WHERE user_id = $1 AND price_key = $2 AND status = 'open' AND expires_ms <= $3",
        &[&user_id, &key.as_str(), &now_ms],
    )
    .await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM payment_checkouts WHERE user_id = $1 AND price_key = $2 AND NOT fulfilled
         AND ((status = 'open' AND expires_ms > $3) OR (status = 'complete' AND payment_status = 'unpaid'))
         ORDER BY created_ms DESC LIMIT 1"
    );
    Ok(tx
        .query_opt(&sql, &[&user_id, &key.as_str(), &now_ms])
        .await?
        .as_ref()
        .map(row))
}

pub(crate) async fn set_status(
    tx: &Transaction<'_>,
    session_id: &str,
    status: &CheckoutStatus,
    payment_status: Option<&PaymentStatus>,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE payment_checkouts SET status = $2, payment_status = coalesce($3, payment_status) WHERE session_id = $1 AND NOT fulfilled",
        &[&session_id, &status.as_str(), &payment_status.map(PaymentStatus::as_str)],
    )
    .await?;
    Ok(())
}

/// How many checkouts the user was offered for the key.
pub(crate) async fn count(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &EntitlementKey,
) -> Result<i64, tokio_postgres::Error> {
    Ok(tx
        .query_one(
            "SELECT count(*) FROM payment_checkouts WHERE user_id = $1 AND price_key = $2",
            &[&user_id, &key.as_str()],
        )
        .await?
        .get(0))
}

/// Marks a checkout paid and fulfilled; `true` only the first time.
pub(crate) async fn fulfil(
    tx: &Transaction<'_>,
    session_id: &str,
    payment_intent: Option<&str>,
    granted: Granted,
) -> Result<bool, tokio_postgres::Error> {
    let changed = tx
        .execute(
            "UPDATE payment_checkouts SET fulfilled = TRUE, status = 'complete', payment_status = 'paid', payment_intent = $2, granted = $3 WHERE session_id = $1 AND NOT fulfilled",
            &[&session_id, &payment_intent, &granted.encode()],
        )
        .await?;
    Ok(changed == 1)
}

/// The fulfilled checkout paid by `payment_intent`.
pub(crate) async fn paid_by(
    tx: &Transaction<'_>,
    payment_intent: &str,
) -> Result<Option<CheckoutRow>, tokio_postgres::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM payment_checkouts WHERE payment_intent = $1 AND fulfilled");
    Ok(tx
        .query_opt(&sql, &[&payment_intent])
        .await?
        .as_ref()
        .map(row))
}

/// Whether another fulfilled unlimited purchase of the user for the key is not taken back.
pub(crate) async fn unlimited_held_by_other(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &EntitlementKey,
    session_id: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(tx
        .query_one(
            "SELECT count(*) > 0 FROM payment_checkouts WHERE user_id = $1 AND price_key = $2 AND session_id <> $3
             AND fulfilled AND granted = 'unlimited' AND taken_back IS NULL",
            &[&user_id, &key.as_str(), &session_id],
        )
        .await?
        .get(0))
}

/// Charges a run to a credit taken back (see the SQLite `use_taken_back_credit`).
pub(crate) async fn use_taken_back_credit(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &EntitlementKey,
) -> Result<bool, tokio_postgres::Error> {
    let changed = tx
        .execute(
            "UPDATE payment_checkouts SET taken_credits = taken_credits - 1 WHERE session_id = (
                 SELECT session_id FROM payment_checkouts
                 WHERE user_id = $1 AND price_key = $2 AND taken_back IS NOT NULL AND taken_credits > 0
                 ORDER BY taken_back = 'disputed' DESC, created_ms DESC, session_id DESC LIMIT 1)",
            &[&user_id, &key.as_str()],
        )
        .await?;
    Ok(changed == 1)
}

/// Records how the purchase was taken back (`None`: granted again); `false` when it was
/// already in that state.
pub(crate) async fn set_taken_back(
    tx: &Transaction<'_>,
    session_id: &str,
    taken_back: Option<TakenBack>,
    taken_credits: Option<i64>,
) -> Result<bool, tokio_postgres::Error> {
    let changed = tx
        .execute(
            "UPDATE payment_checkouts SET taken_back = $2, taken_credits = $3 WHERE session_id = $1 AND taken_back IS DISTINCT FROM $2",
            &[&session_id, &taken_back.map(TakenBack::as_str), &taken_credits],
        )
        .await?;
    Ok(changed == 1)
}
