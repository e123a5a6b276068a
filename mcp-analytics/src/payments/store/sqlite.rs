//! The payment tables in a SQLite file, behind one connection shared by the payment components
//! of this process (feature `sqlite`).

use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};

use rusqlite::Connection;

use super::{
    Checkouts, Customers, Entitlements, Events, HeldReversals, Outbox, Subscriptions, WebhookEvents,
};

/// The payment tables' connection, shared by the payment components (each uses its own
/// tables).
#[derive(Clone)]
pub(crate) struct SharedStore(Arc<Mutex<PaymentStore>>);

impl SharedStore {
    pub(crate) fn new(store: PaymentStore) -> Self {
        Self(Arc::new(Mutex::new(store)))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, PaymentStore> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The payment tables behind one connection.
pub(crate) struct PaymentStore {
    conn: Connection,
}

impl PaymentStore {
    /// Opens the database at `path`, migrating it (the analytics tables included) when needed.
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        crate::schema::migrate(&conn)?;
        Ok(Self { conn })
    }

    /// Runs `work` in one transaction (committed when it succeeds). It takes the write lock
    /// at once (`BEGIN IMMEDIATE`, waiting up to the busy timeout): a transaction that read
    /// first could not upgrade after another connection (the analytics writer) committed.
    pub(crate) fn transaction<R>(
        &self,
        work: impl FnOnce(&Self) -> rusqlite::Result<R>,
    ) -> rusqlite::Result<R> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let result = work(self)?;
        tx.commit()?;
        Ok(result)
    }

    /// Runs `work` in one read transaction (deferred: it takes no write lock).
    pub(crate) fn read<R>(
        &self,
        work: impl FnOnce(&Self) -> rusqlite::Result<R>,
    ) -> rusqlite::Result<R> {
        let tx = self.conn.unchecked_transaction()?;
        let result = work(self)?;
        tx.commit()?;
        Ok(result)
    }

    pub(crate) fn customers(&self) -> Customers<'_> {
        Customers(&self.conn)
    }

    pub(crate) fn checkouts(&self) -> Checkouts<'_> {
        Checkouts(&self.conn)
    }

    pub(crate) fn entitlements(&self) -> Entitlements<'_> {
        Entitlements(&self.conn)
    }

    pub(crate) fn subscriptions(&self) -> Subscriptions<'_> {
        Subscriptions(&self.conn)
    }

    pub(crate) fn events(&self) -> Events<'_> {
        Events(&self.conn)
    }

    pub(crate) fn outbox(&self) -> Outbox<'_> {
        Outbox(&self.conn)
    }

    pub(crate) fn held_reversals(&self) -> HeldReversals<'_> {
        HeldReversals(&self.conn)
    }

    pub(crate) fn webhook_events(&self) -> WebhookEvents<'_> {
        WebhookEvents(&self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::domain::{EntitlementKey, SubscriptionStatus};
    use crate::payments::store::TakenBack;

    /// The payment tables as the release before migrations created them (with the columns it
    /// added later), holding a disputed purchase, a subscription and a refused meter event.
    const PREVIOUS_RELEASE: &str = r#"
CREATE TABLE payment_checkouts (
    session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, tool TEXT NOT NULL, price_key TEXT NOT NULL,
    mode TEXT NOT NULL, url TEXT, status TEXT NOT NULL, amount INTEGER, currency TEXT,
    expires_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, fulfilled INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE payment_entitlements (
    user_id TEXT NOT NULL, price_key TEXT NOT NULL, credits INTEGER NOT NULL DEFAULT 0,
    unlimited INTEGER NOT NULL DEFAULT 0, subscription_id TEXT, subscription_status TEXT,
    checked_ms INTEGER NOT NULL, PRIMARY KEY (user_id, price_key)
) WITHOUT ROWID;
CREATE TABLE payment_subscriptions (
    subscription_id TEXT PRIMARY KEY, user_id TEXT, tool TEXT, status TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE payment_events (
    id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL, user_id TEXT, tool TEXT,
    amount INTEGER, currency TEXT, reference TEXT, detail TEXT
);
CREATE TABLE meter_outbox (
    identifier TEXT PRIMARY KEY, event_name TEXT NOT NULL, customer_id TEXT NOT NULL, user_id TEXT,
    tool TEXT, value INTEGER NOT NULL, ts_s INTEGER NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL, last_error TEXT
) WITHOUT ROWID;
ALTER TABLE payment_checkouts ADD COLUMN payment_intent TEXT;
INSERT INTO payment_checkouts VALUES ('cs_1', 'u', 'image', 'price_a', 'payment', NULL, 'complete', 500, 'usd', 0, 0, 1, 'pi_1');
INSERT INTO payment_entitlements VALUES ('u', 'price_a', 3, 0, NULL, NULL, 0);
INSERT INTO payment_entitlements VALUES ('u', 'price_pro', 0, 0, 'sub_1', 'active', 0);
INSERT INTO payment_subscriptions VALUES ('sub_1', 'u', 'report', 'active', 0);
INSERT INTO payment_entitlements VALUES ('v', 'price_team', 0, 0, 'sub_2', 'trialing', 5);
INSERT INTO payment_events (ts_ms, kind, reference, detail) VALUES (0, 'disputed', 'dp_1', 'cs_1');
INSERT INTO meter_outbox VALUES ('m1', 'api_call', 'cus_1', 'u', 'api', 1, 0, 'failed', 1, 0, 'Stripe answered 401');
"#;

    #[test]
    fn a_database_of_the_previous_release_keeps_what_users_bought() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(PREVIOUS_RELEASE).unwrap();
        // The old code added these on open; the disputed purchase was taken back.
        old.execute_batch(
            "ALTER TABLE payment_checkouts ADD COLUMN refunded INTEGER NOT NULL DEFAULT 0; UPDATE payment_checkouts SET refunded = 1",
        )
        .unwrap();
        drop(old);

        let store = PaymentStore::open(&path).unwrap();
        let checkout = store.checkouts().get("cs_1").unwrap().unwrap();
        assert_eq!(
            checkout.taken_back,
            Some(TakenBack::Disputed),
            "so a won dispute grants it again"
        );
        assert_eq!(
            checkout.taken_credits,
            Some(0),
            "how many the old release took is unknown: a win returns none"
        );
        let synced_only = store.subscriptions().get("sub_2").unwrap().unwrap();
        assert_eq!(
            (
                synced_only.user_id.as_deref(),
                synced_only.status,
                synced_only.prices.encode()
            ),
            (
                Some("v"),
                SubscriptionStatus::Trialing,
                "price_team".to_owned()
            ),
            "a subscription the old release knew only from Stripe's listing is kept"
        );
        assert_eq!(
            checkout.granted, None,
            "the legacy `granted` column was added, empty"
        );
        assert_eq!(checkout.key, EntitlementKey::from_stored("price_a"));
        let sub = store.subscriptions().get("sub_1").unwrap().unwrap();
        assert_eq!(sub.status, SubscriptionStatus::Active);
        assert_eq!(
            sub.prices.encode(),
            "price_pro",
            "a subscription covers the prices it granted"
        );
        assert_eq!(
            store
                .entitlements()
                .get("u", "price_a")
                .unwrap()
                .unwrap()
                .credits,
            3
        );
        assert_eq!(
            store.outbox().pending().unwrap(),
            1,
            "usage given up on is retried"
        );
        drop(store);
        // Opening again applies nothing twice.
        let again = PaymentStore::open(&path).unwrap();
        assert_eq!(again.outbox().pending().unwrap(), 1);
    }
}
