//! The ledger's storage: a trait whose every operation is one atomic step in the database, so
//! that a store shared by several processes keeps the same guarantees. [`SqliteLedger`] is the
//! first implementation.
//!
//! [`SqliteLedger`]: super::sqlite::SqliteLedger

use std::{future::Future, pin::Pin};

use crate::payments::{
    domain::{EntitlementKey, Granted, PriceSet, SubscriptionStatus},
    provider::{CheckoutInfo, SubscriptionInfo},
    store::StoreError,
};

/// What a store operation returns.
pub(crate) type StoreFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// One credit reserved for one call, from [`LedgerStore::reserve_credit`] until the call uses
/// it ([`LedgerStore::consume_credit`]) or gives it back ([`LedgerStore::release_credit`]):
/// each acts on exactly that reservation, and using it twice uses one credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ReservationId(uuid::Uuid);

impl ReservationId {
    /// A new, unique reservation.
    pub(crate) fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl std::fmt::Display for ReservationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What using a reserved credit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CreditUse {
    /// One credit held was used.
    Used,
    /// None was held (a refund or dispute took it while the call ran): one of those taken
    /// back was charged instead, or none was left to charge.
    TakenBack,
    /// This reservation's credit was used before (a retry whose first attempt reached the
    /// store): nothing more. (A shared store's; SQLite's failed attempts rolled back.)
    #[cfg(feature = "postgres")]
    AlreadyUsed,
}

/// What a user holds for one entitlement key, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Holding {
    /// Credits left (including ones reserved by calls still running in this process).
    pub credits: i64,
    pub unlimited: bool,
    /// The user's subscription covering every price of the key: one that grants access if
    /// there is one, else one whose payment needs fixing.
    pub subscription: Option<(String, SubscriptionStatus)>,
    /// When the provider was last asked (Unix ms).
    pub checked_ms: i64,
}

/// A paid (or completed) checkout to apply.
#[derive(Clone, Debug)]
pub(crate) struct Purchase<'a> {
    pub session: &'a CheckoutInfo,
    pub user: &'a str,
    pub tool: &'a str,
    pub key: EntitlementKey,
    pub granted: Granted,
}

/// What applying a completed checkout did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fulfilment {
    /// Granted now.
    Granted,
    /// Granted before (a redelivery, or another path saw it first).
    AlreadyGranted,
    /// Complete, but a delayed payment method's money has not arrived: nothing granted yet.
    Pending,
    /// Not paid (open, expired, or its delayed payment failed).
    NotPaid,
}

/// Money going back or coming back for a one-time purchase's payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reversal {
    pub kind: ReversalKind,
    /// The refund's or dispute's id (applied once per id).
    pub id: String,
    /// The payment it concerns.
    pub payment_intent: String,
    pub amount: i64,
    pub currency: String,
}

/// Which reversal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReversalKind {
    /// A refund (the purchase is taken back once refunded in full).
    Refund,
    /// A dispute opened: taken back at once.
    Dispute,
    /// A dispute won: granted again.
    DisputeWon,
}

impl ReversalKind {
    /// The stored name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReversalKind::Refund => "refund",
            ReversalKind::Dispute => "dispute",
            ReversalKind::DisputeWon => "dispute_won",
        }
    }

    /// Reads [`ReversalKind::as_str`]'s name.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "refund" => Some(ReversalKind::Refund),
            "dispute" => Some(ReversalKind::Dispute),
            "dispute_won" => Some(ReversalKind::DisputeWon),
            _ => None,
        }
    }
}

/// Which subscription event is being applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubscriptionChange {
    Created,
    Updated,
    Deleted,
}

/// The storage of the ledger. Every method is one transaction.
pub(crate) trait LedgerStore: Send + Sync {
    /// What `user` holds for `key`.
    fn holding<'a>(&'a self, user: &'a str, key: &'a EntitlementKey) -> StoreFuture<'a, Holding>;

    /// Uses the credit a call reserved, once the call succeeded: one held (a conditional
    /// decrement), else — none left because a refund or dispute took the reserved credit while
    /// the call ran — one of those taken back, so that take-back counts one credit fewer and a
    /// won dispute returns only credits not used. It is charged to the user's latest purchase
    /// for the key still counting credits taken back, a disputed one first (a refund never
    /// returns anything). Idempotent per reservation on a shared store: after an error (whose
    /// transaction may have committed) it can be run again.
    fn consume_credit<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        reservation: ReservationId,
    ) -> StoreFuture<'a, CreditUse>;

    /// Whether several processes share this store: a credit is then reserved in the store
    /// ([`LedgerStore::reserve_credit`]) before its call runs, not only in memory.
    fn shared(&self) -> bool {
        false
    }

    /// Reserves one of the user's credits for a call about to run, in the store (a shared
    /// store only); `false` when none is free. [`LedgerStore::consume_credit`] ends the
    /// reservation and uses the credit, [`LedgerStore::release_credit`] gives it back.
    fn reserve_credit<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        reservation: ReservationId,
    ) -> StoreFuture<'a, bool> {
        let _ = (user, key, reservation);
        Box::pin(async { Ok(true) })
    }

    /// Gives back a credit reserved by [`LedgerStore::reserve_credit`] (its call failed, or
    /// never started); the store stops keeping the reservation alive, so one it cannot delete
    /// (unreachable, or its reservation not yet committed) runs out.
    fn release_credit<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        reservation: ReservationId,
    ) -> StoreFuture<'a, ()> {
        let _ = (user, key, reservation);
        Box::pin(async { Ok(()) })
    }

    /// Applies a completed checkout: records it and, once paid, grants what it bought, marks
    /// it fulfilled and records `checkout_completed` — all at once, and only the first time.
    fn fulfil<'a>(&'a self, purchase: &'a Purchase<'a>, now_ms: i64)
    -> StoreFuture<'a, Fulfilment>;

    /// Records that a completed checkout's delayed payment failed.
    fn payment_failed<'a>(&'a self, purchase: &'a Purchase<'a>, now_ms: i64)
    -> StoreFuture<'a, ()>;

    /// Applies a refund or dispute (once per id); returns the purchase's user when what they
    /// hold changed. One whose purchase has not arrived is held and applied by `fulfil`.
    fn reverse<'a>(
        &'a self,
        reversal: &'a Reversal,
        now_ms: i64,
    ) -> StoreFuture<'a, Option<String>>;

    /// Applies a subscription's new state (a late one is ignored); returns its user when known.
    fn apply_subscription<'a>(
        &'a self,
        subscription: &'a SubscriptionInfo,
        change: SubscriptionChange,
        now_ms: i64,
    ) -> StoreFuture<'a, Option<String>>;

    /// Records what the provider said it knows of `user`'s subscriptions to `prices`: those
    /// listed are stored (unless late), stored ones that grant access but were not listed have
    /// ended; and that the provider was asked now.
    fn sync_subscriptions<'a>(
        &'a self,
        user: &'a str,
        prices: &'a PriceSet,
        listed: &'a [SubscriptionInfo],
        now_ms: i64,
    ) -> StoreFuture<'a, ()>;

    /// Notes that the provider was asked about `user`'s `key` at `now_ms`.
    fn touch<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        now_ms: i64,
    ) -> StoreFuture<'a, ()>;
}
