//! The queries of checkouts and webhooks, on either database: each one step (one transaction),
//! answered the same way by SQLite and PostgreSQL. (The ledger has its own storage trait; the
//! meter its own.)

use super::{CheckoutRow, EventRow, PaymentDb, PaymentEventKind, StoreError, WebhookClaim};
#[cfg(feature = "sqlite")]
use super::{PaymentStore, SharedStore};
use crate::payments::{
    domain::{CheckoutStatus, EntitlementKey},
    provider::CheckoutInfo,
};

impl PaymentDb {
    /// The user's provider customer.
    pub(crate) async fn customer_of(&self, user: &str) -> Result<Option<String>, StoreError> {
        match self {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => Ok(store.lock().customers().of_user(user)?),
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => {
                let mut client = pg.pool.get().await?;
                let tx = client.transaction().await?;
                let customer = super::pg::records::customer_of(&tx, user).await?;
                tx.commit().await?;
                Ok(customer)
            }
            #[cfg(feature = "workers")]
            PaymentDb::D1(d1) => d1.customer_of(user).await,
        }
    }

    /// Forgets `customer` as the user's customer (the provider no longer knows it).
    pub(crate) async fn forget_customer(
        &self,
        user: &str,
        customer: &str,
    ) -> Result<(), StoreError> {
        match self {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => Ok(store.lock().customers().forget(user, customer)?),
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => {
                let mut client = pg.pool.get().await?;
                let tx = client.transaction().await?;
                super::pg::records::forget_customer(&tx, user, customer).await?;
                tx.commit().await?;
                Ok(())
            }
            #[cfg(feature = "workers")]
            PaymentDb::D1(d1) => d1.forget_customer(user, customer).await,
        }
    }

    /// The user's newest checkout for the key that may still pay, once open ones past their
    /// expiry are marked expired (`expire`) — the provider expires them.
    pub(crate) async fn pending_checkout(
        &self,
        user: &str,
        key: &EntitlementKey,
        now_ms: i64,
    ) -> Result<Option<CheckoutRow>, StoreError> {
        match self {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => {
                let store = store.lock();
                store.checkouts().expire_overdue(user, key, now_ms)?;
                Ok(store.checkouts().pending(user, key, now_ms)?)
            }
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => {
                let mut client = pg.pool.get().await?;
                let tx = client.transaction().await?;
                let pending = super::pg::checkouts::pending(&tx, user, key, now_ms).await?;
                tx.commit().await?;
                Ok(pending)
            }
            #[cfg(feature = "workers")]
            PaymentDb::D1(d1) => d1.pending_checkout(user, key, now_ms).await,
        }
    }

    /// How many checkouts the user was offered for the key.
    pub(crate) async fn checkouts_offered(
        &self,
        user: &str,
        key: &EntitlementKey,
    ) -> Result<i64, StoreError> {
        match self {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => Ok(store.lock().checkouts().count(user, key)?),
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => {
                let mut client = pg.pool.get().await?;
                let tx = client.transaction().await?;
                let count = super::pg::checkouts::count(&tx, user, key).await?;
                tx.commit().await?;
                Ok(count)
            }
            #[cfg(feature = "workers")]
            PaymentDb::D1(d1) => d1.checkouts_offered(user, key).await,
        }
    }

    /// Records a checkout just created and its `checkout_created` event, together.
    pub(crate) async fn checkout_created(
        &self,
        session: &CheckoutInfo,
        user: &str,
        tool: &str,
        key: &EntitlementKey,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let event = EventRow {
            user_id: Some(user),
            tool: Some(tool),
            amount: session.amount_total,
            currency: session.currency.as_deref(),
            reference: Some(&session.id),
            ..EventRow::default()
        };
        match self {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => Ok(store.lock().transaction(|store| {
                store.checkouts().insert(session, user, tool, key, now_ms)?;
                store
                    .events()
                    .record(now_ms, PaymentEventKind::CheckoutCreated, &event)
            })?),
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => {
                let mut client = pg.pool.get().await?;
                let tx = client.transaction().await?;
                super::pg::checkouts::insert(&tx, session, user, tool, key, now_ms).await?;
                super::pg::records::record(&tx, now_ms, PaymentEventKind::CheckoutCreated, &event)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
            #[cfg(feature = "workers")]
            PaymentDb::D1(d1) => {
                d1.checkout_created(session, user, tool, key, &event, now_ms)
                    .await
            }
        }
    }

    /// Sets a stored checkout's status (unless it was fulfilled).
    pub(crate) async fn set_checkout_status(
        &self,
        session_id: &str,
        status: &CheckoutStatus,
    ) -> Result<(), StoreError> {
        match self {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => Ok(store
                .lock()
                .checkouts()
                .set_status(session_id, status, None)?),
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => {
                let mut client = pg.pool.get().await?;
                let tx = client.transaction().await?;
                super::pg::checkouts::set_status(&tx, session_id, status, None).await?;
                tx.commit().await?;
                Ok(())
            }
            #[cfg(feature = "workers")]
            PaymentDb::D1(d1) => d1.set_checkout_status(session_id, status).await,
        }
    }

    /// Marks a checkout expired unpaid and records `checkout_expired`, in the transaction
    /// that marks the webhook event applied; `false` (nothing written) when it was applied
    /// before.
    pub(crate) async fn checkout_expired(
        &self,
        claim: WebhookClaim<'_>,
        session_id: &str,
        event: &EventRow<'_>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let expired = CheckoutStatus::Expired;
        match self {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => Ok(once(store, claim, now_ms, |store| {
                store.checkouts().set_status(session_id, &expired, None)?;
                store
                    .events()
                    .record(now_ms, PaymentEventKind::CheckoutExpired, event)
            })?),
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => {
                use super::pg::{checkouts, records};
                let mut client = pg.pool.get().await?;
                let tx = client.transaction().await?;
                if !records::claim_webhook_event(&tx, claim.event_id, claim.kind, now_ms).await? {
                    return Ok(false);
                }
                checkouts::set_status(&tx, session_id, &expired, None).await?;
                records::record(&tx, now_ms, PaymentEventKind::CheckoutExpired, event).await?;
                tx.commit().await?;
                Ok(true)
            }
            #[cfg(feature = "workers")]
            PaymentDb::D1(_) => Err(StoreError::NotOnD1("a checkout expired by Stripe")),
        }
    }

    /// Records a paid or failed invoice, against the user and tool of its subscription (else
    /// of its customer), in the transaction that marks the webhook event applied; `false`
    /// (nothing written) when it was applied before.
    pub(crate) async fn invoice_event(
        &self,
        claim: WebhookClaim<'_>,
        kind: PaymentEventKind,
        subscription: Option<&str>,
        customer: Option<&str>,
        event: EventRow<'_>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        match self {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => Ok(once(store, claim, now_ms, |store| {
                let (mut user, mut tool) = (None, None);
                if let Some(sub) = subscription
                    .map(|id| store.subscriptions().get(id))
                    .transpose()?
                    .flatten()
                {
                    user = sub.user_id;
                    tool = sub.tool;
                }
                if user.is_none()
                    && let Some(customer) = customer
                {
                    user = store.customers().user_of(customer)?;
                }
                let event = EventRow {
                    user_id: user.as_deref(),
                    tool: tool.as_deref(),
                    ..event
                };
                store.events().record(now_ms, kind, &event)
            })?),
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => {
                use super::pg::{holdings, records};
                let mut client = pg.pool.get().await?;
                let tx = client.transaction().await?;
                if !records::claim_webhook_event(&tx, claim.event_id, claim.kind, now_ms).await? {
                    return Ok(false);
                }
                let (mut user, mut tool) = (None, None);
                if let Some(id) = subscription
                    && let Some(sub) = holdings::subscription_get(&tx, id).await?
                {
                    user = sub.user_id;
                    tool = sub.tool;
                }
                if user.is_none()
                    && let Some(customer) = customer
                {
                    user = records::user_of(&tx, customer).await?;
                }
                let event = EventRow {
                    user_id: user.as_deref(),
                    tool: tool.as_deref(),
                    ..event
                };
                records::record(&tx, now_ms, kind, &event).await?;
                tx.commit().await?;
                Ok(true)
            }
            #[cfg(feature = "workers")]
            PaymentDb::D1(_) => Err(StoreError::NotOnD1("an invoice from Stripe")),
        }
    }
}

/// Runs `work` and marks the webhook event applied in one SQLite transaction, unless it was
/// applied before (`false`, nothing written).
#[cfg(feature = "sqlite")]
fn once(
    store: &SharedStore,
    claim: WebhookClaim<'_>,
    now_ms: i64,
    work: impl FnOnce(&PaymentStore) -> rusqlite::Result<()>,
) -> rusqlite::Result<bool> {
    store.lock().transaction(|store| {
        if store.webhook_events().applied(claim.event_id)? {
            return Ok(false);
        }
        work(store)?;
        store
            .webhook_events()
            .mark_applied(claim.event_id, claim.kind, now_ms)?;
        Ok(true)
    })
}
