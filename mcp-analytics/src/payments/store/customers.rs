//! `payment_customers`: the provider customer of each user.

#[cfg(feature = "sqlite")]
use rusqlite::{Connection, OptionalExtension, params};

/// The `payment_customers` table.
#[cfg(feature = "sqlite")]
pub(crate) struct Customers<'c>(pub(super) &'c Connection);

#[cfg(feature = "sqlite")]
impl Customers<'_> {
    pub(crate) fn of_user(&self, user_id: &str) -> rusqlite::Result<Option<String>> {
        self.0
            .prepare_cached("SELECT customer_id FROM payment_customers WHERE user_id = ?1")?
            .query_row([user_id], |row| row.get(0))
            .optional()
    }

    pub(crate) fn user_of(&self, customer_id: &str) -> rusqlite::Result<Option<String>> {
        self.0
            .query_row(
                "SELECT user_id FROM payment_customers WHERE customer_id = ?1",
                [customer_id],
                |row| row.get(0),
            )
            .optional()
    }

    /// Records the user's customer unless one is recorded (the first one stays).
    pub(crate) fn insert(
        &self,
        user_id: &str,
        customer_id: &str,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.0.execute(
            "INSERT OR IGNORE INTO payment_customers (user_id, customer_id, created_ms) VALUES (?1, ?2, ?3)",
            params![user_id, customer_id, now_ms],
        )?;
        Ok(())
    }

    /// Forgets `customer_id` as the user's customer (the provider no longer knows it).
    pub(crate) fn forget(&self, user_id: &str, customer_id: &str) -> rusqlite::Result<()> {
        self.0.execute(
            "DELETE FROM payment_customers WHERE user_id = ?1 AND customer_id = ?2",
            [user_id, customer_id],
        )?;
        Ok(())
    }
}
