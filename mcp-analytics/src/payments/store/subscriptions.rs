//! `payment_subscriptions`: each subscription's user, tool, status and the prices it covers.
//! Written by the ledger only.

#[cfg(feature = "sqlite")]
use rusqlite::{Connection, OptionalExtension, params};

use crate::payments::domain::{PriceSet, SubscriptionStatus};

/// A stored subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubscriptionRow {
    pub id: String,
    pub user_id: Option<String>,
    pub tool: Option<String>,
    pub status: SubscriptionStatus,
    pub prices: PriceSet,
    /// When its state was last recorded (Unix ms; set by [`Subscriptions::upsert`]).
    pub updated_ms: i64,
}

/// The `payment_subscriptions` table.
#[cfg(feature = "sqlite")]
pub(crate) struct Subscriptions<'c>(pub(super) &'c Connection);

#[cfg(feature = "sqlite")]
fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriptionRow> {
    Ok(SubscriptionRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        tool: row.get(2)?,
        status: SubscriptionStatus::from(row.get_ref(3)?.as_str()?),
        prices: PriceSet::decode(row.get_ref(4)?.as_str_or_null()?.unwrap_or("")),
        updated_ms: row.get(5)?,
    })
}

#[cfg(feature = "sqlite")]
impl Subscriptions<'_> {
    pub(crate) fn get(&self, id: &str) -> rusqlite::Result<Option<SubscriptionRow>> {
        self.0
            .query_row(
                "SELECT subscription_id, user_id, tool, status, prices, updated_ms FROM payment_subscriptions WHERE subscription_id = ?1",
                [id],
                row,
            )
            .optional()
    }

    /// Every subscription of the user.
    pub(crate) fn of_user(&self, user_id: &str) -> rusqlite::Result<Vec<SubscriptionRow>> {
        self.0
            .prepare_cached(
                "SELECT subscription_id, user_id, tool, status, prices, updated_ms FROM payment_subscriptions WHERE user_id = ?1",
            )?
            .query_map([user_id], row)?
            .collect()
    }

    /// Records the subscription's state (the user, tool and prices seen first are kept when
    /// a later event lacks them).
    pub(crate) fn upsert(&self, sub: &SubscriptionRow, now_ms: i64) -> rusqlite::Result<()> {
        let prices = Some(sub.prices.encode()).filter(|prices| !prices.is_empty());
        self.0.execute(
            "INSERT INTO payment_subscriptions (subscription_id, user_id, tool, status, updated_ms, prices) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (subscription_id) DO UPDATE SET user_id = coalesce(excluded.user_id, user_id), tool = coalesce(excluded.tool, tool), status = excluded.status, updated_ms = excluded.updated_ms, prices = coalesce(excluded.prices, prices)",
            params![sub.id, sub.user_id, sub.tool, sub.status.as_str(), now_ms, prices],
        )?;
        Ok(())
    }
}
