//! A model-based test of the [`Ledger`]: random sequences of purchases, calls, refunds,
//! disputes, subscription events (redelivered and out of order), reloads and restarts drive
//! the real ledger over a real SQLite file and a small reference model side by side; after
//! every step the store's credits, and the decision the ledger gives each user for each key,
//! must be the model's.
//!
//! The model's rules:
//! - Credits are pooled per user and key. A purchase taken back (refunded in full, or disputed)
//!   removes `min(granted, credits left in the store)` — credits reserved by running calls are
//!   still in the store — and a won dispute returns what was taken and not used since.
//! - A purchase is taken back while it is refunded in full or has an opened dispute whose win
//!   was not delivered; an unlimited unlock holds while any of its purchases is not taken back.
//! - A credit is admitted only while the store holds more credits than calls running on them.
//!   A call admitted before its credit was taken back may still finish (a late run): its commit
//!   finds no credit and uses, instead, one of those taken back by the user's latest purchase
//!   for the key still holding some taken back — a disputed one first, the only kind a won
//!   dispute returns — so that purchase's take-back counts one credit fewer.
//! - Every credit bought is run, held or taken back: runs (late ones included) never exceed the
//!   credits bought minus those taken back and not returned.
//! - A subscription's status follows its events unless an event is late (a final status never
//!   changes, nothing returns to `incomplete`); it grants while active or trialing and covers a
//!   key when it holds every price of the key.
//! - A restart loses the calls in flight: they never finished, used nothing, and the credits
//!   they reserved count again (the store never stopped counting them; on PostgreSQL, once
//!   the dead process's reservation leases ran out).
//!
//! The same sequences run against PostgreSQL ([`Backend::Postgres`], in `pg_tests`).

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use proptest::prelude::*;

use super::{
    Access, Decision, Fulfilment, Ledger, ReservationId, Reversal, ReversalKind,
    SubscriptionChange, sqlite::SqliteLedger,
};
use crate::payments::{
    domain::{CheckoutStatus, EntitlementKey, PaymentStatus, PriceSet, SubscriptionStatus},
    pricing::CheckoutMode,
    provider::{CheckoutInfo, SubscriptionInfo},
    store::{PaymentStore, SharedStore},
};

pub(super) const USERS: [&str; 3] = ["u0", "u1", "u2"];
/// Two one-time keys (the second also charges a surcharge) and two subscription keys.
const KEYS: [&str; 4] = [
    "price_a",
    "price_a+price_hd",
    "price_basic",
    "price_basic+price_premium",
];
/// The keys subscriptions are sold for (indexes into `KEYS`).
const SUBSCRIPTION_KEYS: [usize; 2] = [2, 3];
/// What one credit costs (cents).
const CREDIT_PRICE: i64 = 100;
const UNLIMITED_PRICE: i64 = 1000;

pub(super) fn key(index: usize) -> EntitlementKey {
    EntitlementKey::from_stored(KEYS[index])
}

/// Where a harness's ledger keeps what users hold.
#[derive(Clone)]
pub(super) enum Backend {
    /// A SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database (its payment tables migrated).
    #[cfg(feature = "postgres")]
    Postgres(crate::payments::store::pg::PgPayments),
}

/// The store behind a harness's ledger, read by its checks.
enum Stored {
    Sqlite(SharedStore),
    #[cfg(feature = "postgres")]
    Postgres(crate::payments::store::pg::PgPayments),
}

impl Stored {
    /// The credits the store holds for the user and key.
    async fn credits(&self, user: &str, key: &str) -> i64 {
        match self {
            Stored::Sqlite(store) => store
                .lock()
                .entitlements()
                .get(user, key)
                .expect("read entitlements")
                .map_or(0, |row| row.credits),
            #[cfg(feature = "postgres")]
            Stored::Postgres(pg) => pg
                .pool
                .get()
                .await
                .expect("a connection")
                .query_opt(
                    "SELECT credits FROM payment_entitlements WHERE user_id = $1 AND price_key = $2",
                    &[&user, &key],
                )
                .await
                .expect("read entitlements")
                .map_or(0, |row| row.get(0)),
        }
    }
}

impl Backend {
    /// A ledger as a fresh process builds it. On PostgreSQL the process before it is dead and
    /// its reservations' leases have run out.
    async fn open(&self) -> (Arc<Ledger>, Stored) {
        match self {
            Backend::Sqlite(path) => {
                let (ledger, store) = open_ledger(path);
                (Arc::new(ledger), Stored::Sqlite(store))
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                pg.pool
                    .get()
                    .await
                    .expect("a connection")
                    .execute("DELETE FROM payment_reservations", &[])
                    .await
                    .expect("leases run out");
                let replica = uuid::Uuid::now_v7().to_string();
                let ledger = Ledger::new(
                    Arc::new(super::pg::PgLedger::new(pg.clone(), replica)),
                    Duration::from_secs(3600),
                );
                (Arc::new(ledger), Stored::Postgres(pg.clone()))
            }
        }
    }
}

/// A ledger over the database file at `path`, as a fresh process builds it.
fn open_ledger(path: &Path) -> (Ledger, SharedStore) {
    let store = SharedStore::new(PaymentStore::open(path).expect("open the payment store"));
    let ledger = Ledger::new(
        Arc::new(SqliteLedger::new(store.clone())),
        Duration::from_secs(3600),
    );
    (ledger, store)
}

/// What a one-time purchase grants, as generated.
#[derive(Clone, Copy, Debug)]
pub(super) enum Grant {
    Credits(i64),
    Unlimited,
}

/// One step. Indexes pick among what exists when the step runs (modulo its count); a step
/// with nothing to act on is skipped.
#[derive(Clone, Debug)]
pub(super) enum Op {
    /// A one-time checkout completed (paid, or with a delayed payment still clearing).
    Buy {
        user: usize,
        key: usize,
        grant: Grant,
        delayed: bool,
    },
    /// The paid checkout delivered (again): a delayed payment arriving, or a redelivery.
    DeliverPaid {
        purchase: usize,
    },
    /// A delayed payment failed (the checkout will never be paid).
    PaymentFailed {
        purchase: usize,
    },
    /// The provider was asked for the user's subscriptions covering a subscription key.
    SyncSubscriptions {
        user: usize,
        set: usize,
    },
    /// A refund of half (or all) of what is left to refund. `late`: its event is held back
    /// until a [`Op::DeliverLate`].
    Refund {
        purchase: usize,
        full: bool,
        late: bool,
    },
    DisputeOpened {
        purchase: usize,
        late: bool,
    },
    DisputeWon {
        purchase: usize,
        late: bool,
    },
    /// A held-back reversal event delivered.
    DeliverLate {
        event: usize,
    },
    /// A dispute lost: no event reaches the ledger (the purchase stays taken back).
    DisputeLost {
        purchase: usize,
    },
    /// A reversal event delivered again.
    RedeliverReversal {
        reversal: usize,
    },
    /// A dispute's events delivered in the other order (won first, then opened).
    DisputeWonFirst {
        purchase: usize,
    },
    /// A subscription bought: checkout then `created(active)`, or `created(incomplete)`,
    /// checkout, `updated(active)`.
    Subscribe {
        user: usize,
        set: usize,
        events_first: bool,
    },
    /// A subscription changed status (or was deleted).
    SubscriptionEvent {
        subscription: usize,
        status: usize,
        deleted: bool,
    },
    /// A subscription event delivered again, late.
    RedeliverSubscriptionEvent {
        event: usize,
    },
    /// A call reserves what admits it, as the gate does.
    Call {
        user: usize,
        key: usize,
    },
    /// A running call ends: 0 succeeded, 1 failed, 2 cancelled.
    Settle {
        call: usize,
        outcome: u8,
    },
    Reload {
        user: usize,
        key: usize,
    },
    /// The process restarts over the same database.
    Restart,
}

const STATUSES: [&str; 6] = [
    "active",
    "trialing",
    "past_due",
    "paused",
    "incomplete",
    "canceled",
];

fn late() -> impl Strategy<Value = bool> {
    proptest::bool::weighted(0.25)
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let grant = prop_oneof![3 => (1..=3_i64).prop_map(Grant::Credits), 1 => Just(Grant::Unlimited)];
    prop_oneof![
        4 => (0..3_usize, 0..2_usize, grant, proptest::bool::weighted(0.2))
            .prop_map(|(user, key, grant, delayed)| Op::Buy { user, key, grant, delayed }),
        1 => any::<usize>().prop_map(|purchase| Op::DeliverPaid { purchase }),
        1 => any::<usize>().prop_map(|purchase| Op::PaymentFailed { purchase }),
        1 => (0..3_usize, 0..2_usize).prop_map(|(user, set)| Op::SyncSubscriptions { user, set }),
        2 => (any::<usize>(), any::<bool>(), late()).prop_map(|(purchase, full, late)| Op::Refund { purchase, full, late }),
        1 => (any::<usize>(), late()).prop_map(|(purchase, late)| Op::DisputeOpened { purchase, late }),
        1 => (any::<usize>(), late()).prop_map(|(purchase, late)| Op::DisputeWon { purchase, late }),
        1 => any::<usize>().prop_map(|event| Op::DeliverLate { event }),
        1 => any::<usize>().prop_map(|purchase| Op::DisputeLost { purchase }),
        1 => any::<usize>().prop_map(|purchase| Op::DisputeWonFirst { purchase }),
        1 => any::<usize>().prop_map(|reversal| Op::RedeliverReversal { reversal }),
        2 => (0..3_usize, 0..2_usize, any::<bool>())
            .prop_map(|(user, set, events_first)| Op::Subscribe { user, set, events_first }),
        2 => (any::<usize>(), 0..STATUSES.len(), proptest::bool::weighted(0.2))
            .prop_map(|(subscription, status, deleted)| Op::SubscriptionEvent { subscription, status, deleted }),
        1 => any::<usize>().prop_map(|event| Op::RedeliverSubscriptionEvent { event }),
        8 => (0..3_usize, 0..4_usize).prop_map(|(user, key)| Op::Call { user, key }),
        6 => (any::<usize>(), 0..3_u8).prop_map(|(call, outcome)| Op::Settle { call, outcome }),
        1 => (0..3_usize, 0..4_usize).prop_map(|(user, key)| Op::Reload { user, key }),
        1 => Just(Op::Restart),
    ]
}

/// The provider's side of a dispute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DisputeState {
    None,
    Open,
    Won,
    Lost,
}

/// A one-time purchase in the model.
#[derive(Clone, Debug)]
pub(super) struct Purchase {
    user: usize,
    key: usize,
    grant: Grant,
    pub(super) amount: i64,
    /// The paid checkout was applied (granted).
    fulfilled: bool,
    /// Its delayed payment failed: it is never paid.
    failed: bool,
    /// Refunded so far, at the provider.
    refunded_at_provider: i64,
    /// Refunded so far, as delivered.
    refunded: i64,
    dispute: DisputeState,
    dispute_opened_delivered: bool,
    dispute_won_delivered: bool,
    /// Taken back, with the credits taken (less those late runs used since).
    taken: Option<i64>,
    /// How the ledger records the take-back: a dispute (a won dispute returns it) or a refund.
    taken_by_dispute: bool,
}

impl Purchase {
    /// A purchase not yet delivered to the ledger.
    fn new(user: usize, key: usize, grant: Grant, amount: i64) -> Self {
        Purchase {
            user,
            key,
            grant,
            amount,
            fulfilled: false,
            failed: false,
            refunded_at_provider: 0,
            refunded: 0,
            dispute: DisputeState::None,
            dispute_opened_delivered: false,
            dispute_won_delivered: false,
            taken: None,
            taken_by_dispute: false,
        }
    }

    fn session(&self, index: usize) -> String {
        // Zero-padded: the ledger orders purchases of one moment by session id.
        format!("cs_{index:04}")
    }

    /// Whether what it granted is taken back, from the events delivered.
    fn revoked(&self) -> bool {
        self.refunded >= self.amount
            || (self.dispute_opened_delivered && !self.dispute_won_delivered)
    }
}

/// A subscription in the model.
#[derive(Clone, Debug)]
struct Subscription {
    user: usize,
    set: usize,
    /// As the ledger should have stored it (`None`: not stored yet).
    status: Option<SubscriptionStatus>,
}

/// A decision as the model predicts it: a credit's reservation aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    Credit,
    Unlimited,
    Subscription,
    Refused,
    Unknown,
    Unavailable,
}

impl From<&Decision> for Expected {
    fn from(decision: &Decision) -> Self {
        match decision {
            Decision::Granted(Access::Credit(_)) => Expected::Credit,
            Decision::Granted(Access::Unlimited) => Expected::Unlimited,
            Decision::Granted(Access::Subscription) => Expected::Subscription,
            Decision::Refused => Expected::Refused,
            Decision::Unknown => Expected::Unknown,
            Decision::Unavailable => Expected::Unavailable,
        }
    }
}

/// The reference model.
#[derive(Default, Debug)]
struct Model {
    purchases: Vec<Purchase>,
    subscriptions: Vec<Subscription>,
    /// (user, key) → credits in the store.
    credits: HashMap<(usize, usize), i64>,
    /// Calls running on a reserved credit.
    calls: Vec<(usize, usize)>,
    /// Reversal events delivered: (purchase, kind, id, amount).
    reversals: Vec<(usize, ReversalKind, String, i64)>,
    /// Reversal events sent but held back.
    held: Vec<(usize, ReversalKind, String, i64)>,
    /// Subscription events sent: (subscription, status, change).
    subscription_events: Vec<(usize, SubscriptionStatus, SubscriptionChange)>,
    bought: i64,
    /// Credits taken back and not returned (nor used by a late run).
    taken: i64,
    /// Commits: each used a credit, held or taken back.
    runs: i64,
}

impl Model {
    fn credits(&self, user: usize, key: usize) -> i64 {
        self.credits.get(&(user, key)).copied().unwrap_or(0)
    }

    fn reserved(&self, user: usize, key: usize) -> i64 {
        self.calls
            .iter()
            .filter(|call| **call == (user, key))
            .count() as i64
    }

    /// What the gate should be told for `user` calling a tool of `key`.
    fn expected(&self, user: usize, key: usize) -> Expected {
        let unlimited = self.purchases.iter().any(|p| {
            p.user == user
                && p.key == key
                && matches!(p.grant, Grant::Unlimited)
                && p.fulfilled
                && !p.revoked()
        });
        if unlimited {
            return Expected::Unlimited;
        }
        if self.credits(user, key) - self.reserved(user, key) > 0 {
            return Expected::Credit;
        }
        let wanted = PriceSet::decode(KEYS[key]);
        let subscribed = self.subscriptions.iter().any(|sub| {
            sub.user == user
                && sub
                    .status
                    .as_ref()
                    .is_some_and(SubscriptionStatus::grants_access)
                && PriceSet::decode(KEYS[SUBSCRIPTION_KEYS[sub.set]]).covers(&wanted)
        });
        if subscribed {
            Expected::Subscription
        } else {
            Expected::Refused
        }
    }

    /// Applies a purchase's delivered refund or dispute event (`kind`) to the pooled credits.
    fn settle_take_back(&mut self, index: usize, kind: ReversalKind) {
        let purchase = &self.purchases[index];
        if !purchase.fulfilled {
            return;
        }
        let (user, key, revoked) = (purchase.user, purchase.key, purchase.revoked());
        match (purchase.taken, revoked) {
            (None, true) => {
                let taken = match purchase.grant {
                    Grant::Credits(granted) => granted.min(self.credits(user, key)).max(0),
                    Grant::Unlimited => 0,
                };
                *self.credits.entry((user, key)).or_default() -= taken;
                self.taken += taken;
                self.purchases[index].taken = Some(taken);
                self.purchases[index].taken_by_dispute = kind == ReversalKind::Dispute;
            }
            (Some(taken), false) => {
                *self.credits.entry((user, key)).or_default() += taken;
                self.taken -= taken;
                self.purchases[index].taken = None;
            }
            // A won dispute of a purchase refunded in full meanwhile: it stays taken back,
            // now as refunded.
            (Some(_), true) if kind == ReversalKind::DisputeWon => {
                self.purchases[index].taken_by_dispute = false;
            }
            _ => {}
        }
    }

    /// A late run (its credit was taken back while it ran) uses a credit taken back from the
    /// user's latest purchase for the key still holding some, a disputed one first.
    fn use_taken_back_credit(&mut self, user: usize, key: usize) {
        let charged = self
            .purchases
            .iter()
            .enumerate()
            .filter(|(_, p)| p.user == user && p.key == key && p.taken.is_some_and(|t| t > 0))
            .max_by_key(|(index, p)| (p.taken_by_dispute, *index))
            .map(|(index, _)| index);
        if let Some(index) = charged {
            self.purchases[index].taken = self.purchases[index].taken.map(|t| t - 1);
            self.taken -= 1;
        }
    }

    /// A subscription's status after an event, unless the event is late.
    fn apply_status(
        stored: Option<&SubscriptionStatus>,
        new: SubscriptionStatus,
    ) -> Option<SubscriptionStatus> {
        use SubscriptionStatus as S;
        match stored {
            Some(stored)
                if *stored != new
                    && (matches!(stored, S::Canceled | S::IncompleteExpired)
                        || new == S::Incomplete) =>
            {
                Some(stored.clone())
            }
            _ => Some(new),
        }
    }
}

pub(super) fn checkout(index: usize, purchase: &Purchase, paid: bool) -> CheckoutInfo {
    let grant = match purchase.grant {
        Grant::Credits(n) => n.to_string(),
        Grant::Unlimited => "unlimited".to_owned(),
    };
    CheckoutInfo {
        id: purchase.session(index),
        url: Some(format!("https://checkout.test/{index}")),
        status: CheckoutStatus::Complete,
        payment_status: if paid {
            PaymentStatus::Paid
        } else {
            PaymentStatus::Unpaid
        },
        mode: CheckoutMode::Payment,
        customer: Some(format!("cus_{}", purchase.user)),
        subscription: None,
        client_reference_id: Some(USERS[purchase.user].to_owned()),
        metadata: HashMap::from([
            ("mcp_user_id".to_owned(), USERS[purchase.user].to_owned()),
            ("mcp_price_key".to_owned(), KEYS[purchase.key].to_owned()),
            ("mcp_tool".to_owned(), format!("tool_{}", purchase.key)),
            ("mcp_grant".to_owned(), grant),
        ]),
        amount_total: Some(purchase.amount),
        currency: Some("eur".to_owned()),
        expires_at: 4_000_000_000,
        payment_intent: Some(format!("pi_{index}")),
    }
}

fn subscription_checkout(index: usize, sub: &Subscription) -> CheckoutInfo {
    let key = KEYS[SUBSCRIPTION_KEYS[sub.set]];
    CheckoutInfo {
        id: format!("cs_sub_{index}"),
        url: None,
        status: CheckoutStatus::Complete,
        payment_status: PaymentStatus::Paid,
        mode: CheckoutMode::Subscription,
        customer: Some(format!("cus_{}", sub.user)),
        subscription: Some(format!("sub_{index}")),
        client_reference_id: Some(USERS[sub.user].to_owned()),
        metadata: HashMap::from([
            ("mcp_user_id".to_owned(), USERS[sub.user].to_owned()),
            ("mcp_price_key".to_owned(), key.to_owned()),
            ("mcp_tool".to_owned(), format!("sub_tool_{}", sub.set)),
            ("mcp_grant".to_owned(), "subscription".to_owned()),
        ]),
        amount_total: Some(500),
        currency: Some("eur".to_owned()),
        expires_at: 4_000_000_000,
        payment_intent: None,
    }
}

fn subscription_info(
    index: usize,
    sub: &Subscription,
    status: SubscriptionStatus,
) -> SubscriptionInfo {
    SubscriptionInfo {
        id: format!("sub_{index}"),
        status,
        customer: format!("cus_{}", sub.user),
        metadata: HashMap::from([
            ("mcp_user_id".to_owned(), USERS[sub.user].to_owned()),
            ("mcp_tool".to_owned(), format!("sub_tool_{}", sub.set)),
        ]),
        price_ids: PriceSet::decode(KEYS[SUBSCRIPTION_KEYS[sub.set]]),
    }
}

/// The real ledger and the model, side by side.
struct Harness {
    backend: Backend,
    ledger: Arc<Ledger>,
    store: Stored,
    model: Model,
    /// The reservations of the model's running calls, in the same order.
    reservations: Vec<ReservationId>,
}

impl Harness {
    async fn new(backend: Backend) -> Self {
        let (ledger, store) = backend.open().await;
        Harness {
            backend,
            ledger,
            store,
            model: Model::default(),
            reservations: Vec::new(),
        }
    }

    /// Reserves as the gate does: from memory, else after a reload, else after noting the
    /// provider was asked (nothing it knows is missing here: every event is delivered).
    async fn admit(&self, user: usize, key: usize) -> Decision {
        let (name, key) = (USERS[user], key_of(key));
        let decision = self.ledger.reserve(name, &key).await;
        if matches!(decision, Decision::Granted(_)) {
            return decision;
        }
        self.ledger.reload(name, &key).await.expect("reload");
        match self.ledger.reserve(name, &key).await {
            Decision::Unknown => {
                self.ledger
                    .synced_purchases(name, &key)
                    .await
                    .expect("synced");
                self.ledger.reserve(name, &key).await
            }
            decision => decision,
        }
    }

    /// Sends a reversal event: delivered now, or held back to be delivered later (after
    /// events the provider sent after it).
    async fn send(
        &mut self,
        purchase: usize,
        kind: ReversalKind,
        id: String,
        amount: i64,
        late: bool,
    ) {
        if late {
            self.model.held.push((purchase, kind, id, amount));
        } else {
            self.deliver(purchase, kind, id, amount).await;
        }
    }

    /// Delivers a reversal event to the ledger and the model (which, like the ledger, applies
    /// each refund or dispute event once).
    async fn deliver(&mut self, purchase: usize, kind: ReversalKind, id: String, amount: i64) {
        let reversal = Reversal {
            kind,
            id: id.clone(),
            payment_intent: format!("pi_{purchase}"),
            amount,
            currency: "eur".to_owned(),
        };
        self.ledger.reverse(&reversal).await.expect("reverse");
        let first = !self
            .model
            .reversals
            .iter()
            .any(|(_, k, i, _)| *k == kind && *i == id);
        self.model.reversals.push((purchase, kind, id, amount));
        if !first {
            return;
        }
        let p = &mut self.model.purchases[purchase];
        match kind {
            ReversalKind::Refund => p.refunded += amount,
            ReversalKind::Dispute => p.dispute_opened_delivered = true,
            ReversalKind::DisputeWon => p.dispute_won_delivered = true,
        }
        self.model.settle_take_back(purchase, kind);
    }

    async fn subscription_event(
        &mut self,
        index: usize,
        status: SubscriptionStatus,
        change: SubscriptionChange,
    ) {
        let sub = self.model.subscriptions[index].clone();
        self.ledger
            .apply_subscription(&subscription_info(index, &sub, status.clone()), change)
            .await
            .expect("apply subscription");
        let new = match change {
            SubscriptionChange::Deleted => SubscriptionStatus::Canceled,
            _ => status.clone(),
        };
        self.model.subscriptions[index].status = Model::apply_status(sub.status.as_ref(), new);
        self.model.subscription_events.push((index, status, change));
    }

    async fn step(&mut self, op: &Op) {
        match *op {
            Op::Buy {
                user,
                key,
                grant,
                delayed,
            } => {
                let index = self.model.purchases.len();
                let amount = match grant {
                    Grant::Credits(n) => n * CREDIT_PRICE,
                    Grant::Unlimited => UNLIMITED_PRICE,
                };
                self.model
                    .purchases
                    .push(Purchase::new(user, key, grant, amount));
                if delayed {
                    let session = checkout(index, &self.model.purchases[index], false);
                    let got = self.ledger.fulfil(&session).await.expect("fulfil");
                    assert_eq!(
                        got,
                        Fulfilment::Pending,
                        "a delayed payment grants nothing yet"
                    );
                } else {
                    self.deliver_paid(index).await;
                }
            }
            Op::DeliverPaid { purchase } => {
                if let Some(index) = pick(purchase, self.model.purchases.len())
                    && !self.model.purchases[index].failed
                {
                    self.deliver_paid(index).await;
                }
            }
            Op::PaymentFailed { purchase } => {
                let Some(index) = pick(purchase, self.model.purchases.len()) else {
                    return;
                };
                let p = &self.model.purchases[index];
                if p.fulfilled || p.failed {
                    return;
                }
                let session = checkout(index, p, false);
                self.ledger
                    .payment_failed(&session)
                    .await
                    .expect("payment failed");
                self.model.purchases[index].failed = true;
            }
            Op::SyncSubscriptions { user, set } => {
                // The provider lists the user's subscriptions that have not ended (with the
                // key's first price: every set here has `price_basic`).
                let listed: Vec<SubscriptionInfo> = self
                    .model
                    .subscriptions
                    .iter()
                    .enumerate()
                    .filter(|(_, sub)| sub.user == user)
                    .filter_map(|(index, sub)| {
                        let status = sub.status.clone()?;
                        let ended = matches!(
                            status,
                            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
                        );
                        (!ended).then(|| subscription_info(index, sub, status))
                    })
                    .collect();
                let key = key_of(SUBSCRIPTION_KEYS[set]);
                self.ledger
                    .synced_subscriptions(USERS[user], &key, &listed)
                    .await
                    .expect("synced subscriptions");
            }
            Op::Refund {
                purchase,
                full,
                late,
            } => {
                let Some(index) = pick(purchase, self.model.purchases.len()) else {
                    return;
                };
                let p = &self.model.purchases[index];
                let left = p.amount - p.refunded_at_provider;
                // Stripe refunds paid charges, not disputed or charged-back ones.
                if !p.fulfilled
                    || left <= 0
                    || matches!(p.dispute, DisputeState::Open | DisputeState::Lost)
                {
                    return;
                }
                let amount = if full { left } else { (left / 2).max(1) };
                self.model.purchases[index].refunded_at_provider += amount;
                let id = format!("re_{}", self.model.reversals.len());
                self.send(index, ReversalKind::Refund, id, amount, late)
                    .await;
            }
            Op::DisputeOpened { purchase, late } => {
                let Some(index) = pick(purchase, self.model.purchases.len()) else {
                    return;
                };
                let p = &self.model.purchases[index];
                if !p.fulfilled
                    || p.dispute != DisputeState::None
                    || p.refunded_at_provider >= p.amount
                {
                    return;
                }
                let amount = p.amount;
                self.model.purchases[index].dispute = DisputeState::Open;
                let id = format!("dp_{index}");
                self.send(index, ReversalKind::Dispute, id, amount, late)
                    .await;
            }
            Op::DisputeWon { purchase, late } => {
                let Some(index) = pick(purchase, self.model.purchases.len()) else {
                    return;
                };
                if self.model.purchases[index].dispute != DisputeState::Open {
                    return;
                }
                self.model.purchases[index].dispute = DisputeState::Won;
                let id = format!("dp_{index}");
                let amount = self.model.purchases[index].amount;
                self.send(index, ReversalKind::DisputeWon, id, amount, late)
                    .await;
            }
            Op::DisputeLost { purchase } => {
                if let Some(index) = pick(purchase, self.model.purchases.len())
                    && self.model.purchases[index].dispute == DisputeState::Open
                {
                    self.model.purchases[index].dispute = DisputeState::Lost;
                }
            }
            Op::DisputeWonFirst { purchase } => {
                let Some(index) = pick(purchase, self.model.purchases.len()) else {
                    return;
                };
                let p = &self.model.purchases[index];
                if !p.fulfilled
                    || p.dispute != DisputeState::None
                    || p.refunded_at_provider >= p.amount
                {
                    return;
                }
                let (id, amount) = (format!("dp_{index}"), p.amount);
                self.model.purchases[index].dispute = DisputeState::Won;
                self.deliver(index, ReversalKind::DisputeWon, id.clone(), amount)
                    .await;
                self.deliver(index, ReversalKind::Dispute, id, amount).await;
            }
            Op::RedeliverReversal { reversal } => {
                let Some(index) = pick(reversal, self.model.reversals.len()) else {
                    return;
                };
                let (purchase, kind, id, amount) = self.model.reversals[index].clone();
                self.deliver(purchase, kind, id, amount).await;
            }
            Op::DeliverLate { event } => {
                let Some(index) = pick(event, self.model.held.len()) else {
                    return;
                };
                let (purchase, kind, id, amount) = self.model.held.remove(index);
                self.deliver(purchase, kind, id, amount).await;
            }
            Op::Subscribe {
                user,
                set,
                events_first,
            } => {
                let index = self.model.subscriptions.len();
                self.model.subscriptions.push(Subscription {
                    user,
                    set,
                    status: None,
                });
                let session = subscription_checkout(index, &self.model.subscriptions[index]);
                if events_first {
                    self.subscription_event(
                        index,
                        SubscriptionStatus::Incomplete,
                        SubscriptionChange::Created,
                    )
                    .await;
                }
                let got = self.ledger.fulfil(&session).await.expect("fulfil");
                assert_eq!(got, Fulfilment::Granted);
                let sub = &mut self.model.subscriptions[index];
                if sub.status.is_none() {
                    sub.status = Some(SubscriptionStatus::Active);
                }
                if events_first {
                    self.subscription_event(
                        index,
                        SubscriptionStatus::Active,
                        SubscriptionChange::Updated,
                    )
                    .await;
                } else {
                    self.subscription_event(
                        index,
                        SubscriptionStatus::Active,
                        SubscriptionChange::Created,
                    )
                    .await;
                }
            }
            Op::SubscriptionEvent {
                subscription,
                status,
                deleted,
            } => {
                let Some(index) = pick(subscription, self.model.subscriptions.len()) else {
                    return;
                };
                let (status, change) = if deleted {
                    (SubscriptionStatus::Canceled, SubscriptionChange::Deleted)
                } else {
                    (
                        SubscriptionStatus::from(STATUSES[status]),
                        SubscriptionChange::Updated,
                    )
                };
                self.subscription_event(index, status, change).await;
            }
            Op::RedeliverSubscriptionEvent { event } => {
                let Some(index) = pick(event, self.model.subscription_events.len()) else {
                    return;
                };
                let (sub, status, change) = self.model.subscription_events[index].clone();
                self.subscription_event(sub, status, change).await;
            }
            Op::Call { user, key } => {
                let expected = self.model.expected(user, key);
                let got = self.admit(user, key).await;
                assert_eq!(
                    Expected::from(&got),
                    expected,
                    "{} calling a tool of {}",
                    USERS[user],
                    KEYS[key]
                );
                if let Decision::Granted(Access::Credit(reservation)) = got {
                    self.model.calls.push((user, key));
                    self.reservations.push(reservation);
                }
            }
            Op::Settle { call, outcome } => {
                let Some(index) = pick(call, self.model.calls.len()) else {
                    return;
                };
                let (user, key) = self.model.calls.remove(index);
                let reservation = self.reservations.remove(index);
                if outcome == 0 {
                    self.ledger
                        .commit(USERS[user], &key_of(key), reservation)
                        .await;
                    let credits = self.model.credits.entry((user, key)).or_default();
                    if *credits > 0 {
                        *credits -= 1;
                    } else {
                        self.model.use_taken_back_credit(user, key);
                    }
                    self.model.runs += 1;
                } else {
                    self.ledger
                        .release(USERS[user], &key_of(key), reservation)
                        .await;
                }
            }
            Op::Reload { user, key } => {
                self.ledger
                    .reload(USERS[user], &key_of(key))
                    .await
                    .expect("reload");
            }
            Op::Restart => {
                let (ledger, store) = self.backend.open().await;
                self.ledger = ledger;
                self.store = store;
                self.model.calls.clear();
                self.reservations.clear();
            }
        }
    }

    async fn deliver_paid(&mut self, index: usize) {
        let session = checkout(index, &self.model.purchases[index], true);
        let got = self.ledger.fulfil(&session).await.expect("fulfil");
        let purchase = &mut self.model.purchases[index];
        if purchase.fulfilled {
            assert_eq!(got, Fulfilment::AlreadyGranted, "a purchase grants once");
            return;
        }
        assert_eq!(got, Fulfilment::Granted);
        purchase.fulfilled = true;
        if let Grant::Credits(n) = purchase.grant {
            let (user, key) = (purchase.user, purchase.key);
            *self.model.credits.entry((user, key)).or_default() += n;
            self.model.bought += n;
        }
    }

    /// The invariants, after every step.
    async fn check(&self, step: usize, op: &Op) {
        let context = format!("after step {step} ({op:?})");
        let mut stored_total = 0;
        for (user, name) in USERS.iter().enumerate() {
            for (key, key_name) in KEYS.iter().enumerate() {
                let stored = self.store.credits(name, key_name).await;
                assert!(stored >= 0, "{context}: negative credits");
                assert_eq!(
                    stored,
                    self.model.credits(user, key),
                    "{context}: credits of {name} for {key_name}"
                );
                stored_total += stored;
            }
        }
        // Every credit bought is run, held or taken back (and not returned): runs, late ones
        // included, never exceed the credits bought minus those taken back.
        assert_eq!(
            self.model.runs,
            self.model.bought - self.model.taken - stored_total,
            "{context}: runs"
        );
        assert!(
            self.model.runs <= self.model.bought - self.model.taken,
            "{context}: runs exceed credits"
        );
        for user in 0..USERS.len() {
            for key in 0..KEYS.len() {
                self.check_decision(user, key, &context).await;
            }
        }
    }

    /// What memory answers is what the store answers after a reload, and is the model's.
    async fn check_decision(&self, user: usize, key: usize, context: &str) {
        let (name, entitlement) = (USERS[user], key_of(key));
        let cached = self.ledger.reserve(name, &entitlement).await;
        if let Decision::Granted(Access::Credit(reservation)) = cached {
            self.ledger.release(name, &entitlement, reservation).await;
        }
        let expected = self.model.expected(user, key);
        if matches!(cached, Decision::Granted(_)) {
            assert_eq!(
                Expected::from(&cached),
                expected,
                "{context}: memory's decision for {name} on {entitlement}"
            );
        }
        let loaded = self.admit(user, key).await;
        if let Decision::Granted(Access::Credit(reservation)) = loaded {
            self.ledger.release(name, &entitlement, reservation).await;
        }
        assert_eq!(
            Expected::from(&loaded),
            expected,
            "{context}: the store's decision for {name} on {entitlement}"
        );
    }
}

fn key_of(index: usize) -> EntitlementKey {
    key(index)
}

fn pick(index: usize, len: usize) -> Option<usize> {
    (len > 0).then(|| index % len)
}

/// Runs `ops` against a fresh database.
fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run_on(
        Backend::Sqlite(dir.path().join("analytics.db")),
        ops,
    ));
}

/// Runs `ops` against the (empty) ledger tables of `backend`.
pub(super) async fn run_on(backend: Backend, ops: &[Op]) {
    let mut harness = Harness::new(backend).await;
    for (step, op) in ops.iter().enumerate() {
        harness.step(op).await;
        harness.check(step, op).await;
    }
}

/// A paid purchase of `credits` credits for `u0` on `price_a`, numbered `index`.
pub(super) fn credits_purchase(credits: i64) -> Purchase {
    Purchase::new(0, 0, Grant::Credits(credits), credits * CREDIT_PRICE)
}

/// One call as the gate runs it, racing others: reserve (reloading when memory does not
/// know), then succeed, or fail and try again up to `failures` times. `true` when it ran and
/// used its credit.
pub(super) async fn racing_call(ledger: Arc<Ledger>, failures: usize) -> bool {
    let key = key(0);
    let mut failed = 0;
    loop {
        match ledger.reserve(USERS[0], &key).await {
            Decision::Granted(Access::Credit(reservation)) => {
                // The tool runs a while: reloads and other calls happen meanwhile.
                tokio::time::sleep(Duration::from_millis(1)).await;
                if failed < failures {
                    failed += 1;
                    ledger.release(USERS[0], &key, reservation).await;
                    continue;
                }
                ledger.commit(USERS[0], &key, reservation).await;
                return true;
            }
            Decision::Granted(other) => panic!("only credits were bought, got {other:?}"),
            Decision::Refused => return false,
            Decision::Unavailable => panic!("the store is reachable"),
            Decision::Unknown => ledger.reload(USERS[0], &key).await.expect("reload"),
        }
    }
}

fn stored_credits(store: &SharedStore) -> i64 {
    store
        .lock()
        .entitlements()
        .get(USERS[0], KEYS[0])
        .expect("read entitlements")
        .map_or(0, |row| row.credits)
}

#[test]
fn concurrent_calls_never_run_two_on_one_credit() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (ledger, store) = open_ledger(&dir.path().join("analytics.db"));
        let ledger = Arc::new(ledger);
        ledger
            .fulfil(&checkout(0, &credits_purchase(20), true))
            .await
            .expect("fulfil");
        ledger.reload(USERS[0], &key(0)).await.expect("reload");

        // 50 calls on 20 credits, all succeeding: exactly 20 run, every credit used once.
        let calls: Vec<_> = (0..50)
            .map(|_| tokio::spawn(racing_call(ledger.clone(), 0)))
            .collect();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reloads = {
            let (ledger, done) = (ledger.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    ledger.reload(USERS[0], &key(0)).await.expect("reload");
                    tokio::task::yield_now().await;
                }
            })
        };
        let mut ran = 0;
        for call in calls {
            ran += i64::from(call.await.expect("call"));
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        reloads.await.expect("reloads");
        assert_eq!(ran, 20, "min(credits, calls) calls run");
        assert_eq!(stored_credits(&store), 0);

        // 100 calls, a third failing twice before succeeding, on 30 credits, while 15 more are
        // bought: each call that ran used one credit, and the store never goes below zero.
        ledger
            .fulfil(&checkout(1, &credits_purchase(30), true))
            .await
            .expect("fulfil");
        let calls: Vec<_> = (0..100)
            .map(|i| tokio::spawn(racing_call(ledger.clone(), if i % 3 == 0 { 2 } else { 0 })))
            .collect();
        let purchase = {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                ledger
                    .fulfil(&checkout(2, &credits_purchase(15), true))
                    .await
                    .expect("fulfil");
            })
        };
        let mut ran = 0;
        for call in calls {
            ran += i64::from(call.await.expect("call"));
        }
        purchase.await.expect("purchase");
        let left = stored_credits(&store);
        assert!(left >= 0, "{left} credits left");
        assert_eq!(ran, 45 - left, "every call that ran used its own credit");
        // Whatever is left is sold again.
        let rest: Vec<_> = (0..60)
            .map(|_| tokio::spawn(racing_call(ledger.clone(), 0)))
            .collect();
        for call in rest {
            ran += i64::from(call.await.expect("call"));
        }
        assert_eq!(ran, 45);
        assert_eq!(stored_credits(&store), 0);
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(&ops);
    }
}

#[test]
fn a_call_released_after_its_credits_were_refunded_does_not_give_a_credit_back() {
    run(&[
        Op::Buy {
            user: 0,
            key: 0,
            grant: Grant::Credits(1),
            delayed: false,
        },
        Op::Call { user: 0, key: 0 },
        Op::Refund {
            purchase: 0,
            full: true,
            late: false,
        },
        // The call fails: its credit is gone, not back.
        Op::Settle {
            call: 0,
            outcome: 1,
        },
        Op::Call { user: 0, key: 0 },
    ]);
}

#[test]
fn a_credit_used_by_a_call_while_its_purchase_was_disputed_is_not_returned_when_the_dispute_is_won()
{
    run(&[
        Op::Buy {
            user: 0,
            key: 0,
            grant: Grant::Credits(1),
            delayed: false,
        },
        Op::Call { user: 0, key: 0 },
        // The dispute takes back the credit the running call reserved.
        Op::DisputeOpened {
            purchase: 0,
            late: false,
        },
        // The call succeeds anyway: it used the credit the dispute took.
        Op::Settle {
            call: 0,
            outcome: 0,
        },
        // Won: nothing unused was taken, so nothing comes back.
        Op::DisputeWon {
            purchase: 0,
            late: false,
        },
        Op::Call { user: 0, key: 0 },
    ]);
}

#[test]
fn a_call_that_ran_after_a_dispute_and_a_refund_took_its_credit_counts_against_the_dispute() {
    run(&[
        Op::Buy {
            user: 0,
            key: 0,
            grant: Grant::Credits(1),
            delayed: false,
        },
        Op::Buy {
            user: 0,
            key: 0,
            grant: Grant::Credits(1),
            delayed: false,
        },
        Op::Call { user: 0, key: 0 },
        Op::Call { user: 0, key: 0 },
        Op::DisputeOpened {
            purchase: 0,
            late: false,
        },
        // Takes the last credit in the store, reserved by a running call.
        Op::Refund {
            purchase: 1,
            full: true,
            late: false,
        },
        Op::Settle {
            call: 0,
            outcome: 0,
        },
        Op::Settle {
            call: 0,
            outcome: 1,
        },
        // The refund is final, the dispute is not: the late run used the disputed credit, so
        // the won dispute returns nothing (one paid credit, one run).
        Op::DisputeWon {
            purchase: 0,
            late: false,
        },
        Op::Call { user: 0, key: 0 },
    ]);
}

#[test]
fn a_dispute_won_after_a_full_refund_arrived_does_not_grant_again() {
    run(&[
        Op::Buy {
            user: 0,
            key: 0,
            grant: Grant::Credits(2),
            delayed: false,
        },
        Op::DisputeOpened {
            purchase: 0,
            late: false,
        },
        // Won at the provider, its event delivered after the refund that followed.
        Op::DisputeWon {
            purchase: 0,
            late: true,
        },
        Op::Refund {
            purchase: 0,
            full: true,
            late: false,
        },
        Op::DeliverLate { event: 0 },
    ]);
}

#[test]
fn refunding_one_of_two_unlimited_purchases_keeps_the_other() {
    run(&[
        Op::Buy {
            user: 0,
            key: 0,
            grant: Grant::Unlimited,
            delayed: false,
        },
        Op::Buy {
            user: 0,
            key: 0,
            grant: Grant::Unlimited,
            delayed: false,
        },
        Op::Refund {
            purchase: 0,
            full: true,
            late: false,
        },
        Op::Call { user: 0, key: 0 },
    ]);
}

/// The Meter's half of "every successful metered call produces exactly one meter event":
/// each usage recorded (from several threads at once, in both durabilities) is one outbox
/// row with its own identifier, delivered once.
#[test]
fn every_recorded_metered_call_is_one_meter_event_delivered_once() {
    use crate::payments::{
        meter::{Meter, MeterDurability},
        now_ms,
        provider::{Provider, local::LocalProvider},
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for durability in [MeterDurability::Queued, MeterDurability::Committed] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("analytics.db");
        let store = SharedStore::new(PaymentStore::open(&path).expect("open the payment store"));
        store
            .lock()
            .customers()
            .insert(USERS[0], "cus_0", now_ms())
            .expect("customer");
        let provider = Provider::Local(LocalProvider::new(HashMap::new()));
        let meter = Meter::start(
            crate::payments::store::PaymentDb::Sqlite(store.clone()),
            provider,
            durability,
        )
        .expect("meter");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let caller = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("runtime");
                    for _ in 0..50 {
                        caller.block_on(meter.record(USERS[0], "metered_tool", "api_calls"));
                    }
                });
            }
        });
        runtime.block_on(meter.flush());
        let db = rusqlite::Connection::open(&path).expect("open the database");
        let outbox: (i64, i64, i64) = db
            .query_row(
                "SELECT count(*), count(DISTINCT identifier), coalesce(sum(state = 'sent'), 0) FROM meter_outbox",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .expect("read the outbox");
        assert_eq!(
            outbox,
            (200, 200, 200),
            "{durability:?}: rows, identifiers, sent"
        );
        let sent: (i64, i64) = db
            .query_row(
                "SELECT count(*), count(DISTINCT reference) FROM payment_events WHERE kind = 'meter_event_sent'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("read payment events");
        assert_eq!(sent, (200, 200), "{durability:?}: one sent event per usage");
        assert_eq!(meter.pending(), 0);
    }
}

/// A refund (or dispute) whose webhook arrives before its purchase's — the completion was
/// delivered late, or found by asking the provider — takes the purchase back as soon as it
/// arrives, once.
#[test]
fn a_refund_delivered_before_its_purchase_takes_it_back_when_the_purchase_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (ledger, store) = open_ledger(&dir.path().join("held.db"));
        let purchase = credits_purchase(3);
        let session = checkout(7, &purchase, true);
        let refund = Reversal {
            kind: ReversalKind::Refund,
            id: "re_7".into(),
            payment_intent: session.payment_intent.clone().expect("intent"),
            amount: purchase.amount,
            currency: "eur".into(),
        };
        ledger.reverse(&refund).await.expect("refund");
        ledger.reverse(&refund).await.expect("redelivered refund");
        assert_eq!(
            ledger.fulfil(&session).await.expect("fulfil"),
            Fulfilment::Granted
        );
        assert_eq!(
            stored_credits(&store),
            0,
            "the refund took the purchase back"
        );
        ledger.reload(USERS[0], &key(0)).await.expect("reload");
        assert_eq!(ledger.reserve(USERS[0], &key(0)).await, Decision::Refused);
        // Applied once: a redelivered completion and refund change nothing.
        assert_eq!(
            ledger.fulfil(&session).await.expect("fulfil again"),
            Fulfilment::AlreadyGranted
        );
        ledger.reverse(&refund).await.expect("refund again");
        assert_eq!(stored_credits(&store), 0);
        let refunds = store
            .lock()
            .events()
            .refunded_total(&session.id)
            .expect("refunds");
        assert_eq!(refunds, purchase.amount, "one refund recorded");
    });
}
