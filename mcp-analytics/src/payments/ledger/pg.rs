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

use deadpool_postgres::Transaction;

use super::store::{
    Fulfilment, Holding, LedgerStore, Purchase, Reversal, ReversalKind, StoreFuture,
    SubscriptionChange,
};
use crate::payments::{
    domain::{
        CheckoutStatus, EntitlementKey, Granted, PaymentStatus, PriceSet, SubscriptionStatus,
    },
    provider::SubscriptionInfo,
    store::{
        EventRow, HeldReversal, PaymentEventKind, StoreError, SubscriptionRow, TakenBack,
        pg::{PgPayments, checkouts, holdings, records},
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
            client
                .execute(
                    "DELETE FROM payment_reservations WHERE reservation_id = (
                         SELECT reservation_id FROM payment_reservations WHERE user_id = $1 AND price_key = $2 AND replica = $3
                         ORDER BY lease_until_ms LIMIT 1 FOR UPDATE SKIP LOCKED)",
                    &[&user, &key.as_str(), &self.replica],
                )
                .await?;
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

/// Stores the checkout (when first seen by this path) and the user's customer.
async fn record_checkout(
    tx: &Transaction<'_>,
    purchase: &Purchase<'_>,
    now_ms: i64,
) -> PgResult<()> {
    let session = purchase.session;
    if checkouts::get(tx, &session.id).await?.is_none() {
        checkouts::insert(
            tx,
            session,
            purchase.user,
            purchase.tool,
            &purchase.key,
            now_ms,
        )
        .await?;
    }
    if let Some(customer) = &session.customer {
        records::insert_customer(tx, purchase.user, customer, now_ms).await?;
    }
    Ok(())
}

async fn payment_failed(
    tx: &Transaction<'_>,
    purchase: &Purchase<'_>,
    now_ms: i64,
) -> PgResult<()> {
    let session = purchase.session;
    record_checkout(tx, purchase, now_ms).await?;
    if checkouts::get(tx, &session.id)
        .await?
        .is_some_and(|row| row.fulfilled)
    {
        return Ok(());
    }
    checkouts::set_status(
        tx,
        &session.id,
        &CheckoutStatus::Complete,
        Some(&PaymentStatus::Failed),
    )
    .await?;
    records::record(
        tx,
        now_ms,
        PaymentEventKind::CheckoutPaymentFailed,
        &EventRow {
            user_id: Some(purchase.user),
            tool: Some(purchase.tool),
            reference: Some(&session.id),
            ..EventRow::default()
        },
    )
    .await
}

async fn fulfil(
    tx: &Transaction<'_>,
    purchase: &Purchase<'_>,
    now_ms: i64,
) -> PgResult<Fulfilment> {
    let session = purchase.session;
    record_checkout(tx, purchase, now_ms).await?;
    let stored = checkouts::get(tx, &session.id).await?;
    if stored.as_ref().is_some_and(|row| row.fulfilled) {
        return Ok(Fulfilment::AlreadyGranted);
    }
    if session.is_pending() {
        if stored
            .as_ref()
            .is_some_and(|row| row.payment_status == Some(PaymentStatus::Failed))
        {
            return Ok(Fulfilment::NotPaid);
        }
        let first = stored.as_ref().is_none_or(|row| {
            row.payment_status != Some(PaymentStatus::Unpaid)
                || row.status != CheckoutStatus::Complete
        });
        checkouts::set_status(
            tx,
            &session.id,
            &CheckoutStatus::Complete,
            Some(&PaymentStatus::Unpaid),
        )
        .await?;
        if first {
            records::record(
                tx,
                now_ms,
                PaymentEventKind::CheckoutPending,
                &EventRow {
                    user_id: Some(purchase.user),
                    tool: Some(purchase.tool),
                    amount: session.amount_total,
                    currency: session.currency.as_deref(),
                    reference: Some(&session.id),
                    ..EventRow::default()
                },
            )
            .await?;
        }
        return Ok(Fulfilment::Pending);
    }
    if !session.is_paid() {
        return Ok(Fulfilment::NotPaid);
    }
    if !checkouts::fulfil(
        tx,
        &session.id,
        session.payment_intent.as_deref(),
        purchase.granted,
    )
    .await?
    {
        return Ok(Fulfilment::AlreadyGranted);
    }
    let (user, key) = (purchase.user, purchase.key.as_str());
    match purchase.granted {
        Granted::Subscription => {
            let id = session.subscription.as_deref().unwrap_or_default();
            let stored = holdings::subscription_get(tx, id).await?;
            if stored
                .as_ref()
                .is_some_and(|row| row.status.is_stale_move_to(&SubscriptionStatus::Active))
            {
                tracing::info!(subscription = %id, "checkout completed for a subscription already ended; no access");
            } else if !id.is_empty() {
                holdings::subscription_upsert(
                    tx,
                    &SubscriptionRow {
                        id: id.to_owned(),
                        user_id: Some(user.to_owned()),
                        tool: Some(purchase.tool.to_owned()),
                        status: match stored.map(|row| row.status) {
                            None | Some(SubscriptionStatus::Incomplete) => {
                                SubscriptionStatus::Active
                            }
                            Some(status) => status,
                        },
                        prices: PriceSet::decode(key),
                        updated_ms: now_ms,
                    },
                    now_ms,
                )
                .await?;
            }
        }
        Granted::Unlimited => holdings::add(tx, user, key, 0, true, now_ms).await?,
        Granted::Credits(credits) => holdings::add(tx, user, key, credits, false, now_ms).await?,
    }
    let one_time = purchase.granted != Granted::Subscription;
    records::record(
        tx,
        now_ms,
        PaymentEventKind::CheckoutCompleted,
        &EventRow {
            user_id: Some(user),
            tool: Some(purchase.tool),
            amount: session.amount_total.filter(|_| one_time),
            currency: session.currency.as_deref().filter(|_| one_time),
            reference: Some(&session.id),
            detail: Some(session.mode.as_str()),
        },
    )
    .await?;
    if let Some(intent) = &session.payment_intent {
        for held in records::take_reversals(tx, intent).await? {
            let Some(kind) = ReversalKind::parse(&held.kind) else {
                tracing::error!(reversal = %held.id, kind = %held.kind, "a held reversal of an unknown kind; ignored");
                continue;
            };
            let reversal = Reversal {
                kind,
                id: held.id,
                payment_intent: held.payment_intent,
                amount: held.amount,
                currency: held.currency,
            };
            reverse(tx, &reversal, now_ms).await?;
        }
    }
    Ok(Fulfilment::Granted)
}

async fn reverse(
    tx: &Transaction<'_>,
    reversal: &Reversal,
    now_ms: i64,
) -> PgResult<Option<String>> {
    let Some(checkout) = checkouts::paid_by(tx, &reversal.payment_intent).await? else {
        records::hold_reversal(
            tx,
            &HeldReversal {
                id: reversal.id.clone(),
                kind: reversal.kind.as_str().to_owned(),
                payment_intent: reversal.payment_intent.clone(),
                amount: reversal.amount,
                currency: reversal.currency.clone(),
            },
            now_ms,
        )
        .await?;
        return Ok(None);
    };
    let kind = match reversal.kind {
        ReversalKind::Refund => PaymentEventKind::Refunded,
        ReversalKind::Dispute => PaymentEventKind::Disputed,
        ReversalKind::DisputeWon => PaymentEventKind::DisputeWon,
    };
    if records::recorded(tx, kind, &reversal.id).await? {
        return Ok(None);
    }
    records::record(
        tx,
        now_ms,
        kind,
        &EventRow {
            user_id: Some(&checkout.user_id),
            tool: Some(&checkout.tool),
            amount: Some(reversal.amount),
            currency: Some(&reversal.currency),
            reference: Some(&reversal.id),
            detail: Some(&checkout.session_id),
        },
    )
    .await?;
    let (user, key) = (checkout.user_id.as_str(), checkout.key.as_str());
    let changed = match reversal.kind {
        ReversalKind::Refund | ReversalKind::Dispute => {
            let take = match reversal.kind {
                ReversalKind::Refund => {
                    let refunded = records::refunded_total(tx, &checkout.session_id).await?;
                    checkout.amount.is_none_or(|paid| refunded >= paid)
                }
                _ => !records::recorded(tx, PaymentEventKind::DisputeWon, &reversal.id).await?,
            };
            if !take || checkout.taken_back.is_some() {
                return Ok(None);
            }
            let how = match reversal.kind {
                ReversalKind::Refund => TakenBack::Refunded,
                _ => TakenBack::Disputed,
            };
            let taken = match checkout.granted {
                Some(Granted::Credits(credits)) => {
                    Some(holdings::take_credits(tx, user, key, credits).await?)
                }
                Some(Granted::Unlimited) => {
                    if !checkouts::unlimited_held_by_other(
                        tx,
                        user,
                        &checkout.key,
                        &checkout.session_id,
                    )
                    .await?
                    {
                        holdings::set_unlimited(tx, user, key, false).await?;
                    }
                    None
                }
                Some(Granted::Subscription) | None => None,
            };
            checkouts::set_taken_back(tx, &checkout.session_id, Some(how), taken).await?
        }
        ReversalKind::DisputeWon => {
            if checkout.taken_back != Some(TakenBack::Disputed) {
                return Ok(None);
            }
            let refunded = records::refunded_total(tx, &checkout.session_id).await?;
            if refunded > 0 && checkout.amount.is_none_or(|paid| refunded >= paid) {
                checkouts::set_taken_back(
                    tx,
                    &checkout.session_id,
                    Some(TakenBack::Refunded),
                    checkout.taken_credits,
                )
                .await?;
                return Ok(None);
            }
            match checkout.granted {
                Some(Granted::Credits(credits)) => {
                    let credits = checkout.taken_credits.unwrap_or(credits);
                    holdings::add(tx, user, key, credits, false, now_ms).await?;
                }
                Some(Granted::Unlimited) => holdings::add(tx, user, key, 0, true, now_ms).await?,
                Some(Granted::Subscription) | None => {}
            }
            checkouts::set_taken_back(tx, &checkout.session_id, None, None).await?
        }
    };
    if changed {
        tracing::info!(user = %user, tool = %checkout.tool, kind = kind.as_str(), "a purchase was taken back or granted again");
    }
    Ok(changed.then(|| user.to_owned()))
}

async fn apply_subscription(
    tx: &Transaction<'_>,
    sub: &SubscriptionInfo,
    change: SubscriptionChange,
    now_ms: i64,
) -> PgResult<Option<String>> {
    let user = match sub.metadata.get("mcp_user_id") {
        Some(user) => Some(user.clone()),
        None => records::user_of(tx, &sub.customer).await?,
    };
    let Some(user) = user else {
        tracing::debug!(subscription = %sub.id, "a subscription of a customer mcp-analytics does not know; ignored");
        return Ok(None);
    };
    let tool = sub.metadata.get("mcp_tool").map(String::as_str);
    let status = match change {
        SubscriptionChange::Deleted => SubscriptionStatus::Canceled,
        _ => sub.status.clone(),
    };
    let stored = holdings::subscription_get(tx, &sub.id).await?;
    if stored
        .as_ref()
        .is_some_and(|row| row.status.is_stale_move_to(&status))
    {
        tracing::info!(subscription = %sub.id, %status, "a late subscription event; ignored");
        return Ok(None);
    }
    holdings::subscription_upsert(
        tx,
        &SubscriptionRow {
            id: sub.id.clone(),
            user_id: Some(user.clone()),
            tool: tool.map(str::to_owned),
            status: status.clone(),
            prices: sub.price_ids.clone(),
            updated_ms: now_ms,
        },
        now_ms,
    )
    .await?;
    let kind = match change {
        SubscriptionChange::Created => PaymentEventKind::SubscriptionStarted,
        SubscriptionChange::Deleted => PaymentEventKind::SubscriptionCancelled,
        SubscriptionChange::Updated if status == SubscriptionStatus::Canceled => {
            PaymentEventKind::SubscriptionCancelled
        }
        SubscriptionChange::Updated => PaymentEventKind::SubscriptionUpdated,
    };
    records::record(
        tx,
        now_ms,
        kind,
        &EventRow {
            user_id: Some(&user),
            tool,
            reference: Some(&sub.id),
            detail: Some(status.as_str()),
            ..EventRow::default()
        },
    )
    .await?;
    Ok(Some(user))
}

async fn sync_subscriptions(
    tx: &Transaction<'_>,
    user: &str,
    prices: &PriceSet,
    listed: &[SubscriptionInfo],
    now_ms: i64,
) -> PgResult<()> {
    for sub in listed {
        let stored = holdings::subscription_get(tx, &sub.id).await?;
        if stored
            .as_ref()
            .is_some_and(|row| row.status.is_stale_move_to(&sub.status))
        {
            continue;
        }
        holdings::subscription_upsert(
            tx,
            &SubscriptionRow {
                id: sub.id.clone(),
                user_id: Some(user.to_owned()),
                tool: sub.metadata.get("mcp_tool").cloned(),
                status: sub.status.clone(),
                prices: sub.price_ids.clone(),
                updated_ms: now_ms,
            },
            now_ms,
        )
        .await?;
    }
    for stored in holdings::subscriptions_of(tx, user).await? {
        let listed = listed.iter().any(|sub| sub.id == stored.id);
        if !listed
            && stored.prices.covers(prices)
            && !stored
                .status
                .is_stale_move_to(&SubscriptionStatus::Canceled)
        {
            holdings::subscription_upsert(
                tx,
                &SubscriptionRow {
                    status: SubscriptionStatus::Canceled,
                    ..stored
                },
                now_ms,
            )
            .await?;
        }
    }
    holdings::touch(tx, user, EntitlementKey::of(prices).as_str(), now_ms).await
}
