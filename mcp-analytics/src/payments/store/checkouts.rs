//! `payment_checkouts`: every checkout offered, whether it was paid, what it granted and
//! whether that was taken back.

#[cfg(feature = "sqlite")]
use rusqlite::{Connection, OptionalExtension, params};

use crate::payments::domain::{CheckoutStatus, EntitlementKey, Granted, PaymentStatus};
#[cfg(feature = "sqlite")]
use crate::payments::provider::CheckoutInfo;

/// How a purchase was taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TakenBack {
    /// Refunded in full.
    Refunded,
    /// Disputed (a chargeback); a won dispute grants it again.
    Disputed,
}

impl TakenBack {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TakenBack::Refunded => "refunded",
            TakenBack::Disputed => "disputed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "refunded" => Some(TakenBack::Refunded),
            "disputed" => Some(TakenBack::Disputed),
            _ => None,
        }
    }
}

/// A stored checkout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckoutRow {
    pub session_id: String,
    pub user_id: String,
    pub tool: String,
    pub key: EntitlementKey,
    pub url: Option<String>,
    pub status: CheckoutStatus,
    pub payment_status: Option<PaymentStatus>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub expires_ms: i64,
    pub fulfilled: bool,
    pub granted: Option<Granted>,
    pub taken_back: Option<TakenBack>,
    /// Credits actually taken back (fewer than granted when some were used).
    pub taken_credits: Option<i64>,
}

#[cfg(feature = "sqlite")]
const COLUMNS: &str = "session_id, user_id, tool, price_key, url, status, payment_status, amount, currency, expires_ms, fulfilled, granted, taken_back, taken_credits";

#[cfg(feature = "sqlite")]
fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CheckoutRow> {
    let text = |index: usize| -> rusqlite::Result<Option<String>> { row.get(index) };
    Ok(CheckoutRow {
        session_id: row.get(0)?,
        user_id: row.get(1)?,
        tool: row.get(2)?,
        key: EntitlementKey::from_stored(row.get::<_, String>(3)?),
        url: row.get(4)?,
        status: CheckoutStatus::from(row.get::<_, String>(5)?.as_str()),
        payment_status: text(6)?.as_deref().map(PaymentStatus::from),
        amount: row.get(7)?,
        currency: row.get(8)?,
        expires_ms: row.get(9)?,
        fulfilled: row.get(10)?,
        granted: text(11)?.as_deref().and_then(Granted::decode),
        taken_back: text(12)?.as_deref().and_then(TakenBack::parse),
        taken_credits: row.get(13)?,
    })
}

/// The `payment_checkouts` table.
#[cfg(feature = "sqlite")]
pub(crate) struct Checkouts<'c>(pub(super) &'c Connection);

#[cfg(feature = "sqlite")]
impl Checkouts<'_> {
    /// Stores the provider's checkout `session` of `user` for `tool` (held under `key`), or
    /// updates a stored one's status and amount.
    pub(crate) fn insert(
        &self,
        session: &CheckoutInfo,
        user_id: &str,
        tool: &str,
        key: &EntitlementKey,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.0.execute(
            "INSERT INTO payment_checkouts (session_id, user_id, tool, price_key, mode, url, status, payment_status, amount, currency, expires_ms, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (session_id) DO UPDATE SET status = excluded.status, payment_status = coalesce(excluded.payment_status, payment_status), amount = coalesce(excluded.amount, amount), currency = coalesce(excluded.currency, currency)",
            params![
                session.id,
                user_id,
                tool,
                key.as_str(),
                session.mode.as_str(),
                session.url,
                session.status.as_str(),
                session.payment_status.as_str(),
                session.amount_total,
                session.currency,
                session.expires_at.saturating_mul(1000),
                now_ms
            ],
        )?;
        Ok(())
    }

    pub(crate) fn get(&self, session_id: &str) -> rusqlite::Result<Option<CheckoutRow>> {
        self.0
            .query_row(
                &format!("SELECT {COLUMNS} FROM payment_checkouts WHERE session_id = ?1"),
                [session_id],
                row,
            )
            .optional()
    }

    /// The user's newest checkout for the key that may still pay: open and not past its
    /// expiry, or complete with a delayed payment still clearing.
    pub(crate) fn pending(
        &self,
        user_id: &str,
        key: &EntitlementKey,
        now_ms: i64,
    ) -> rusqlite::Result<Option<CheckoutRow>> {
        self.0
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM payment_checkouts WHERE user_id = ?1 AND price_key = ?2 AND fulfilled = 0
                     AND ((status = 'open' AND expires_ms > ?3) OR (status = 'complete' AND payment_status = 'unpaid'))
                     ORDER BY created_ms DESC LIMIT 1"
                ),
                params![user_id, key.as_str(), now_ms],
                row,
            )
            .optional()
    }

    /// The user's open checkouts for the key past their expiry (the provider expires them).
    pub(crate) fn expire_overdue(
        &self,
        user_id: &str,
        key: &EntitlementKey,
        now_ms: i64,
    ) -> rusqlite::Result<usize> {
        self.0.execute(
            "UPDATE payment_checkouts SET status = 'expired' WHERE user_id = ?1 AND price_key = ?2 AND status = 'open' AND expires_ms <= ?3",
            params![user_id, key.as_str(), now_ms],
        )
    }

    pub(crate) fn set_status(
        &self,
        session_id: &str,
        status: &CheckoutStatus,
        payment_status: Option<&PaymentStatus>,
    ) -> rusqlite::Result<()> {
        self.0.execute(
            "UPDATE payment_checkouts SET status = ?2, payment_status = coalesce(?3, payment_status) WHERE session_id = ?1 AND fulfilled = 0",
            params![session_id, status.as_str(), payment_status.map(PaymentStatus::as_str)],
        )?;
        Ok(())
    }

    /// How many checkouts the user was offered for the key (paid, expired or replaced).
    pub(crate) fn count(&self, user_id: &str, key: &EntitlementKey) -> rusqlite::Result<i64> {
        self.0.query_row(
            "SELECT count(*) FROM payment_checkouts WHERE user_id = ?1 AND price_key = ?2",
            [user_id, key.as_str()],
            |row| row.get(0),
        )
    }

    /// Marks a checkout paid and fulfilled with what it granted; `true` only the first time
    /// (so a purchase grants once).
    pub(crate) fn fulfil(
        &self,
        session_id: &str,
        payment_intent: Option<&str>,
        granted: Granted,
    ) -> rusqlite::Result<bool> {
        let changed = self.0.execute(
            "UPDATE payment_checkouts SET fulfilled = 1, status = 'complete', payment_status = 'paid', payment_intent = ?2, granted = ?3 WHERE session_id = ?1 AND fulfilled = 0",
            params![session_id, payment_intent, granted.encode()],
        )?;
        Ok(changed == 1)
    }

    /// The fulfilled checkout paid by `payment_intent`.
    pub(crate) fn paid_by(&self, payment_intent: &str) -> rusqlite::Result<Option<CheckoutRow>> {
        self.0
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM payment_checkouts WHERE payment_intent = ?1 AND fulfilled = 1"
                ),
                [payment_intent],
                row,
            )
            .optional()
    }

    /// Whether another fulfilled unlimited purchase of the user for the key (than
    /// `session_id`) is not taken back.
    pub(crate) fn unlimited_held_by_other(
        &self,
        user_id: &str,
        key: &EntitlementKey,
        session_id: &str,
    ) -> rusqlite::Result<bool> {
        self.0.query_row(
            "SELECT count(*) > 0 FROM payment_checkouts WHERE user_id = ?1 AND price_key = ?2 AND session_id != ?3
             AND fulfilled = 1 AND granted = 'unlimited' AND taken_back IS NULL",
            params![user_id, key.as_str(), session_id],
            |row| row.get(0),
        )
    }

    /// Charges a run to a credit taken back from the user's purchases for the key (its call
    /// reserved the credit before a take-back removed it): one fewer is counted as taken back
    /// from the latest purchase still holding some, a disputed one first (a won dispute returns
    /// what is counted; a refund is final). `false` when none holds any.
    pub(crate) fn use_taken_back_credit(
        &self,
        user_id: &str,
        key: &EntitlementKey,
    ) -> rusqlite::Result<bool> {
        let changed = self
            .0
            .prepare_cached(
                "UPDATE payment_checkouts SET taken_credits = taken_credits - 1 WHERE session_id = (
                     SELECT session_id FROM payment_checkouts
                     WHERE user_id = ?1 AND price_key = ?2 AND taken_back IS NOT NULL AND taken_credits > 0
                     ORDER BY taken_back = 'disputed' DESC, created_ms DESC, session_id DESC LIMIT 1)",
            )?
            .execute([user_id, key.as_str()])?;
        Ok(changed == 1)
    }

    /// Records how the purchase was taken back (`None`: granted again); `false` when it was
    /// already in that state.
    pub(crate) fn set_taken_back(
        &self,
        session_id: &str,
        taken_back: Option<TakenBack>,
        taken_credits: Option<i64>,
    ) -> rusqlite::Result<bool> {
        let changed = self.0.execute(
            "UPDATE payment_checkouts SET taken_back = ?2, taken_credits = ?3, refunded = ?2 IS NOT NULL WHERE session_id = ?1 AND taken_back IS NOT ?2",
            params![session_id, taken_back.map(TakenBack::as_str), taken_credits],
        )?;
        Ok(changed == 1)
    }
}
