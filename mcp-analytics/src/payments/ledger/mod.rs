//! The ledger: the only code that reads or writes what users hold — entitlements, credit
//! reservations, grants and take-backs — in the store and in its in-memory cache together.
//!
//! Every change goes to the store first (one atomic operation, [`LedgerStore`]) and then the
//! affected user's cached holdings are loaded again from the store, under one lock, so memory
//! never disagrees with the store for longer than that step and a credit settled meanwhile
//! counts once. Reserving a credit touches memory only — and, on a store several replicas share
//! (PostgreSQL), the store too, so that no two replicas sell one credit; using it is one
//! transaction in the store: a conditional decrement, or — when a refund or dispute took the
//! credit while the call ran — charging the call to that take-back, so a won dispute returns
//! only unused credits. On a shared store, other replicas' changes reach memory through the
//! store's announcements (`listen`).

mod cache;
#[cfg(feature = "workers")]
mod d1;
#[cfg(all(test, feature = "workers", feature = "sqlite"))]
mod d1_tests;
#[cfg(feature = "postgres")]
mod listen;
#[cfg(all(test, feature = "sqlite"))]
mod model_tests;
#[cfg(feature = "postgres")]
pub(crate) mod pg;
#[cfg(all(test, feature = "postgres"))]
pub(super) mod pg_tests;
mod rules;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
mod store;
#[cfg(all(test, feature = "sqlite"))]
mod tests;

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

pub(crate) use cache::{Access, Decision};
#[cfg(any(all(test, feature = "sqlite"), feature = "stripe"))]
pub(crate) use store::ReversalKind;
pub(crate) use store::{
    Fulfilment, LedgerStore, Purchase, ReservationId, Reversal, SubscriptionChange,
};

use self::{cache::Cache, store::CreditUse};
use super::{
    domain::{EntitlementKey, Granted, PriceSet},
    now_ms,
    provider::{CheckoutInfo, SubscriptionInfo},
    store::{PaymentDb, StoreError},
};

/// How many times using a reserved credit is tried, and the backoff between tries (jittered,
/// doubling from the first to the second bound).
const COMMIT_ATTEMPTS: u32 = 5;
const COMMIT_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));

/// What users hold, in the store and in memory.
pub(crate) struct Ledger {
    store: Arc<dyn LedgerStore>,
    cache: Mutex<Cache>,
    /// Held across a store change and the cache load that follows it.
    writes: tokio::sync::Mutex<()>,
    subscription_ttl_ms: i64,
    /// On a shared store: whether other replicas' announcements are being heard.
    #[cfg(feature = "postgres")]
    listening: std::sync::atomic::AtomicBool,
}

impl Ledger {
    pub(crate) fn new(store: Arc<dyn LedgerStore>, subscription_ttl: Duration) -> Self {
        Self {
            store,
            cache: Mutex::new(Cache::default()),
            writes: tokio::sync::Mutex::new(()),
            subscription_ttl_ms: i64::try_from(subscription_ttl.as_millis()).unwrap_or(i64::MAX),
            #[cfg(feature = "postgres")]
            listening: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The ledger of the payment tables in `db`.
    pub(crate) fn open(
        db: &PaymentDb,
        subscription_ttl: Duration,
    ) -> Result<Arc<Self>, crate::Error> {
        match db {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => Ok(Arc::new(Self::new(
                Arc::new(sqlite::SqliteLedger::new(store.clone())),
                subscription_ttl,
            ))),
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => {
                let replica = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
                let store = Arc::new(pg::PgLedger::new(pg.clone(), replica));
                let ledger = Arc::new(Self::new(store.clone(), subscription_ttl));
                listen::start(Arc::downgrade(&ledger), store, pg.url.clone())?;
                Ok(ledger)
            }
            #[cfg(feature = "workers")]
            PaymentDb::D1(d1) => Ok(Arc::new(Self::new(
                Arc::new(d1::D1Ledger::new(d1.clone())),
                subscription_ttl,
            ))),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides from memory (no provider), reserving a credit when that is what grants the
    /// call — in memory, and on a shared store in the store too (its only round trip):
    /// [`Ledger::commit`] or [`Ledger::release`] it once the call ended. Dropped before the
    /// store answered, it gives the credit back.
    pub(crate) async fn reserve(&self, user: &str, key: &EntitlementKey) -> Decision {
        let now = now_ms();
        let decision = self
            .cache()
            .reserve(user, key, self.subscription_ttl_ms, now);
        let Decision::Granted(Access::Credit(reservation)) = decision else {
            return decision;
        };
        if !self.store.shared() {
            return decision;
        }
        let reserving = Reserving {
            ledger: self,
            user,
            key,
            reservation,
        };
        let reserved = self.store.reserve_credit(user, key, reservation).await;
        reserving.answered();
        match reserved {
            Ok(true) => decision,
            Ok(false) => {
                // Another replica took the last one: decide again without credits.
                let mut cache = self.cache();
                cache.none_left(user, key);
                cache.reserve(user, key, self.subscription_ttl_ms, now)
            }
            Err(error) => {
                tracing::warn!("cannot reserve a credit: {error}");
                // The reservation may have reached the store before the error.
                self.release_in_background(user, key, reservation);
                Decision::Unavailable
            }
        }
    }

    /// A reserved credit's call succeeded: the credit is used for good — one held, or, when a
    /// refund or dispute took it while the call ran, one of those taken back (a won dispute
    /// then returns one credit fewer), in one store transaction. A failure is retried a few
    /// times (using a reservation twice uses one credit); if every attempt fails, the credit
    /// stays reserved — in memory, and in a shared store whose lease this replica keeps
    /// renewing — so no call is sold it again while this process lives (after it, the lease
    /// runs out and the user has it back).
    pub(crate) async fn commit(
        &self,
        user: &str,
        key: &EntitlementKey,
        reservation: ReservationId,
    ) {
        for attempt in 1..=COMMIT_ATTEMPTS {
            let _writes = self.writes.lock().await;
            match self.store.consume_credit(user, key, reservation).await {
                Ok(credit) => {
                    if credit == CreditUse::TakenBack {
                        tracing::warn!(user, key = %key, "a reserved credit was taken back while its call ran");
                    }
                    self.cache().used(user, key);
                    return;
                }
                Err(error) if attempt < COMMIT_ATTEMPTS => {
                    tracing::warn!(attempt, "cannot use a credit yet, trying again: {error}");
                }
                Err(error) => {
                    tracing::error!(
                        user,
                        key = %key,
                        "cannot use a credit; it stays reserved while this process lives: {error}"
                    );
                    return;
                }
            }
            drop(_writes);
            tokio::time::sleep(crate::retry::backoff(
                COMMIT_BACKOFF.0,
                COMMIT_BACKOFF.1,
                attempt,
            ))
            .await;
        }
    }

    /// Whether the store is shared by replicas (credits are reserved in it).
    pub(crate) fn is_shared(&self) -> bool {
        self.store.shared()
    }

    /// A reserved credit's call failed or never finished: the credit goes back — in memory at
    /// once, and in a shared store by a task that runs to its end even if this future is
    /// dropped (or, failing that, when the reservation's lease runs out).
    pub(crate) async fn release(
        &self,
        user: &str,
        key: &EntitlementKey,
        reservation: ReservationId,
    ) {
        if let Some(release) = self.release_in_background(user, key, reservation)
            && let Err(error) = release.await
        {
            tracing::error!("giving a credit back failed: {error}");
        }
    }

    /// [`Ledger::release`] from where nothing can wait (a dropped call); the store's part, if
    /// any, as a task.
    pub(crate) fn release_in_background(
        &self,
        user: &str,
        key: &EntitlementKey,
        reservation: ReservationId,
    ) -> Option<tokio::task::JoinHandle<()>> {
        self.cache().release(user, key);
        if !self.store.shared() {
            return None;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Shutting down: the lease runs out after this process.
            tracing::warn!("a reserved credit is given back when its lease runs out");
            return None;
        };
        let (store, user, key) = (self.store.clone(), user.to_owned(), key.clone());
        Some(runtime.spawn(async move {
            if let Err(error) = store.release_credit(&user, &key, reservation).await {
                // Its lease runs out and frees it.
                tracing::warn!("cannot give a reserved credit back now: {error}");
            }
        }))
    }

    /// Forgets what `user` holds (another replica changed it): the next call loads it again.
    #[cfg(feature = "postgres")]
    pub(crate) fn invalidate_user(&self, user: &str) {
        self.cache().invalidate_user(user);
    }

    /// Forgets what everyone holds (changes may have been missed).
    #[cfg(feature = "postgres")]
    pub(crate) fn invalidate_all(&self) {
        self.cache().invalidate_all();
    }

    /// Notes whether other replicas' changes are being heard (a shared store).
    #[cfg(feature = "postgres")]
    pub(crate) fn set_listening(&self, listening: bool) {
        self.listening
            .store(listening, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether other replicas' changes are being heard (a shared store).
    #[cfg(all(test, feature = "postgres"))]
    pub(crate) fn is_listening(&self) -> bool {
        self.listening.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Loads what the user holds for `key` from the store into memory.
    pub(crate) async fn reload(&self, user: &str, key: &EntitlementKey) -> Result<(), StoreError> {
        let _writes = self.writes.lock().await;
        self.load(user, key).await
    }

    /// The user's subscription covering `key` as last loaded, when it needs a payment fix.
    pub(crate) fn subscription_needing_fix(
        &self,
        user: &str,
        key: &EntitlementKey,
    ) -> Option<String> {
        self.cache()
            .subscription(user, key)
            .filter(|(_, status)| status.needs_payment_fix())
            .map(|(id, _)| id)
    }

    /// Applies a completed checkout created by mcp-analytics (others are ignored): grants what
    /// it bought once paid, once.
    pub(crate) async fn fulfil(&self, session: &CheckoutInfo) -> Result<Fulfilment, StoreError> {
        let Some(purchase) = purchase(session) else {
            return Ok(Fulfilment::NotPaid);
        };
        let _writes = self.writes.lock().await;
        let fulfilment = self.store.fulfil(&purchase, now_ms()).await?;
        self.load_user(purchase.user, None).await?;
        Ok(fulfilment)
    }

    /// Records that a completed checkout's delayed payment failed (it grants nothing).
    pub(crate) async fn payment_failed(&self, session: &CheckoutInfo) -> Result<(), StoreError> {
        let Some(purchase) = purchase(session) else {
            return Ok(());
        };
        let _writes = self.writes.lock().await;
        self.store.payment_failed(&purchase, now_ms()).await
    }

    /// Applies a refund or a dispute (taking the purchase back) or a won dispute (granting it
    /// again), once per refund or dispute.
    pub(crate) async fn reverse(&self, reversal: &Reversal) -> Result<(), StoreError> {
        let _writes = self.writes.lock().await;
        if let Some(user) = self.store.reverse(reversal, now_ms()).await? {
            self.load_user(&user, None).await?;
        }
        Ok(())
    }

    /// Applies a subscription's new state.
    pub(crate) async fn apply_subscription(
        &self,
        subscription: &SubscriptionInfo,
        change: SubscriptionChange,
    ) -> Result<(), StoreError> {
        let _writes = self.writes.lock().await;
        if let Some(user) = self
            .store
            .apply_subscription(subscription, change, now_ms())
            .await?
        {
            self.load_user(&user, None).await?;
        }
        Ok(())
    }

    /// Records what the provider listed of the user's subscriptions covering `key`'s prices.
    pub(crate) async fn synced_subscriptions(
        &self,
        user: &str,
        key: &EntitlementKey,
        listed: &[SubscriptionInfo],
    ) -> Result<(), StoreError> {
        let prices = PriceSet::decode(key.as_str());
        let _writes = self.writes.lock().await;
        self.store
            .sync_subscriptions(user, &prices, listed, now_ms())
            .await?;
        self.load_user(user, Some(key)).await
    }

    /// Notes that the provider was asked about the user's `key` (its completed checkouts
    /// were applied) and loads what they hold.
    pub(crate) async fn synced_purchases(
        &self,
        user: &str,
        key: &EntitlementKey,
    ) -> Result<(), StoreError> {
        let _writes = self.writes.lock().await;
        self.store.touch(user, key, now_ms()).await?;
        self.load(user, key).await
    }

    /// Loads one key (callers hold `writes`). What was read before holdings were forgotten
    /// (another replica's change announced meanwhile) is read again.
    async fn load(&self, user: &str, key: &EntitlementKey) -> Result<(), StoreError> {
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let generation = self.cache().generation();
            let holding = self.store.holding(user, key).await?;
            let mut cache = self.cache();
            if cache.generation() == generation || attempt == ATTEMPTS {
                cache.load(user, key, holding);
                break;
            }
        }
        Ok(())
    }

    /// Loads every key of the user held in memory, and `and` (callers hold `writes`).
    async fn load_user(&self, user: &str, and: Option<&EntitlementKey>) -> Result<(), StoreError> {
        let mut keys = self.cache().keys_of(user);
        if let Some(key) = and.filter(|key| !keys.contains(key)) {
            keys.push(key.clone());
        }
        for key in keys {
            if let Err(error) = self.load(user, &key).await {
                // The change is in the store; memory must not keep granting what it took.
                self.cache().invalidate_user(user);
                return Err(error);
            }
        }
        Ok(())
    }
}

/// A credit being reserved in a shared store: if the call is dropped before the store answered
/// (cancelled, timed out), the credit goes back.
struct Reserving<'a> {
    ledger: &'a Ledger,
    user: &'a str,
    key: &'a EntitlementKey,
    reservation: ReservationId,
}

impl Reserving<'_> {
    /// The store answered: the caller takes it from here.
    fn answered(self) {
        std::mem::forget(self);
    }
}

impl Drop for Reserving<'_> {
    fn drop(&mut self) {
        self.ledger
            .release_in_background(self.user, self.key, self.reservation);
    }
}

/// The purchase a checkout created by mcp-analytics describes (its metadata), or `None` for
/// another checkout of the account.
fn purchase(session: &CheckoutInfo) -> Option<Purchase<'_>> {
    let meta = |key: &str| session.metadata.get(key).map(String::as_str);
    let (Some(user), Some(key)) = (
        meta("mcp_user_id").or(session.client_reference_id.as_deref()),
        meta("mcp_price_key"),
    ) else {
        tracing::debug!(session = %session.id, "a checkout not created by mcp-analytics; ignored");
        return None;
    };
    let granted = match session.mode {
        super::pricing::CheckoutMode::Subscription => Granted::Subscription,
        super::pricing::CheckoutMode::Payment => meta("mcp_grant")
            .and_then(Granted::decode)
            .filter(|granted| *granted != Granted::Subscription)
            .unwrap_or(Granted::Credits(1)),
    };
    Some(Purchase {
        session,
        user,
        tool: meta("mcp_tool").unwrap_or_default(),
        key: EntitlementKey::from_stored(key),
        granted,
    })
}
