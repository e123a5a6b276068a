//! [`SqliteLedger`]: the ledger's storage in the SQLite database's payment tables, each
//! operation one `BEGIN IMMEDIATE` transaction.

use std::sync::MutexGuard;

use super::rules;
use super::store::{
    CreditUse, Fulfilment, Holding, LedgerStore, Purchase, ReservationId, Reversal, ReversalKind,
    StoreFuture, SubscriptionChange,
};
use crate::payments::{
    domain::{
        CheckoutStatus, EntitlementKey, Granted, PaymentStatus, PriceSet, SubscriptionStatus,
    },
    provider::SubscriptionInfo,
    store::{EventRow, PaymentEventKind, PaymentStore, SharedStore, SubscriptionRow, TakenBack},
};

/// The ledger's tables in SQLite.
pub(crate) struct SqliteLedger {
    store: SharedStore,
}

impl SqliteLedger {
    pub(crate) fn new(store: SharedStore) -> Self {
        Self { store }
    }

    fn store(&self) -> MutexGuard<'_, PaymentStore> {
        self.store.lock()
    }

    /// Runs `work` in one transaction as a ready future.
    fn run<'a, T: Send + 'a>(
        &'a self,
        work: impl FnOnce(&PaymentStore) -> rusqlite::Result<T> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        Box::pin(async move { Ok(self.store().transaction(work)?) })
    }
}

impl LedgerStore for SqliteLedger {
    fn holding<'a>(&'a self, user: &'a str, key: &'a EntitlementKey) -> StoreFuture<'a, Holding> {
        Box::pin(async move {
            Ok(self.store().read(|store| {
                let row = store
                    .entitlements()
                    .get(user, key.as_str())?
                    .unwrap_or_default();
                Ok(rules::holding(
                    row,
                    store.subscriptions().of_user(user)?,
                    key,
                ))
            })?)
        })
    }

    /// One process: its reservations live in memory only, and a failed transaction rolled
    /// back (so running it again uses one credit).
    fn consume_credit<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        _reservation: ReservationId,
    ) -> StoreFuture<'a, CreditUse> {
        self.run(move |store| use_credit(store, user, key))
    }

    fn fulfil<'a>(
        &'a self,
        purchase: &'a Purchase<'a>,
        now_ms: i64,
    ) -> StoreFuture<'a, Fulfilment> {
        self.run(move |store| fulfil(store, purchase, now_ms))
    }

    fn payment_failed<'a>(
        &'a self,
        purchase: &'a Purchase<'a>,
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        self.run(move |store| {
            let session = purchase.session;
            record_checkout(store, purchase, now_ms)?;
            let checkouts = store.checkouts();
            if checkouts.get(&session.id)?.is_some_and(|row| row.fulfilled) {
                return Ok(());
            }
            checkouts.set_status(
                &session.id,
                &CheckoutStatus::Complete,
                Some(&PaymentStatus::Failed),
            )?;
            store.events().record(
                now_ms,
                PaymentEventKind::CheckoutPaymentFailed,
                &EventRow {
                    user_id: Some(purchase.user),
                    tool: Some(purchase.tool),
                    reference: Some(&session.id),
                    ..EventRow::default()
                },
            )
        })
    }

    fn reverse<'a>(
        &'a self,
        reversal: &'a Reversal,
        now_ms: i64,
    ) -> StoreFuture<'a, Option<String>> {
        self.run(move |store| reverse(store, reversal, now_ms))
    }

    fn apply_subscription<'a>(
        &'a self,
        subscription: &'a SubscriptionInfo,
        change: SubscriptionChange,
        now_ms: i64,
    ) -> StoreFuture<'a, Option<String>> {
        self.run(move |store| apply_subscription(store, subscription, change, now_ms))
    }

    fn sync_subscriptions<'a>(
        &'a self,
        user: &'a str,
        prices: &'a PriceSet,
        listed: &'a [SubscriptionInfo],
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        self.run(move |store| {
            let subscriptions = store.subscriptions();
            for sub in listed {
                let stored = subscriptions.get(&sub.id)?;
                if stored
                    .as_ref()
                    .is_some_and(|row| row.status.is_stale_move_to(&sub.status))
                {
                    continue;
                }
                subscriptions.upsert(
                    &rules::subscription_row(sub, user, sub.status.clone(), now_ms),
                    now_ms,
                )?;
            }
            for stored in subscriptions.of_user(user)? {
                if rules::ended_unlisted(&stored, listed, prices) {
                    subscriptions.upsert(
                        &SubscriptionRow {
                            status: SubscriptionStatus::Canceled,
                            ..stored
                        },
                        now_ms,
                    )?;
                }
            }
            store
                .entitlements()
                .touch(user, EntitlementKey::of(prices).as_str(), now_ms)
        })
    }

    fn touch<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        self.run(move |store| store.entitlements().touch(user, key.as_str(), now_ms))
    }
}

/// Stores the checkout (when first seen by this path) and the user's customer.
fn record_checkout(
    store: &PaymentStore,
    purchase: &Purchase<'_>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let session = purchase.session;
    if store.checkouts().get(&session.id)?.is_none() {
        store
            .checkouts()
            .insert(session, purchase.user, purchase.tool, &purchase.key, now_ms)?;
    }
    if let Some(customer) = &session.customer {
        store.customers().insert(purchase.user, customer, now_ms)?;
    }
    Ok(())
}

/// Uses one credit held, or — none left because a take-back removed the credit the call had
/// reserved — one of those taken back (see [`LedgerStore::consume_credit`]).
fn use_credit(
    store: &PaymentStore,
    user: &str,
    key: &EntitlementKey,
) -> rusqlite::Result<CreditUse> {
    if store.entitlements().consume(user, key.as_str())? {
        return Ok(CreditUse::Used);
    }
    if !store.checkouts().use_taken_back_credit(user, key)? {
        tracing::warn!(user, key = %key, "a call used a credit neither held nor taken back");
    }
    Ok(CreditUse::TakenBack)
}

fn fulfil(
    store: &PaymentStore,
    purchase: &Purchase<'_>,
    now_ms: i64,
) -> rusqlite::Result<Fulfilment> {
    let session = purchase.session;
    record_checkout(store, purchase, now_ms)?;
    let checkouts = store.checkouts();
    if checkouts.get(&session.id)?.is_some_and(|row| row.fulfilled) {
        return Ok(Fulfilment::AlreadyGranted);
    }
    if session.is_pending() {
        let stored = checkouts.get(&session.id)?;
        // Stripe keeps a session whose delayed payment failed `complete` and `unpaid`: the
        // failure recorded is final, whoever reports the session again.
        if stored
            .as_ref()
            .is_some_and(|row| row.payment_status == Some(PaymentStatus::Failed))
        {
            return Ok(Fulfilment::NotPaid);
        }
        let first = rules::first_pending(stored.as_ref());
        checkouts.set_status(
            &session.id,
            &CheckoutStatus::Complete,
            Some(&PaymentStatus::Unpaid),
        )?;
        if first {
            store.events().record(
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
            )?;
        }
        return Ok(Fulfilment::Pending);
    }
    if !session.is_paid() {
        return Ok(Fulfilment::NotPaid);
    }
    if !checkouts.fulfil(
        &session.id,
        session.payment_intent.as_deref(),
        purchase.granted,
    )? {
        return Ok(Fulfilment::AlreadyGranted);
    }
    let (user, key) = (purchase.user, purchase.key.as_str());
    match purchase.granted {
        Granted::Subscription => {
            let id = session.subscription.as_deref().unwrap_or_default();
            let subscriptions = store.subscriptions();
            let stored = subscriptions.get(id)?;
            if stored
                .as_ref()
                .is_some_and(|row| row.status.is_stale_move_to(&SubscriptionStatus::Active))
            {
                tracing::info!(subscription = %id, "checkout completed for a subscription already ended; no access");
            } else if !id.is_empty() {
                // The subscription's own events bring its exact status and prices.
                subscriptions.upsert(
                    &SubscriptionRow {
                        id: id.to_owned(),
                        user_id: Some(user.to_owned()),
                        tool: Some(purchase.tool.to_owned()),
                        status: rules::paid_subscription_status(stored.map(|row| row.status)),
                        prices: PriceSet::decode(key),
                        updated_ms: now_ms,
                    },
                    now_ms,
                )?;
            }
        }
        Granted::Unlimited => store.entitlements().add(user, key, 0, true, now_ms)?,
        Granted::Credits(credits) => store
            .entitlements()
            .add(user, key, credits, false, now_ms)?,
    }
    // Subscription revenue is counted from paid invoices; one-time revenue here.
    let one_time = purchase.granted != Granted::Subscription;
    store.events().record(
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
    )?;
    // Refunds and disputes that arrived before this purchase apply now.
    if let Some(intent) = &session.payment_intent {
        for reversal in store
            .held_reversals()
            .take(intent)?
            .into_iter()
            .filter_map(rules::unheld)
        {
            reverse(store, &reversal, now_ms)?;
        }
    }
    Ok(Fulfilment::Granted)
}

fn reverse(
    store: &PaymentStore,
    reversal: &Reversal,
    now_ms: i64,
) -> rusqlite::Result<Option<String>> {
    let Some(checkout) = store.checkouts().paid_by(&reversal.payment_intent)? else {
        // Its purchase has not arrived (yet): held, and applied when it does.
        store
            .held_reversals()
            .hold(&rules::held(reversal), now_ms)?;
        return Ok(None);
    };
    let kind = rules::reversal_event(reversal.kind);
    let events = store.events();
    if events.recorded(kind, &reversal.id)? {
        return Ok(None);
    }
    events.record(
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
    )?;
    let (user, key) = (checkout.user_id.as_str(), checkout.key.as_str());
    let entitlements = store.entitlements();
    let changed = match reversal.kind {
        ReversalKind::Refund | ReversalKind::Dispute => {
            let take = match reversal.kind {
                // Refunded in full, in one refund or several.
                ReversalKind::Refund => rules::refunded_in_full(
                    checkout.amount,
                    events.refunded_total(&checkout.session_id)?,
                ),
                // A dispute already won (its events arrived out of order) takes nothing.
                _ => !events.recorded(PaymentEventKind::DisputeWon, &reversal.id)?,
            };
            if !take || checkout.taken_back.is_some() {
                return Ok(None);
            }
            let how = rules::taken_back_by(reversal.kind);
            let taken = match checkout.granted {
                Some(Granted::Credits(credits)) => {
                    Some(entitlements.take_credits(user, key, credits)?)
                }
                Some(Granted::Unlimited) => {
                    // Another unlimited purchase (bought twice) still grants it.
                    if !store.checkouts().unlimited_held_by_other(
                        user,
                        &checkout.key,
                        &checkout.session_id,
                    )? {
                        entitlements.set_unlimited(user, key, false)?;
                    }
                    None
                }
                Some(Granted::Subscription) | None => None,
            };
            store
                .checkouts()
                .set_taken_back(&checkout.session_id, Some(how), taken)?
        }
        ReversalKind::DisputeWon => {
            if checkout.taken_back != Some(TakenBack::Disputed) {
                return Ok(None);
            }
            // Refunded in full too (its event arrived while the dispute held the purchase):
            // it stays taken back.
            let refunded = events.refunded_total(&checkout.session_id)?;
            if refunded > 0 && rules::refunded_in_full(checkout.amount, refunded) {
                store.checkouts().set_taken_back(
                    &checkout.session_id,
                    Some(TakenBack::Refunded),
                    checkout.taken_credits,
                )?;
                return Ok(None);
            }
            match checkout.granted {
                Some(Granted::Credits(credits)) => {
                    let credits = checkout.taken_credits.unwrap_or(credits);
                    entitlements.add(user, key, credits, false, now_ms)?;
                }
                Some(Granted::Unlimited) => entitlements.add(user, key, 0, true, now_ms)?,
                Some(Granted::Subscription) | None => {}
            }
            store
                .checkouts()
                .set_taken_back(&checkout.session_id, None, None)?
        }
    };
    if changed {
        tracing::info!(user = %user, tool = %checkout.tool, kind = kind.as_str(), "a purchase was taken back or granted again");
    }
    Ok(changed.then(|| user.to_owned()))
}

fn apply_subscription(
    store: &PaymentStore,
    sub: &SubscriptionInfo,
    change: SubscriptionChange,
    now_ms: i64,
) -> rusqlite::Result<Option<String>> {
    let user = match sub.metadata.get("mcp_user_id") {
        Some(user) => Some(user.clone()),
        None => store.customers().user_of(&sub.customer)?,
    };
    let Some(user) = user else {
        tracing::debug!(subscription = %sub.id, "a subscription of a customer mcp-analytics does not know; ignored");
        return Ok(None);
    };
    let status = rules::subscription_status(change, sub);
    let subscriptions = store.subscriptions();
    let stored = subscriptions.get(&sub.id)?;
    if stored
        .as_ref()
        .is_some_and(|row| row.status.is_stale_move_to(&status))
    {
        tracing::info!(subscription = %sub.id, %status, "a late subscription event; ignored");
        return Ok(None);
    }
    subscriptions.upsert(
        &rules::subscription_row(sub, &user, status.clone(), now_ms),
        now_ms,
    )?;
    store.events().record(
        now_ms,
        rules::subscription_event(change, &status),
        &EventRow {
            user_id: Some(&user),
            tool: sub.metadata.get("mcp_tool").map(String::as_str),
            reference: Some(&sub.id),
            detail: Some(status.as_str()),
            ..EventRow::default()
        },
    )?;
    Ok(Some(user))
}
