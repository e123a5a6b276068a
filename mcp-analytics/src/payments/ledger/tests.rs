//! Ledger behaviours found in review, each at the exact sequence that broke it.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use super::{
    Access, Decision, Fulfilment, Ledger, LedgerStore, Purchase, ReservationId, Reversal,
    SubscriptionChange,
    sqlite::SqliteLedger,
    store::{CreditUse, Holding, StoreFuture},
};
use crate::payments::{
    domain::{CheckoutStatus, EntitlementKey, PaymentStatus, PriceSet, SubscriptionStatus},
    pricing::CheckoutMode,
    provider::{CheckoutInfo, SubscriptionInfo},
    store::{PaymentStore, SharedStore, StoreError},
};

/// The SQLite ledger store, whose reads can be made to fail.
struct Flaky {
    inner: SqliteLedger,
    fail_reads: AtomicBool,
}

impl LedgerStore for Flaky {
    fn holding<'a>(&'a self, user: &'a str, key: &'a EntitlementKey) -> StoreFuture<'a, Holding> {
        if self.fail_reads.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::from(rusqlite::Error::InvalidQuery)) });
        }
        self.inner.holding(user, key)
    }

    fn consume_credit<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        reservation: ReservationId,
    ) -> StoreFuture<'a, CreditUse> {
        self.inner.consume_credit(user, key, reservation)
    }

    fn fulfil<'a>(
        &'a self,
        purchase: &'a Purchase<'a>,
        now_ms: i64,
    ) -> StoreFuture<'a, Fulfilment> {
        self.inner.fulfil(purchase, now_ms)
    }

    fn payment_failed<'a>(
        &'a self,
        purchase: &'a Purchase<'a>,
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        self.inner.payment_failed(purchase, now_ms)
    }

    fn reverse<'a>(
        &'a self,
        reversal: &'a Reversal,
        now_ms: i64,
    ) -> StoreFuture<'a, Option<String>> {
        self.inner.reverse(reversal, now_ms)
    }

    fn apply_subscription<'a>(
        &'a self,
        subscription: &'a SubscriptionInfo,
        change: SubscriptionChange,
        now_ms: i64,
    ) -> StoreFuture<'a, Option<String>> {
        self.inner.apply_subscription(subscription, change, now_ms)
    }

    fn sync_subscriptions<'a>(
        &'a self,
        user: &'a str,
        prices: &'a PriceSet,
        listed: &'a [SubscriptionInfo],
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        self.inner.sync_subscriptions(user, prices, listed, now_ms)
    }

    fn touch<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        self.inner.touch(user, key, now_ms)
    }
}

fn ledger(dir: &tempfile::TempDir) -> (Ledger, Arc<Flaky>, SharedStore) {
    let store = SharedStore::new(PaymentStore::open(&dir.path().join("p.db")).expect("open"));
    let flaky = Arc::new(Flaky {
        inner: SqliteLedger::new(store.clone()),
        fail_reads: AtomicBool::new(false),
    });
    let ledger = Ledger::new(flaky.clone(), Duration::from_secs(3600));
    (ledger, flaky, store)
}

/// A completed checkout of `user` for `key`, granting `grant`.
fn session(
    id: &str,
    key: &str,
    mode: CheckoutMode,
    grant: &str,
    payment: PaymentStatus,
) -> CheckoutInfo {
    CheckoutInfo {
        id: id.into(),
        url: None,
        status: CheckoutStatus::Complete,
        payment_status: payment,
        mode,
        customer: Some("cus_1".into()),
        subscription: (mode == CheckoutMode::Subscription).then(|| "sub_1".into()),
        client_reference_id: Some("u".into()),
        metadata: HashMap::from([
            ("mcp_user_id".to_owned(), "u".to_owned()),
            ("mcp_price_key".to_owned(), key.to_owned()),
            ("mcp_tool".to_owned(), "tool".to_owned()),
            ("mcp_grant".to_owned(), grant.to_owned()),
        ]),
        amount_total: Some(1000),
        currency: Some("eur".into()),
        expires_at: 4_000_000_000,
        payment_intent: Some(format!("pi_{id}")),
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Stripe keeps a session whose delayed payment failed `complete` and `unpaid`: reported again
/// (by the provider when asked, or a redelivery) it must not turn back into "processing",
/// which would answer every later call "payment processing" and never offer a new link.
#[test]
fn a_failed_delayed_payment_stays_failed_when_its_session_is_reported_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, _, store) = ledger(&dir);
    let pending = session(
        "cs_1",
        "price_a",
        CheckoutMode::Payment,
        "3",
        PaymentStatus::Unpaid,
    );
    block_on(async {
        assert_eq!(
            ledger.fulfil(&pending).await.expect("fulfil"),
            Fulfilment::Pending
        );
        ledger.payment_failed(&pending).await.expect("failed");
        assert_eq!(
            ledger.fulfil(&pending).await.expect("again"),
            Fulfilment::NotPaid
        );
    });
    let key = EntitlementKey::from_stored("price_a");
    let clearing = store
        .lock()
        .checkouts()
        .pending("u", &key, 0)
        .expect("read");
    assert_eq!(clearing, None, "no checkout is still clearing");
}

/// A take-back that reached the store but could not be loaded into memory (a busy database)
/// must not leave memory granting: the webhook is redelivered, but by then the store has it
/// and reports no change.
#[test]
fn a_take_back_that_cannot_be_loaded_stops_memory_granting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, flaky, _) = ledger(&dir);
    let key = EntitlementKey::from_stored("price_a");
    let unlock = session(
        "cs_1",
        "price_a",
        CheckoutMode::Payment,
        "unlimited",
        PaymentStatus::Paid,
    );
    block_on(async {
        ledger.fulfil(&unlock).await.expect("fulfil");
        ledger.reload("u", &key).await.expect("reload");
        assert_eq!(
            ledger.reserve("u", &key).await,
            Decision::Granted(Access::Unlimited)
        );
        flaky.fail_reads.store(true, Ordering::SeqCst);
        let refund = Reversal {
            kind: super::ReversalKind::Refund,
            id: "re_1".into(),
            payment_intent: "pi_cs_1".into(),
            amount: 1000,
            currency: "eur".into(),
        };
        assert!(ledger.reverse(&refund).await.is_err(), "the load failed");
        assert_ne!(
            ledger.reserve("u", &key).await,
            Decision::Granted(Access::Unlimited)
        );
        flaky.fail_reads.store(false, Ordering::SeqCst);
        ledger.reverse(&refund).await.expect("redelivered");
        ledger.reload("u", &key).await.expect("reload");
        assert_eq!(ledger.reserve("u", &key).await, Decision::Refused);
    });
}

/// A subscription paid by a delayed method is `incomplete` until its payment clears; the
/// paid checkout may arrive before the subscription's own update, and must make it active.
#[test]
fn a_paid_checkout_makes_its_incomplete_subscription_active() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, _, _) = ledger(&dir);
    let key = EntitlementKey::from_stored("price_pro");
    let incomplete = SubscriptionInfo {
        id: "sub_1".into(),
        status: SubscriptionStatus::Incomplete,
        customer: "cus_1".into(),
        metadata: HashMap::from([("mcp_user_id".to_owned(), "u".to_owned())]),
        price_ids: PriceSet::decode("price_pro"),
    };
    let paid = session(
        "cs_1",
        "price_pro",
        CheckoutMode::Subscription,
        "subscription",
        PaymentStatus::Paid,
    );
    block_on(async {
        ledger
            .apply_subscription(&incomplete, SubscriptionChange::Created)
            .await
            .expect("created");
        ledger.fulfil(&paid).await.expect("paid");
        ledger.reload("u", &key).await.expect("reload");
        assert_eq!(
            ledger.reserve("u", &key).await,
            Decision::Granted(Access::Subscription)
        );
    });
}
