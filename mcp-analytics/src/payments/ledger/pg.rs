//! [`PgLedger`]: the ledger's storage in PostgreSQL, shared by every replica of a server.
//!
//! Each operation is one transaction with the semantics of [`SqliteLedger`]. What SQLite gets
//! from its single writer, PostgreSQL gets from locks: the operations a webhook or a sync
//! applies (rare) take one transaction-scoped advisory lock, so they run one at a time across
//! replicas; the operations of every paid call — reserving a credit, using it, giving it back —
//! lock only the user's entitlement row and the call's own rows. Every transaction takes its
//! locks in one order — a credit's use record, the entitlement row, the advisory lock, the
//! checkouts, the reservation — and one picked as a deadlock's or a serialization failure's
//! victim anyway (another client of the database) runs again.
//!
//! A credit is reserved in the database: a row in `payment_reservations`, named by the call's
//! [`ReservationId`], with a lease this replica renews while the call holds it (leases are
//! timed by the database's clock); the credits held count it until the call uses it (a
//! conditional decrement) or gives it back (the row goes), so a take-back meanwhile behaves as
//! on SQLite. A use is recorded by reservation for as long as a lease, so running it again
//! uses nothing more.
//!
//! A change other replicas must learn — a purchase, a refund or dispute, a subscription's
//! state — sends a `NOTIFY` naming the user, in the same transaction, for their caches. A
//! credit's reservation and use send none: every replica reserves in the database before
//! running a call on a credit, so a cache counting a credit another replica took only costs
//! that reservation's answer ("none free"), and then a reload.
//!
//! [`SqliteLedger`]: super::sqlite::SqliteLedger

mod changes;

use std::{
    collections::HashSet,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use deadpool_postgres::Transaction;
use tokio_postgres::error::SqlState;

use self::changes::{apply_subscription, fulfil, payment_failed, reverse, sync_subscriptions};
use super::rules;
use super::store::{
    CreditUse, Fulfilment, Holding, LedgerStore, Purchase, ReservationId, Reversal, StoreFuture,
    SubscriptionChange,
};
use crate::payments::{
    domain::{EntitlementKey, PriceSet},
    provider::SubscriptionInfo,
    store::{
        StoreError,
        pg::{PgPayments, checkouts, holdings},
    },
};

/// The channel the ledger's changes are announced on.
pub(crate) const CHANNEL: &str = "mcp_analytics_ledger";

/// How long a reservation lives unless its replica renews it (a dead replica's credits come
/// back after this long).
pub(crate) const LEASE_MS: i64 = 60_000;

/// The advisory lock the rare ledger operations hold (as SQLite's one writer would).
pub(super) const LEDGER_LOCK: i64 = 0x6d63_705f_6c65_6467; // "mcp_ledg"

/// The payload longest user ids are announced with: "everyone" (NOTIFY takes < 8000 bytes).
const MAX_PAYLOAD: usize = 7000;

/// How many times a transaction picked as a deadlock's or serialization failure's victim runs.
const CONFLICT_ATTEMPTS: u32 = 4;

/// The ledger's tables in PostgreSQL.
pub(crate) struct PgLedger {
    pg: PgPayments,
    /// This replica's name (on its reservations and its announcements).
    replica: String,
    /// The reservations this replica's calls hold: the only leases it renews.
    held: Mutex<HashSet<ReservationId>>,
}

type PgResult<T> = Result<T, tokio_postgres::Error>;

impl PgLedger {
    pub(crate) fn new(pg: PgPayments, replica: String) -> Self {
        Self {
            pg,
            replica,
            held: Mutex::default(),
        }
    }

    /// This replica's name.
    pub(crate) fn replica(&self) -> &str {
        &self.replica
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pg.pool.get().await?)
    }

    fn held(&self) -> MutexGuard<'_, HashSet<ReservationId>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Renews the leases of the reservations this replica's calls hold, and deletes leases run
    /// out (their credits are free again) and old records of credits used, on `client`.
    pub(crate) async fn renew_leases_on(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<(), tokio_postgres::Error> {
        let held: Vec<String> = self.held().iter().map(ToString::to_string).collect();
        if !held.is_empty() {
            holdings::renew(client, &self.replica, &held, LEASE_MS).await?;
        }
        holdings::delete_expired(client).await
    }
}

/// Whether PostgreSQL aborted a transaction that may succeed when run again: picked as a
/// deadlock's victim, or a serialization failure.
fn conflicted(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// Announces a change to what `user` holds (delivered when the transaction commits).
async fn notify(tx: &Transaction<'_>, replica: &str, user: &str) -> PgResult<()> {
    let payload = if user.len() > MAX_PAYLOAD {
        format!("{replica} *")
    } else {
        format!("{replica} u:{user}")
    };
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await?;
    Ok(())
}

/// Runs one ledger operation in a transaction: `$body` gets `tx`; with `locked`, it holds the
/// ledger's advisory lock. A transaction PostgreSQL aborted as a deadlock's or serialization
/// failure's victim (rolled back: nothing of it happened) runs again, a few times.
macro_rules! transaction {
    ($self:ident, locked: $locked:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 1;
        loop {
            let mut client = match $self.client().await {
                Ok(client) => client,
                Err(error) => break Err(error),
            };
            let outcome: PgResult<_> = async {
                let $tx = client.transaction().await?;
                if $locked {
                    $tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LEDGER_LOCK])
                        .await?;
                }
                let result = $body.await?;
                $tx.commit().await?;
                Ok(result)
            }
            .await;
            match outcome {
                Err(error) if attempt < CONFLICT_ATTEMPTS && conflicted(&error) => {
                    tracing::debug!(attempt, "a ledger transaction runs again: {error}");
                    drop(client);
                    tokio::time::sleep(crate::retry::backoff(
                        Duration::from_millis(10),
                        Duration::from_millis(200),
                        attempt,
                    ))
                    .await;
                    attempt += 1;
                }
                outcome => break outcome.map_err(StoreError::from),
            }
        }
    }};
}

impl LedgerStore for PgLedger {
    fn holding<'a>(&'a self, user: &'a str, key: &'a EntitlementKey) -> StoreFuture<'a, Holding> {
        Box::pin(async move {
            transaction!(self, locked: false, |tx| holding(&tx, &self.replica, user, key))
        })
    }

    fn consume_credit<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        reservation: ReservationId,
    ) -> StoreFuture<'a, CreditUse> {
        Box::pin(async move {
            let id = reservation.to_string();
            // Kept (and renewed) after a failure: the credit stays taken until it is used.
            let used = transaction!(self, locked: false, |tx| use_credit(&tx, user, key, &id))?;
            self.held().remove(&reservation);
            Ok(used)
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn reserve_credit<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        reservation: ReservationId,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            // Renewed from now on, in case the reservation commits however this call ends.
            self.held().insert(reservation);
            let id = reservation.to_string();
            let reserved = transaction!(self, locked: false, |tx| holdings::reserve(
                &tx,
                user,
                key.as_str(),
                &self.replica,
                &id,
                LEASE_MS,
            ))?;
            if !reserved {
                self.held().remove(&reservation);
            }
            Ok(reserved)
        })
    }

    fn release_credit<'a>(
        &'a self,
        _user: &'a str,
        _key: &'a EntitlementKey,
        reservation: ReservationId,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.held().remove(&reservation);
            let client = self.client().await?;
            holdings::end_reservation(&client, &reservation.to_string()).await?;
            Ok(())
        })
    }

    fn fulfil<'a>(
        &'a self,
        purchase: &'a Purchase<'a>,
        now_ms: i64,
    ) -> StoreFuture<'a, Fulfilment> {
        Box::pin(async move {
            transaction!(self, locked: true, |tx| async {
                let fulfilment = fulfil(&tx, purchase, now_ms).await?;
                notify(&tx, &self.replica, purchase.user).await?;
                PgResult::Ok(fulfilment)
            })
        })
    }

    fn payment_failed<'a>(
        &'a self,
        purchase: &'a Purchase<'a>,
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            transaction!(self, locked: true, |tx| payment_failed(&tx, purchase, now_ms))
        })
    }

    fn reverse<'a>(
        &'a self,
        reversal: &'a Reversal,
        now_ms: i64,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            transaction!(self, locked: true, |tx| async {
                let user = reverse(&tx, reversal, now_ms).await?;
                if let Some(user) = &user {
                    notify(&tx, &self.replica, user).await?;
                }
                PgResult::Ok(user)
            })
        })
    }

    fn apply_subscription<'a>(
        &'a self,
        subscription: &'a SubscriptionInfo,
        change: SubscriptionChange,
        now_ms: i64,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            transaction!(self, locked: true, |tx| async {
                let user = apply_subscription(&tx, subscription, change, now_ms).await?;
                if let Some(user) = &user {
                    notify(&tx, &self.replica, user).await?;
                }
                PgResult::Ok(user)
            })
        })
    }

    fn sync_subscriptions<'a>(
        &'a self,
        user: &'a str,
        prices: &'a PriceSet,
        listed: &'a [SubscriptionInfo],
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            transaction!(self, locked: true, |tx| async {
                sync_subscriptions(&tx, user, prices, listed, now_ms).await?;
                notify(&tx, &self.replica, user).await
            })
        })
    }

    fn touch<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            transaction!(self, locked: false, |tx| holdings::touch(
                &tx,
                user,
                key.as_str(),
                now_ms
            ))
        })
    }
}

async fn holding(
    tx: &Transaction<'_>,
    replica: &str,
    user: &str,
    key: &EntitlementKey,
) -> PgResult<Holding> {
    let row = holdings::entitlement(tx, user, key.as_str(), replica)
        .await?
        .unwrap_or_default();
    let subscriptions = holdings::subscriptions_of(tx, user).await?;
    Ok(rules::holding(row, subscriptions, key))
}

/// Ends the call's reservation and uses its credit: one held, or one taken back (see
/// [`LedgerStore::consume_credit`]) — unless this reservation's credit was used already.
async fn use_credit(
    tx: &Transaction<'_>,
    user: &str,
    key: &EntitlementKey,
    reservation: &str,
) -> PgResult<CreditUse> {
    // The use record first: a retry waits here for an attempt still in flight.
    if !holdings::first_use(tx, reservation, LEASE_MS).await? {
        return Ok(CreditUse::AlreadyUsed);
    }
    let used = if holdings::consume(tx, user, key.as_str()).await? {
        CreditUse::Used
    } else {
        // Charged to a take-back: that reads and writes the checkouts the rare operations
        // change, so it waits for them (and they for it). The first decrement found no credit
        // and locked nothing, so the advisory lock is taken before the entitlement row, as
        // they take it.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LEDGER_LOCK])
            .await?;
        if holdings::consume(tx, user, key.as_str()).await? {
            CreditUse::Used
        } else {
            if !checkouts::use_taken_back_credit(tx, user, key).await? {
                tracing::warn!(user, key = %key, "a call used a credit neither held nor taken back");
            }
            CreditUse::TakenBack
        }
    };
    if !holdings::end_reservation(tx, reservation).await? {
        tracing::warn!(user, key = %key, "a credit's reservation ran out while its call ran");
    }
    Ok(used)
}
