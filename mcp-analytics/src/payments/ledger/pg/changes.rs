//! What webhooks and syncs change in PostgreSQL — purchases, delayed payments, refunds and
//! disputes, subscriptions — each step as [`SqliteLedger`]'s, inside the caller's transaction
//! (which holds the ledger's advisory lock).
//!
//! [`SqliteLedger`]: crate::payments::ledger::sqlite::SqliteLedger

use deadpool_postgres::Transaction;

use super::PgResult;
use crate::payments::ledger::rules;
use crate::payments::{
    domain::{
        CheckoutStatus, EntitlementKey, Granted, PaymentStatus, PriceSet, SubscriptionStatus,
    },
    ledger::store::{Fulfilment, Purchase, Reversal, ReversalKind, SubscriptionChange},
    provider::SubscriptionInfo,
    store::{
        EventRow, PaymentEventKind, SubscriptionRow, TakenBack,
        pg::{checkouts, holdings, records},
    },
};

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

pub(super) async fn payment_failed(
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

pub(super) async fn fulfil(
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
        let first = rules::first_pending(stored.as_ref());
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
                        status: rules::paid_subscription_status(stored.map(|row| row.status)),
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
        let held = records::take_reversals(tx, intent).await?;
        for reversal in held.into_iter().filter_map(rules::unheld) {
            reverse(tx, &reversal, now_ms).await?;
        }
    }
    Ok(Fulfilment::Granted)
}

pub(super) async fn reverse(
    tx: &Transaction<'_>,
    reversal: &Reversal,
    now_ms: i64,
) -> PgResult<Option<String>> {
    let Some(checkout) = checkouts::paid_by(tx, &reversal.payment_intent).await? else {
        records::hold_reversal(tx, &rules::held(reversal), now_ms).await?;
        return Ok(None);
    };
    let kind = rules::reversal_event(reversal.kind);
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
                ReversalKind::Refund => rules::refunded_in_full(
                    checkout.amount,
                    records::refunded_total(tx, &checkout.session_id).await?,
                ),
                _ => !records::recorded(tx, PaymentEventKind::DisputeWon, &reversal.id).await?,
            };
            if !take || checkout.taken_back.is_some() {
                return Ok(None);
            }
            let how = rules::taken_back_by(reversal.kind);
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
            if refunded > 0 && rules::refunded_in_full(checkout.amount, refunded) {
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

pub(super) async fn apply_subscription(
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
    let status = rules::subscription_status(change, sub);
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
        &rules::subscription_row(sub, &user, status.clone(), now_ms),
        now_ms,
    )
    .await?;
    records::record(
        tx,
        now_ms,
        rules::subscription_event(change, &status),
        &EventRow {
            user_id: Some(&user),
            tool: sub.metadata.get("mcp_tool").map(String::as_str),
            reference: Some(&sub.id),
            detail: Some(status.as_str()),
            ..EventRow::default()
        },
    )
    .await?;
    Ok(Some(user))
}

pub(super) async fn sync_subscriptions(
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
            &rules::subscription_row(sub, user, sub.status.clone(), now_ms),
            now_ms,
        )
        .await?;
    }
    for stored in holdings::subscriptions_of(tx, user).await? {
        if rules::ended_unlisted(&stored, listed, prices) {
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
