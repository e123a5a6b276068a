//! `payment_reversals_held`: refunds and disputes whose payment no fulfilled checkout names
//! yet — their webhook arrived before the purchase's. Applied when the purchase arrives;
//! those of payments mcp-analytics never sees (another product on the account) are dropped
//! after 30 days.

#[cfg(feature = "sqlite")]
use rusqlite::{Connection, params};

/// How long a reversal waits for its purchase.
#[cfg(feature = "sqlite")]
const KEEP_MS: i64 = 30 * 24 * 3_600_000;

/// A reversal waiting for its purchase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeldReversal {
    pub id: String,
    /// `refund`, `dispute` or `dispute_won`.
    pub kind: String,
    pub payment_intent: String,
    pub amount: i64,
    pub currency: String,
}

/// The `payment_reversals_held` table.
#[cfg(feature = "sqlite")]
pub(crate) struct HeldReversals<'c>(pub(super) &'c Connection);

#[cfg(feature = "sqlite")]
impl HeldReversals<'_> {
    /// Holds a reversal (once per id) and drops ones that waited too long.
    pub(crate) fn hold(&self, reversal: &HeldReversal, now_ms: i64) -> rusqlite::Result<()> {
        self.0.execute(
            "DELETE FROM payment_reversals_held WHERE received_ms < ?1",
            [now_ms - KEEP_MS],
        )?;
        self.0.execute(
            "INSERT OR IGNORE INTO payment_reversals_held (reversal_id, kind, payment_intent, amount, currency, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                reversal.id,
                reversal.kind,
                reversal.payment_intent,
                reversal.amount,
                reversal.currency,
                now_ms
            ],
        )?;
        Ok(())
    }

    /// Takes the reversals held for `payment_intent`, oldest first.
    pub(crate) fn take(&self, payment_intent: &str) -> rusqlite::Result<Vec<HeldReversal>> {
        let held = self
            .0
            .prepare_cached(
                "SELECT reversal_id, kind, payment_intent, amount, currency FROM payment_reversals_held WHERE payment_intent = ?1 ORDER BY received_ms",
            )?
            .query_map([payment_intent], |row| {
                Ok(HeldReversal {
                    id: row.get(0)?,
                    kind: row.get(1)?,
                    payment_intent: row.get(2)?,
                    amount: row.get(3)?,
                    currency: row.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        self.0.execute(
            "DELETE FROM payment_reversals_held WHERE payment_intent = ?1",
            [payment_intent],
        )?;
        Ok(held)
    }
}
