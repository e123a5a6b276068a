//! The payment tables in the analytics database, one type per table: who is which provider
//! customer, checkouts, entitlements, subscriptions, `payment_events` (the documented analytics
//! table), the meter-event outbox and seen webhooks. The tables are created by the database's
//! migrations (`crate::schema`); only the payments module writes them.

mod checkouts;
mod customers;
#[cfg(feature = "workers")]
pub(crate) mod d1;
mod db;
mod entitlements;
mod events;
mod outbox;
#[cfg(feature = "postgres")]
pub(crate) mod pg;
#[cfg(feature = "postgres")]
pub(crate) mod pg_outbox;
mod reversals;
#[cfg(feature = "sqlite")]
mod sqlite;
mod subscriptions;
mod webhook_events;

pub(crate) use checkouts::{CheckoutRow, TakenBack};
pub(crate) use entitlements::EntitlementRow;
pub(crate) use events::EventRow;
pub use events::PaymentEventKind;
pub(crate) use outbox::{Delivery, MeterRow};
pub(crate) use reversals::HeldReversal;
#[cfg(feature = "sqlite")]
pub(crate) use sqlite::{PaymentStore, SharedStore};
pub(crate) use subscriptions::SubscriptionRow;
pub(crate) use webhook_events::WebhookClaim;
#[cfg(feature = "sqlite")]
pub(crate) use {
    checkouts::Checkouts, customers::Customers, entitlements::Entitlements, events::Events,
    outbox::Outbox, reversals::HeldReversals, subscriptions::Subscriptions,
    webhook_events::WebhookEvents,
};

/// A failure of the payment tables.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// SQLite failed.
    #[cfg(feature = "sqlite")]
    #[error("payment store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (or could not be reached).
    #[cfg(feature = "postgres")]
    #[error("payment store: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the pool.
    #[cfg(feature = "postgres")]
    #[error("payment store: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// D1 failed (or could not be reached).
    #[cfg(feature = "workers")]
    #[error("payment store: {0}")]
    D1(#[from] crate::d1::D1Error),
    /// What this step needs is not stored on D1 yet (Stripe's webhooks: refunds, disputes,
    /// invoices, delayed payments).
    #[cfg(feature = "workers")]
    #[error("payment store: {0} is not available on D1 yet")]
    NotOnD1(&'static str),
}

/// Where the payment components keep their state: one SQLite connection shared in this
/// process, or a PostgreSQL database shared by every replica. Each component holds a clone and
/// reaches its tables through it. Each database is a variant of its feature; a build with none
/// has no value of this type (every match then ends in [`PaymentDb::absent`]).
#[derive(Clone)]
pub(crate) enum PaymentDb {
    /// The SQLite file's payment tables (one process).
    #[cfg(feature = "sqlite")]
    Sqlite(SharedStore),
    /// The PostgreSQL database's payment tables (many replicas).
    #[cfg(feature = "postgres")]
    Postgres(pg::PgPayments),
    /// A Cloudflare D1 database's payment tables (many Worker isolates).
    #[cfg(feature = "workers")]
    D1(d1::D1Payments),
}

impl PaymentDb {
    /// The SQLite store, when that is where the payment tables are.
    #[cfg(feature = "sqlite")]
    #[allow(dead_code)] // Every component matches on the database itself so far.
    pub(crate) fn sqlite(&self) -> Option<&SharedStore> {
        match self {
            PaymentDb::Sqlite(store) => Some(store),
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(_) => None,
            #[cfg(feature = "workers")]
            PaymentDb::D1(_) => None,
        }
    }

    /// A build without a payment database has no value of this type (building payments fails
    /// first): the arm every match needs there.
    #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
    pub(crate) fn absent(&self) -> ! {
        match *self {}
    }
}
