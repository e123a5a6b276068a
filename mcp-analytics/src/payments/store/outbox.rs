//! `meter_outbox`: usage of successful metered calls until the provider has it.

#[cfg(feature = "sqlite")]
use rusqlite::{Connection, params};

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

/// Where an outbox row stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Still to deliver (again).
    Pending,
    /// The provider has it.
    Sent,
    /// The provider can never take it (too old).
    Failed,
}

impl Delivery {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Sent => "sent",
            Delivery::Failed => "failed",
        }
    }
}

/// The `meter_outbox` table.
#[cfg(feature = "sqlite")]
pub(crate) struct Outbox<'c>(pub(super) &'c Connection);

#[cfg(feature = "sqlite")]
impl Outbox<'_> {
    /// Puts meter events into the outbox (a repeated identifier is ignored). Run it inside a
    /// transaction to write a batch at once.
    pub(crate) fn enqueue(&self, rows: &[MeterRow], now_ms: i64) -> rusqlite::Result<()> {
        let mut insert = self.0.prepare_cached(
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
        Ok(())
    }

    /// Pending meter events due by `now_ms`, oldest first.
    pub(crate) fn due(&self, now_ms: i64, limit: usize) -> rusqlite::Result<Vec<MeterRow>> {
        let mut statement = self.0.prepare_cached(
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
    pub(crate) fn next_due(&self) -> rusqlite::Result<Option<i64>> {
        self.0.query_row(
            "SELECT min(next_attempt_ms) FROM meter_outbox WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )
    }

    /// Records a delivery attempt's outcome.
    pub(crate) fn update(
        &self,
        identifier: &str,
        state: Delivery,
        next_attempt_ms: i64,
        error: Option<&str>,
    ) -> rusqlite::Result<()> {
        self.0
            .prepare_cached(
                "UPDATE meter_outbox SET state = ?2, attempts = attempts + 1, next_attempt_ms = ?3, last_error = ?4 WHERE identifier = ?1",
            )?
            .execute(params![identifier, state.as_str(), next_attempt_ms, error])?;
        Ok(())
    }

    /// Meter events not yet delivered.
    pub(crate) fn pending(&self) -> rusqlite::Result<i64> {
        self.0.query_row(
            "SELECT count(*) FROM meter_outbox WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )
    }
}
