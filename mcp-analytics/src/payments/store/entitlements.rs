//! `payment_entitlements`: the credits and unlimited unlocks each user holds per entitlement
//! key, and when the provider was last asked. Written by the ledger only.

#[cfg(feature = "sqlite")]
use rusqlite::{Connection, OptionalExtension, params};

/// What a user holds under one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EntitlementRow {
    pub credits: i64,
    pub unlimited: bool,
    /// When the provider was last asked (Unix ms).
    pub checked_ms: i64,
}

/// The `payment_entitlements` table.
#[cfg(feature = "sqlite")]
pub(crate) struct Entitlements<'c>(pub(super) &'c Connection);

#[cfg(feature = "sqlite")]
impl Entitlements<'_> {
    pub(crate) fn get(&self, user_id: &str, key: &str) -> rusqlite::Result<Option<EntitlementRow>> {
        self.0
            .prepare_cached(
                "SELECT credits, unlimited, checked_ms FROM payment_entitlements WHERE user_id = ?1 AND price_key = ?2",
            )?
            .query_row([user_id, key], |row| {
                Ok(EntitlementRow {
                    credits: row.get(0)?,
                    unlimited: row.get(1)?,
                    checked_ms: row.get(2)?,
                })
            })
            .optional()
    }

    /// Adds `credits` (or unlimited use) to what the user holds.
    pub(crate) fn add(
        &self,
        user_id: &str,
        key: &str,
        credits: i64,
        unlimited: bool,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.0.execute(
            "INSERT INTO payment_entitlements (user_id, price_key, credits, unlimited, checked_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id, price_key) DO UPDATE SET credits = credits + excluded.credits, unlimited = unlimited OR excluded.unlimited",
            params![user_id, key, credits, unlimited, now_ms],
        )?;
        Ok(())
    }

    /// Takes up to `credits` away; returns how many were taken.
    pub(crate) fn take_credits(
        &self,
        user_id: &str,
        key: &str,
        credits: i64,
    ) -> rusqlite::Result<i64> {
        let held = self.get(user_id, key)?.map_or(0, |row| row.credits);
        let taken = held.min(credits).max(0);
        self.0.execute(
            "UPDATE payment_entitlements SET credits = credits - ?3 WHERE user_id = ?1 AND price_key = ?2",
            params![user_id, key, taken],
        )?;
        Ok(taken)
    }

    pub(crate) fn set_unlimited(
        &self,
        user_id: &str,
        key: &str,
        unlimited: bool,
    ) -> rusqlite::Result<()> {
        self.0.execute(
            "UPDATE payment_entitlements SET unlimited = ?3 WHERE user_id = ?1 AND price_key = ?2",
            params![user_id, key, unlimited],
        )?;
        Ok(())
    }

    /// Uses one credit; `false` when none was left (one conditional update: atomic).
    pub(crate) fn consume(&self, user_id: &str, key: &str) -> rusqlite::Result<bool> {
        let changed = self
            .0
            .prepare_cached(
                "UPDATE payment_entitlements SET credits = credits - 1 WHERE user_id = ?1 AND price_key = ?2 AND credits > 0",
            )?
            .execute([user_id, key])?;
        Ok(changed == 1)
    }

    /// Notes that the provider was asked at `now_ms`.
    pub(crate) fn touch(&self, user_id: &str, key: &str, now_ms: i64) -> rusqlite::Result<()> {
        self.0.execute(
            "INSERT INTO payment_entitlements (user_id, price_key, checked_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, price_key) DO UPDATE SET checked_ms = excluded.checked_ms",
            params![user_id, key, now_ms],
        )?;
        Ok(())
    }
}
