//! The ledger's rules over what a store read, shared by [`SqliteLedger`] and [`PgLedger`]:
//! pure steps, so that the two stores differ only in how they read and write.
//!
//! [`SqliteLedger`]: super::sqlite::SqliteLedger
//! [`PgLedger`]: super::pg::PgLedger

use super::store::{Holding, Reversal, ReversalKind, SubscriptionChange};
use crate::payments::{
    domain::{CheckoutStatus, EntitlementKey, PaymentStatus, PriceSet, SubscriptionStatus},
    provider::SubscriptionInfo,
    store::{
        CheckoutRow, EntitlementRow, HeldReversal, PaymentEventKind, SubscriptionRow, TakenBack,
    },
};

/// What the user holds for `key`, from their entitlement row and their subscriptions: of
/// those covering every price of the key, one that grants access, else one whose payment
/// needs fixing. A subscription's event recorded is as fresh as asking the provider.
pub(super) fn holding(
    row: EntitlementRow,
    subscriptions: Vec<SubscriptionRow>,
    key: &EntitlementKey,
) -> Holding {
    let prices = PriceSet::decode(key.as_str());
    let covering: Vec<SubscriptionRow> = subscriptions
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
    Holding {
        credits: row.credits,
        unlimited: row.unlimited,
        subscription: subscription.map(|sub| (sub.id, sub.status)),
        checked_ms,
    }
}

/// Whether a completed checkout whose delayed payment is clearing is seen so for the first
/// time (its `checkout_pending` event is recorded once).
pub(super) fn first_pending(stored: Option<&CheckoutRow>) -> bool {
    stored.is_none_or(|row| {
        row.payment_status != Some(PaymentStatus::Unpaid) || row.status != CheckoutStatus::Complete
    })
}

/// The status of a subscription whose checkout was paid: an `incomplete` one (its first
/// payment was clearing), or one not seen yet, is active, whichever event arrives first.
pub(super) fn paid_subscription_status(stored: Option<SubscriptionStatus>) -> SubscriptionStatus {
    match stored {
        None | Some(SubscriptionStatus::Incomplete) => SubscriptionStatus::Active,
        Some(status) => status,
    }
}

/// The event a reversal records.
pub(super) fn reversal_event(kind: ReversalKind) -> PaymentEventKind {
    match kind {
        ReversalKind::Refund => PaymentEventKind::Refunded,
        ReversalKind::Dispute => PaymentEventKind::Disputed,
        ReversalKind::DisputeWon => PaymentEventKind::DisputeWon,
    }
}

/// How a refund or a dispute opened takes a purchase back.
pub(super) fn taken_back_by(kind: ReversalKind) -> TakenBack {
    match kind {
        ReversalKind::Refund => TakenBack::Refunded,
        ReversalKind::Dispute | ReversalKind::DisputeWon => TakenBack::Disputed,
    }
}

/// Whether `refunded` refunds in full a purchase that cost `paid` (unknown: any refund does).
pub(super) fn refunded_in_full(paid: Option<i64>, refunded: i64) -> bool {
    paid.is_none_or(|paid| refunded >= paid)
}

/// A refund or dispute kept until its purchase arrives.
pub(super) fn held(reversal: &Reversal) -> HeldReversal {
    HeldReversal {
        id: reversal.id.clone(),
        kind: reversal.kind.as_str().to_owned(),
        payment_intent: reversal.payment_intent.clone(),
        amount: reversal.amount,
        currency: reversal.currency.clone(),
    }
}

/// A kept refund or dispute, to apply now its purchase arrived; `None` (logged) for one of a
/// kind this version does not know.
pub(super) fn unheld(held: HeldReversal) -> Option<Reversal> {
    let Some(kind) = ReversalKind::parse(&held.kind) else {
        tracing::error!(reversal = %held.id, kind = %held.kind, "a held reversal of an unknown kind; ignored");
        return None;
    };
    Some(Reversal {
        kind,
        id: held.id,
        payment_intent: held.payment_intent,
        amount: held.amount,
        currency: held.currency,
    })
}

/// The status a subscription's event brings (a deletion cancels it).
pub(super) fn subscription_status(
    change: SubscriptionChange,
    sub: &SubscriptionInfo,
) -> SubscriptionStatus {
    match change {
        SubscriptionChange::Deleted => SubscriptionStatus::Canceled,
        _ => sub.status.clone(),
    }
}

/// The event a subscription's change to `status` records.
pub(super) fn subscription_event(
    change: SubscriptionChange,
    status: &SubscriptionStatus,
) -> PaymentEventKind {
    match change {
        SubscriptionChange::Created => PaymentEventKind::SubscriptionStarted,
        SubscriptionChange::Deleted => PaymentEventKind::SubscriptionCancelled,
        SubscriptionChange::Updated if *status == SubscriptionStatus::Canceled => {
            PaymentEventKind::SubscriptionCancelled
        }
        SubscriptionChange::Updated => PaymentEventKind::SubscriptionUpdated,
    }
}

/// The stored row of `user`'s subscription as the provider described it, in `status`.
pub(super) fn subscription_row(
    sub: &SubscriptionInfo,
    user: &str,
    status: SubscriptionStatus,
    now_ms: i64,
) -> SubscriptionRow {
    SubscriptionRow {
        id: sub.id.clone(),
        user_id: Some(user.to_owned()),
        tool: sub.metadata.get("mcp_tool").cloned(),
        status,
        prices: sub.price_ids.clone(),
        updated_ms: now_ms,
    }
}

/// Whether a stored subscription covering `prices` that the provider did not list (it lists
/// every one that has not ended) is to be recorded as ended.
pub(super) fn ended_unlisted(
    stored: &SubscriptionRow,
    listed: &[SubscriptionInfo],
    prices: &PriceSet,
) -> bool {
    !listed.iter().any(|sub| sub.id == stored.id)
        && stored.prices.covers(prices)
        && !stored
            .status
            .is_stale_move_to(&SubscriptionStatus::Canceled)
}
