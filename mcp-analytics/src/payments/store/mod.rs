//! The payment tables in the analytics database, one type per table: who is which provider
//! customer, checkouts, entitlements, subscriptions, `payment_events` (the documented analytics
//! table), the meter-event outbox and seen webhooks. The tables are created by the database's
//! migrations (`crate::schema`); only the payments module writes them.

mod checkouts;
mod customers;
mod entitlements;
mod events;
mod outbox;
mod subscriptions;
mod webhook_events;

use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};

use rusqlite::Connection;

pub(crate) use checkouts::{Checkouts, NewCheckout, TakenBack};
pub(crate) use customers::Customers;
pub(crate) use entitlements::Entitlements;
pub use events::PaymentEventKind;
pub(crate) use events::{EventRow, Events};
pub(crate) use outbox::{Delivery, MeterRow, Outbox};
pub(crate) use subscriptions::{SubscriptionRow, Subscriptions};
pub(crate) use webhook_events::WebhookEvents;

/// A failure of the payment tables.
#[derive(Debug, thiserror::Error)]
#[error("payment store: {0}")]
pub(crate) struct StoreError(#[from] rusqlite::Error);

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

    pub(crate) fn webhook_events(&self) -> WebhookEvents<'_> {
        WebhookEvents(&self.conn)
    }
}
