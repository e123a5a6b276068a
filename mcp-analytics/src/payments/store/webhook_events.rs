//! `stripe_webhook_events`: the webhook events already applied (redeliveries are not).

#[cfg(feature = "sqlite")]
use rusqlite::{Connection, params};

/// A webhook event being applied: marked applied in the transaction that writes what it
/// records, so that a redelivery (or the same event on another replica) writes nothing twice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WebhookClaim<'a> {
    /// Stripe's event id (`evt_…`).
    pub event_id: &'a str,
    /// The event's type (`invoice.paid`, …).
    pub kind: &'a str,
}

/// The `stripe_webhook_events` table.
#[cfg(feature = "sqlite")]
pub(crate) struct WebhookEvents<'c>(pub(super) &'c Connection);

#[cfg(feature = "sqlite")]
impl WebhookEvents<'_> {
    /// Whether the event was already applied.
    pub(crate) fn applied(&self, event_id: &str) -> rusqlite::Result<bool> {
        self.0.query_row(
            "SELECT count(*) > 0 FROM stripe_webhook_events WHERE event_id = ?1",
            [event_id],
            |row| row.get(0),
        )
    }

    /// Remembers that the event was applied.
    pub(crate) fn mark_applied(
        &self,
        event_id: &str,
        kind: &str,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.0.execute(
            "INSERT OR IGNORE INTO stripe_webhook_events (event_id, type, received_ms) VALUES (?1, ?2, ?3)",
            params![event_id, kind, now_ms],
        )?;
        Ok(())
    }
}
