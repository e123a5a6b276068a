//! Checkouts: selling access through the provider. Each user's provider customer, asking the
//! provider what a user bought (applied through the ledger), and reusing, expiring or creating
//! the checkout a refused call links to — one user at a time (per-user locks), healing what
//! the provider no longer knows (a deleted customer, another account or mode, a restarted
//! local provider, a checkout past its expiry).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::{
    domain::{CheckoutStatus, EntitlementKey, PaymentStatus},
    ledger::{Fulfilment, Ledger},
    now_ms,
    pricing::{CheckoutMode, ResolvedPricing},
    provider::{CheckoutInfo, CheckoutRequest, Provider, ProviderError},
    store::{EventRow, PaymentDb, StoreError, WebhookClaim},
};

/// Checkout sessions live at least this long (Stripe accepts 30 min to 24 h).
const CHECKOUT_LIFETIME_S: i64 = 3600;
/// Checkouts created within one window of this many seconds share their parameters (and so
/// their idempotency key): a retry after a timeout gets the same session.
const WINDOW_S: i64 = 600;
/// An open checkout is reused while it has at least this long left.
const REUSE_MARGIN_S: i64 = 300;
/// The class of the database locks held while creating a user's customer (PostgreSQL).
#[cfg(feature = "postgres")]
const CUSTOMER_LOCK: i32 = 0x6d63_7063; // "mcpc"

/// Where the user's checkout for a tool stands.
pub(crate) enum CheckoutState {
    /// Paid (and granted through the ledger).
    Paid,
    /// Open: the link to offer.
    Open(Box<CheckoutInfo>),
    /// Complete, with a delayed payment still clearing: no new link.
    Processing(Box<CheckoutInfo>),
}

/// Customers and checkouts at the provider.
pub(crate) struct Checkouts {
    provider: Arc<Provider>,
    db: PaymentDb,
    ledger: Arc<Ledger>,
    /// One async lock per user (no duplicate customers or checkouts).
    user_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Checkouts {
    pub(crate) fn new(provider: Arc<Provider>, db: PaymentDb, ledger: Arc<Ledger>) -> Self {
        Self {
            provider,
            db,
            ledger,
            user_locks: Mutex::default(),
        }
    }

    /// The user's lock, held by the gate's slow path.
    pub(crate) fn user_lock(&self, user: &str) -> Arc<tokio::sync::Mutex<()>> {
        /// Past this many users, the locks nobody holds or waits for are forgotten (every
        /// anonymous development session is a user).
        const KEPT: usize = 1024;
        let mut locks = self.user_locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.len() >= KEPT && !locks.contains_key(user) {
            // Only the map has a lock nobody holds (clones are made under this mutex), so a
            // user in the middle of a call keeps theirs.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(user.to_owned()).or_default().clone()
    }

    /// The user's customer id: from the store, else created (idempotently) at the provider.
    pub(crate) async fn customer(
        &self,
        user: &str,
        email: Option<&str>,
    ) -> Result<String, ProviderError> {
        let stored = self.db.customer_of(user).await.map_err(store_unavailable)?;
        match stored {
            Some(customer) => Ok(customer),
            None => self.create_customer(user, email, None).await,
        }
    }

    /// Replaces a customer the provider no longer knows (deleted, or of another account or
    /// mode) with a new one.
    async fn replace_customer(
        &self,
        user: &str,
        email: Option<&str>,
        stale: &str,
    ) -> Result<String, ProviderError> {
        tracing::warn!(
            user,
            customer = stale,
            "the payment provider no longer knows this customer; creating a new one"
        );
        self.db
            .forget_customer(user, stale)
            .await
            .map_err(store_unavailable)?;
        self.create_customer(user, email, Some(stale)).await
    }

    async fn create_customer(
        &self,
        user: &str,
        email: Option<&str>,
        replacing: Option<&str>,
    ) -> Result<String, ProviderError> {
        match &self.db {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => {
                self.create_customer_in(store, user, email, replacing).await
            }
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => self.create_customer_once(pg, user, email, replacing).await,
            #[cfg(feature = "workers")]
            PaymentDb::D1(d1) => {
                // Another isolate may have stored one first: that one stays.
                let customer = self
                    .provider
                    .create_customer(user, email, replacing)
                    .await?;
                d1.keep_customer(user, &customer, now_ms())
                    .await
                    .map_err(store_unavailable)
            }
        }
    }

    /// Creates the user's customer and records it in SQLite (the one process's user locks keep
    /// first calls from creating two).
    #[cfg(feature = "sqlite")]
    async fn create_customer_in(
        &self,
        store: &super::store::SharedStore,
        user: &str,
        email: Option<&str>,
        replacing: Option<&str>,
    ) -> Result<String, ProviderError> {
        let customer = self
            .provider
            .create_customer(user, email, replacing)
            .await?;
        let store = store.lock();
        store
            .customers()
            .insert(user, &customer, now_ms())
            .map_err(store_unavailable)?;
        // Another path may have stored one first: that one stays.
        Ok(store
            .customers()
            .of_user(user)
            .map_err(store_unavailable)?
            .unwrap_or(customer))
    }

    /// Creates the user's customer on PostgreSQL, where replicas share the customers: under a
    /// lock on the user held by the database, so that concurrent first calls on several
    /// replicas create one (the others find it stored once the lock is theirs).
    #[cfg(feature = "postgres")]
    async fn create_customer_once(
        &self,
        pg: &super::store::pg::PgPayments,
        user: &str,
        email: Option<&str>,
        replacing: Option<&str>,
    ) -> Result<String, ProviderError> {
        use super::store::pg::records;
        let mut client = pg.pool.get().await.map_err(store_unavailable)?;
        let tx = client.transaction().await.map_err(store_unavailable)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&CUSTOMER_LOCK, &user],
        )
        .await
        .map_err(store_unavailable)?;
        if let Some(stored) = records::customer_of(&tx, user)
            .await
            .map_err(store_unavailable)?
            .filter(|stored| Some(stored.as_str()) != replacing)
        {
            return Ok(stored);
        }
        let customer = self
            .provider
            .create_customer(user, email, replacing)
            .await?;
        records::insert_customer(&tx, user, &customer, now_ms())
            .await
            .map_err(store_unavailable)?;
        tx.commit().await.map_err(store_unavailable)?;
        Ok(customer)
    }

    /// Asks the provider what the user holds for the tool's prices and records it through the
    /// ledger.
    pub(crate) async fn sync(
        &self,
        user: &str,
        email: Option<&str>,
        pricing: &ResolvedPricing,
    ) -> Result<(), ProviderError> {
        let key = pricing.key();
        let customer = self.customer(user, email).await?;
        match pricing.mode {
            CheckoutMode::Subscription => {
                let first = &pricing.line_items[0].0;
                let listed = match self.provider.subscriptions(&customer, first).await {
                    Ok(listed) => listed,
                    Err(ProviderError::Missing(_)) => {
                        self.replace_customer(user, email, &customer).await?;
                        Vec::new()
                    }
                    Err(error) => return Err(error),
                };
                self.ledger
                    .synced_subscriptions(user, key, &listed)
                    .await
                    .map_err(store_unavailable)?;
            }
            CheckoutMode::Payment => {
                let completed = match self.provider.completed_checkouts(&customer).await {
                    Ok(completed) => completed,
                    Err(ProviderError::Missing(_)) => {
                        self.replace_customer(user, email, &customer).await?;
                        Vec::new()
                    }
                    Err(error) => return Err(error),
                };
                for session in completed.iter().filter(|session| {
                    session.metadata.get("mcp_price_key").map(String::as_str) == Some(key.as_str())
                }) {
                    self.ledger
                        .fulfil(session)
                        .await
                        .map_err(store_unavailable)?;
                }
                self.ledger
                    .synced_purchases(user, key)
                    .await
                    .map_err(store_unavailable)?;
            }
        }
        Ok(())
    }

    /// Reuses the user's pending checkout for the tool (noticing when it was paid meanwhile)
    /// or creates one.
    pub(crate) async fn checkout(
        &self,
        user: &str,
        email: Option<&str>,
        pricing: &ResolvedPricing,
    ) -> Result<CheckoutState, ProviderError> {
        let key = pricing.key();
        let now = now_ms();
        // Rows past their expiry are the provider's expired sessions: not reused.
        let pending = self
            .db
            .pending_checkout(user, key, now)
            .await
            .map_err(store_unavailable)?;
        if let Some(pending) = pending
            && let Some(state) = self.reuse(&pending.session_id).await?
        {
            return Ok(state);
        }
        let customer = self.customer(user, email).await?;
        match self.create(user, &customer, pricing).await {
            Err(ProviderError::Missing(error)) => {
                tracing::debug!("cannot create a checkout: {error}");
                let customer = self.replace_customer(user, email, &customer).await?;
                self.create(user, &customer, pricing).await
            }
            other => other,
        }
    }

    /// The user's checkout for the key whose delayed payment is still clearing, as the
    /// provider sees it now (it may have cleared or failed meanwhile).
    pub(crate) async fn clearing(
        &self,
        user: &str,
        key: &EntitlementKey,
    ) -> Result<Option<CheckoutState>, ProviderError> {
        let pending = self
            .db
            .pending_checkout(user, key, now_ms())
            .await
            .map_err(store_unavailable)?;
        match pending {
            Some(row)
                if row.status == CheckoutStatus::Complete
                    && row.payment_status == Some(PaymentStatus::Unpaid) =>
            {
                self.reuse(&row.session_id).await
            }
            _ => Ok(None),
        }
    }

    /// What a stored pending checkout is now at the provider; `None` when it can no longer be
    /// used (expired, failed, or unknown to the provider) and a new one is needed.
    async fn reuse(&self, session_id: &str) -> Result<Option<CheckoutState>, ProviderError> {
        let mut session = match self.provider.retrieve_checkout(session_id).await {
            Ok(session) => session,
            Err(ProviderError::Missing(error)) => {
                tracing::warn!(
                    session = session_id,
                    "a stored checkout the provider does not know ({error}); offering a new one"
                );
                self.set_status(session_id, &CheckoutStatus::Expired)
                    .await?;
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let now_s = now_ms() / 1000;
        if session.status == CheckoutStatus::Open && session.expires_at - now_s <= REUSE_MARGIN_S {
            // Too close to its end to hand out: expire it before offering a new one, so a tab
            // still showing it cannot buy the same thing a second time.
            session = match self.provider.expire_checkout(&session.id).await {
                Ok(expired) => expired,
                // Completed meanwhile (it can no longer be expired): see what it is now.
                Err(ProviderError::Rejected(_)) => {
                    self.provider.retrieve_checkout(&session.id).await?
                }
                Err(error) => return Err(error),
            };
        }
        if session.is_paid() || session.is_pending() {
            let fulfilment = self
                .ledger
                .fulfil(&session)
                .await
                .map_err(store_unavailable)?;
            return Ok(match fulfilment {
                Fulfilment::Pending => Some(CheckoutState::Processing(Box::new(session))),
                Fulfilment::Granted | Fulfilment::AlreadyGranted => Some(CheckoutState::Paid),
                // Its delayed payment failed: a new checkout is needed.
                Fulfilment::NotPaid => None,
            });
        }
        if session.status == CheckoutStatus::Open {
            return Ok(Some(CheckoutState::Open(Box::new(session))));
        }
        self.set_status(&session.id, &session.status).await?;
        Ok(None)
    }

    /// Creates a checkout for the tool.
    async fn create(
        &self,
        user: &str,
        customer: &str,
        pricing: &ResolvedPricing,
    ) -> Result<CheckoutState, ProviderError> {
        let key = pricing.key();
        let offered = self
            .db
            .checkouts_offered(user, key)
            .await
            .map_err(store_unavailable)?;
        let metadata = HashMap::from([
            ("mcp_user_id".to_owned(), user.to_owned()),
            ("mcp_tool".to_owned(), pricing.tool.clone()),
            ("mcp_price_key".to_owned(), key.as_str().to_owned()),
            ("mcp_grant".to_owned(), pricing.granted().encode()),
        ]);
        let quantities = pricing.quantities();
        // Every parameter is fixed within a window, so a retried request (after a timeout)
        // sends the same parameters under the same idempotency key and gets the one session.
        let window = now_ms() / 1000 / WINDOW_S;
        let session = self
            .provider
            .create_checkout(CheckoutRequest {
                pricing,
                quantities: &quantities,
                customer,
                user_id: user,
                metadata,
                expires_at: (window + 1) * WINDOW_S + CHECKOUT_LIFETIME_S,
                offered,
            })
            .await?;
        self.db
            .checkout_created(&session, user, &pricing.tool, key, now_ms())
            .await
            .map_err(store_unavailable)?;
        Ok(CheckoutState::Open(Box::new(session)))
    }

    /// The page where a subscriber fixes their payment method (see
    /// [`Provider::payment_fix_url`]).
    pub(crate) async fn payment_fix_url(
        &self,
        user: &str,
        email: Option<&str>,
        subscription: &str,
        pricing: &ResolvedPricing,
    ) -> Result<Option<String>, ProviderError> {
        let customer = self.customer(user, email).await?;
        self.provider
            .payment_fix_url(&customer, subscription, &pricing.success_url)
            .await
    }

    /// Asks the provider whether a checkout was paid, applying it if so.
    pub(crate) async fn confirm(&self, session_id: &str) -> Result<Fulfilment, ProviderError> {
        let session = self.provider.retrieve_checkout(session_id).await?;
        self.ledger
            .fulfil(&session)
            .await
            .map_err(store_unavailable)
    }

    /// Marks an unpaid checkout expired (Stripe's `checkout.session.expired`), with the
    /// webhook event that says so; `false` when that event was applied before.
    pub(crate) async fn expired(
        &self,
        claim: WebhookClaim<'_>,
        session: &CheckoutInfo,
    ) -> Result<bool, StoreError> {
        let meta = |key: &str| session.metadata.get(key).map(String::as_str);
        let event = EventRow {
            user_id: meta("mcp_user_id"),
            tool: meta("mcp_tool"),
            reference: Some(&session.id),
            ..EventRow::default()
        };
        self.db
            .checkout_expired(claim, &session.id, &event, now_ms())
            .await
    }

    async fn set_status(
        &self,
        session_id: &str,
        status: &CheckoutStatus,
    ) -> Result<(), ProviderError> {
        self.db
            .set_checkout_status(session_id, status)
            .await
            .map_err(store_unavailable)
    }
}

/// A store failure, as the gate sees it: payments are unavailable.
pub(crate) fn store_unavailable(error: impl Into<StoreError>) -> ProviderError {
    ProviderError::Unavailable(error.into().to_string())
}

#[cfg(all(test, feature = "sqlite"))]
mod user_lock_tests {
    use super::*;
    use crate::payments::{
        ledger::sqlite::SqliteLedger,
        provider::local::LocalProvider,
        store::{PaymentStore, SharedStore},
    };

    #[tokio::test]
    async fn the_per_user_locks_forget_users_nobody_is_waiting_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(PaymentStore::open(&dir.path().join("paid.db")).unwrap());
        let ledger = Arc::new(Ledger::new(
            Arc::new(SqliteLedger::new(store.clone())),
            std::time::Duration::from_secs(60),
        ));
        let provider = Arc::new(Provider::Local(LocalProvider::new(HashMap::new())));
        let checkouts = Checkouts::new(provider, PaymentDb::Sqlite(store), ledger);
        let held = checkouts.user_lock("alice");
        let _guard = held.lock().await;
        for session in 0..5000 {
            drop(checkouts.user_lock(&format!("anon-{session}")));
        }
        let locks = checkouts.user_locks.lock().unwrap().len();
        assert!(locks <= 1025, "{locks} locks kept");
        // A lock in use is never replaced: the same user still gets the same lock.
        assert!(Arc::ptr_eq(&held, &checkouts.user_lock("alice")));
    }
}
