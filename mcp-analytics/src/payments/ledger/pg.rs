//! [`PgLedger`]: the ledger's storage in PostgreSQL, shared by every replica of a server.
//!
//! Each operation is one transaction with the semantics of [`SqliteLedger`]. What SQLite gets
//! from its single writer, PostgreSQL gets from locks: the operations a webhook or a sync
//! applies (rare) take one transaction-scoped advisory lock, so they run one at a time across
//! replicas; the operations of every paid call — reserving a credit, using it, giving it back —
//! lock only the user's entitlement row. A credit is reserved in the database: a row in
//! `payment_reservations` with a lease this replica renews while it lives; the credits held
//! count it until the call uses it (a conditional decrement) or gives it back (the row goes),
//! so a take-back meanwhile behaves as on SQLite. Every change to what a user holds sends a
//! `NOTIFY` naming the user, in the same transaction, for the other replicas' caches.
//!
//! [`SqliteLedger`]: super::sqlite::SqliteLedger

mod changes;

use deadpool_postgres::Transaction;

use self::changes::{apply_subscription, fulfil, payment_failed, reverse, sync_subscriptions};
use super::store::{
    Fulfilment, Holding, LedgerStore, Purchase, Reversal, StoreFuture, SubscriptionChange,
};
use crate::payments::{
    domain::{EntitlementKey, PriceSet},
    provider::SubscriptionInfo,
    store::{
        StoreError, SubscriptionRow,
        pg::{PgPayments, checkouts, holdings},
    },
};

/// The channel the ledger's changes are announced on.
pub(crate) const CHANNEL: &str = "mcp_analytics_ledger";

/// How long a reservation lives unless its replica renews it (a dead replica's credits come
/// back after this long).
pub(crate) const LEASE_MS: i64 = 60_000;

/// The advisory lock the rare ledger operations hold (as SQLite's one writer would).
const LEDGER_LOCK: i64 = 0x6d63_705f_6c65_6467; // "mcp_ledg"

/// The payload longest user ids are announced with: "everyone" (NOTIFY takes < 8000 bytes).
const MAX_PAYLOAD: usize = 7000;

/// The ledger's tables in PostgreSQL.
pub(crate) struct PgLedger {
    pg: PgPayments,
    /// This replica's name (on its reservations and its announcements).
    replica: String,
}

type PgResult<T> = Result<T, tokio_postgres::Error>;

impl PgLedger {
    pub(crate) fn new(pg: PgPayments, replica: String) -> Self {
        Self { pg, replica }
    }

    /// This replica's name.
    pub(crate) fn replica(&self) -> &str {
        &self.replica
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pg.pool.get().await?)
    }

    /// Renews the leases of this replica's reservations and deletes leases run out (their
    /// credits are free again), on `client`.
    pub(crate) async fn renew_leases_on(
        &self,
        client: &tokio_postgres::Client,
        now_ms: i64,
    ) -> Result<(), tokio_postgres::Error> {
        client
            .execute(
                "UPDATE payment_reservations SET lease_until_ms = $2 WHERE replica = $1",
                &[&self.replica, &(now_ms + LEASE_MS)],
            )
            .await?;
        client
            .execute(
                "DELETE FROM payment_reservations WHERE lease_until_ms <= $1",
                &[&now_ms],
            )
            .await?;
        Ok(())
    }
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
/// ledger's advisory lock.
macro_rules! transaction {
    ($self:ident, locked: $locked:expr, |$tx:ident| $body:expr) => {{
        let mut client = $self.client().await?;
        let $tx = client.transaction().await?;
        if $locked {
            $tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LEDGER_LOCK])
                .await?;
        }
        let result = $body.await?;
        $tx.commit().await?;
        Ok(result)
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
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            transaction!(self, locked: false, |tx| use_credit(&tx, &self.replica, user, key))
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn reserve_credit<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        now_ms: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            transaction!(self, locked: false, |tx| holdings::reserve(
                &tx,
                user,
                key.as_str(),
                &self.replica,
                now_ms,
                now_ms + LEASE_MS,
            ))
        })
    }

    fn release_credit<'a>(&'a self, user: &'a str, key: &'a EntitlementKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let client = self.client().await?;
            holdings::end_reservation(&client, user, key.as_str(), &self.replica).await?;
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
    let now = crate::payments::now_ms();
    let row = holdings::entitlement(tx, user, key.as_str(), replica, now)
        .await?
        .unwrap_or_default();
    let prices = PriceSet::decode(key.as_str());
    let covering: Vec<SubscriptionRow> = holdings::subscriptions_of(tx, user)
        .await?
        .into_iter()
        .filter(|sub| sub.prices.covers(&prices))
        .collect();
    let subscription = covering
        .iter()
        .find(|sub| sub.status.grants_access())
        .or_else(|| covering.iter().find(|sub| sub.status.needs_payment_fix()))
        .cloned();
    let checked_ms = subscription
        .as_ref()
        .map_or(row.checked_ms, |sub| sub.updated_ms.max(row.checked_ms));
    Ok(Holding {
        credits: row.credits,
        unlimited: row.unlimited,
        subscription: subscription.map(|sub| (sub.id, sub.status)),
        checked_ms,
    })
}

/// Ends the call's reservation and uses its credit: one held, or one taken back (see
/// [`LedgerStore::consume_credit`]).
async fn use_credit(
    tx: &Transaction<'_>,
    replica: &str,
    user: &str,
    key: &EntitlementKey,
) -> PgResult<bool> {
    // The entitlement row first, then the reservation: the order `reserve` locks them in.
    let used = if holdings::consume(tx, user, key.as_str()).await? {
        true
    } else {
        // Charged to a take-back: that reads and writes the checkouts the rare operations
        // change, so it waits for them (and they for it).
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LEDGER_LOCK])
            .await?;
        if holdings::consume(tx, user, key.as_str()).await? {
            true
        } else {
            if !checkouts::use_taken_back_credit(tx, user, key).await? {
                tracing::warn!(user, key = %key, "a call used a credit neither held nor taken back");
            }
            false
        }
    };
    if !holdings::end_reservation(tx, user, key.as_str(), replica).await? {
        tracing::warn!(user, key = %key, "a credit's reservation ran out while its call ran");
    }
    notify(tx, replica, user).await?;
    Ok(used)
}
