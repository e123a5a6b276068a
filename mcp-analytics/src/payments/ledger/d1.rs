//! [`D1Ledger`]: the ledger's storage in a D1 database, which many Worker isolates share and
//! which has no interactive transactions: every operation is one statement or one batch whose
//! writes carry their own conditions.
//!
//! A credit is taken from the store when a call reserves it (`credits = credits - 1 … AND
//! credits > 0`, one statement, so two isolates never sell one credit), and put back only if
//! the call fails. The isolate remembers which reservations it took, so giving one back that
//! never reached the store, or twice, gives nothing; a reservation whose isolate ends before
//! its call did stays used (the buyer loses that credit: the gate fails closed).

use std::{
    collections::HashSet,
    sync::{Mutex, MutexGuard},
};

use super::{
    rules,
    store::{
        CreditUse, Fulfilment, Holding, LedgerStore, Purchase, ReservationId, Reversal,
        StoreFuture, SubscriptionChange,
    },
};
use crate::{
    d1::{Statement, Value},
    payments::{
        domain::{EntitlementKey, Granted, PriceSet, SubscriptionStatus},
        provider::SubscriptionInfo,
        store::{
            EntitlementRow, EventRow, PaymentEventKind, StoreError, SubscriptionRow,
            d1::{self, D1Payments},
        },
    },
};

/// The ledger's tables in D1.
pub(crate) struct D1Ledger {
    db: D1Payments,
    /// The reservations this isolate took from the store and has not ended.
    taken: Mutex<HashSet<ReservationId>>,
}

impl D1Ledger {
    pub(crate) fn new(db: D1Payments) -> Self {
        Self {
            db,
            taken: Mutex::default(),
        }
    }

    fn taken(&self) -> MutexGuard<'_, HashSet<ReservationId>> {
        self.taken.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn user_key(user: &str, key: &EntitlementKey) -> Vec<Value> {
    vec![user.into(), key.as_str().into()]
}

/// Whether the checkout `?{index}` is stored and not fulfilled (the condition of every grant).
fn unfulfilled(index: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM payment_checkouts WHERE session_id = ?{index} AND fulfilled = 0)"
    )
}

impl LedgerStore for D1Ledger {
    fn holding<'a>(&'a self, user: &'a str, key: &'a EntitlementKey) -> StoreFuture<'a, Holding> {
        Box::pin(async move {
            let outcomes = self
                .db
                .batch(&[
                    Statement::new(
                        "SELECT credits, unlimited, checked_ms FROM payment_entitlements WHERE user_id = ?1 AND price_key = ?2",
                        user_key(user, key),
                    ),
                    Statement::new(
                        "SELECT subscription_id, user_id, tool, status, prices, updated_ms FROM payment_subscriptions WHERE user_id = ?1",
                        vec![user.into()],
                    ),
                ])
                .await?;
            let row = outcomes
                .first()
                .and_then(|outcome| outcome.rows.first())
                .map(|row| EntitlementRow {
                    credits: row.first().and_then(d1::int).unwrap_or(0),
                    unlimited: row.get(1).and_then(d1::int).unwrap_or(0) != 0,
                    checked_ms: row.get(2).and_then(d1::int).unwrap_or(0),
                })
                .unwrap_or_default();
            let subscriptions = outcomes
                .get(1)
                .map(|outcome| {
                    outcome
                        .rows
                        .iter()
                        .filter_map(|row| {
                            Some(SubscriptionRow {
                                id: row.first().and_then(d1::text)?,
                                user_id: row.get(1).and_then(d1::text),
                                tool: row.get(2).and_then(d1::text),
                                status: SubscriptionStatus::from(
                                    row.get(3).and_then(d1::text)?.as_str(),
                                ),
                                prices: PriceSet::decode(
                                    &row.get(4).and_then(d1::text).unwrap_or_default(),
                                ),
                                updated_ms: row.get(5).and_then(d1::int).unwrap_or(0),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(rules::holding(row, subscriptions, key))
        })
    }

    /// The credit left the store when it was reserved: using it ends the reservation.
    fn consume_credit<'a>(
        &'a self,
        _user: &'a str,
        _key: &'a EntitlementKey,
        reservation: ReservationId,
    ) -> StoreFuture<'a, CreditUse> {
        self.taken().remove(&reservation);
        Box::pin(async { Ok(CreditUse::Used) })
    }

    fn shared(&self) -> bool {
        true
    }

    fn reserve_credit<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        reservation: ReservationId,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let changed = self
                .db
                .execute(Statement::new(
                    "UPDATE payment_entitlements SET credits = credits - 1 WHERE user_id = ?1 AND price_key = ?2 AND credits > 0",
                    user_key(user, key),
                ))
                .await?;
            if changed == 1 {
                self.taken().insert(reservation);
            }
            Ok(changed == 1)
        })
    }

    fn release_credit<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        reservation: ReservationId,
    ) -> StoreFuture<'a, ()> {
        let took = self.taken().remove(&reservation);
        Box::pin(async move {
            if took {
                self.db
                    .execute(Statement::new(
                        "UPDATE payment_entitlements SET credits = credits + 1 WHERE user_id = ?1 AND price_key = ?2",
                        user_key(user, key),
                    ))
                    .await?;
            }
            Ok(())
        })
    }

    /// One batch: the checkout and customer recorded, and — only while the checkout is not
    /// fulfilled — what it bought granted and `checkout_completed` recorded, the checkout
    /// marked fulfilled last (its change says whether this batch granted).
    fn fulfil<'a>(
        &'a self,
        purchase: &'a Purchase<'a>,
        now_ms: i64,
    ) -> StoreFuture<'a, Fulfilment> {
        Box::pin(async move {
            let session = purchase.session;
            if session.is_pending() {
                return Err(StoreError::NotOnD1("a delayed payment method"));
            }
            let (user, tool, key) = (purchase.user, purchase.tool, purchase.key.as_str());
            let mut batch = vec![d1::insert_checkout(
                session,
                user,
                tool,
                &purchase.key,
                now_ms,
                "DO NOTHING",
            )];
            if let Some(customer) = &session.customer {
                batch.push(d1::insert_customer(user, customer, now_ms));
            }
            if !session.is_paid() {
                self.db.batch(&batch).await?;
                return Ok(Fulfilment::NotPaid);
            }
            let id: Value = session.id.as_str().into();
            batch.push(match purchase.granted {
                Granted::Subscription => Statement::new(
                    format!(
                        "INSERT INTO payment_subscriptions (subscription_id, user_id, tool, status, updated_ms, prices) SELECT ?1, ?2, ?3, 'active', ?4, ?5 WHERE ?1 <> '' AND {}
                         ON CONFLICT (subscription_id) DO UPDATE SET user_id = coalesce(user_id, excluded.user_id), tool = coalesce(tool, excluded.tool), status = CASE WHEN status = 'incomplete' THEN 'active' ELSE status END, updated_ms = excluded.updated_ms, prices = coalesce(prices, excluded.prices)",
                        unfulfilled(6)
                    ),
                    vec![
                        session.subscription.as_deref().unwrap_or_default().into(),
                        user.into(),
                        tool.into(),
                        Value::Int(now_ms),
                        key.into(),
                        id.clone(),
                    ],
                ),
                Granted::Unlimited | Granted::Credits(_) => {
                    let (credits, unlimited) = match purchase.granted {
                        Granted::Credits(credits) => (credits, 0),
                        _ => (0, 1),
                    };
                    Statement::new(
                        format!(
                            "INSERT INTO payment_entitlements (user_id, price_key, credits, unlimited, checked_ms) SELECT ?1, ?2, ?3, ?4, ?5 WHERE {}
                             ON CONFLICT (user_id, price_key) DO UPDATE SET credits = credits + excluded.credits, unlimited = unlimited OR excluded.unlimited",
                            unfulfilled(6)
                        ),
                        vec![
                            user.into(),
                            key.into(),
                            Value::Int(credits),
                            Value::Int(unlimited),
                            Value::Int(now_ms),
                            id.clone(),
                        ],
                    )
                }
            });
            // Subscription revenue is counted from paid invoices; one-time revenue here.
            let one_time = purchase.granted != Granted::Subscription;
            batch.push(d1::record_event(
                now_ms,
                PaymentEventKind::CheckoutCompleted,
                &EventRow {
                    user_id: Some(user),
                    tool: Some(tool),
                    amount: session.amount_total.filter(|_| one_time),
                    currency: session.currency.as_deref().filter(|_| one_time),
                    reference: Some(&session.id),
                    detail: Some(session.mode.as_str()),
                },
                &unfulfilled(9),
                vec![id.clone()],
            ));
            batch.push(Statement::new(
                "UPDATE payment_checkouts SET fulfilled = 1, status = 'complete', payment_status = 'paid', payment_intent = ?2, granted = ?3 WHERE session_id = ?1 AND fulfilled = 0",
                vec![
                    id,
                    Value::from(session.payment_intent.as_deref()),
                    purchase.granted.encode().as_str().into(),
                ],
            ));
            let outcomes = self.db.batch(&batch).await?;
            Ok(match outcomes.last() {
                Some(fulfilled) if fulfilled.changes == 1 => Fulfilment::Granted,
                _ => Fulfilment::AlreadyGranted,
            })
        })
    }

    fn payment_failed<'a>(
        &'a self,
        _purchase: &'a Purchase<'a>,
        _now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async { Err(StoreError::NotOnD1("a delayed payment method")) })
    }

    fn reverse<'a>(
        &'a self,
        _reversal: &'a Reversal,
        _now_ms: i64,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(async { Err(StoreError::NotOnD1("a refund or dispute")) })
    }

    /// The local test provider's new subscription: its checkout's fulfilment stored it.
    fn apply_subscription<'a>(
        &'a self,
        subscription: &'a SubscriptionInfo,
        change: SubscriptionChange,
        _now_ms: i64,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            if change != SubscriptionChange::Created {
                return Err(StoreError::NotOnD1("a subscription's change"));
            }
            let rows = self
                .db
                .rows(Statement::new(
                    "SELECT user_id FROM payment_subscriptions WHERE subscription_id = ?1",
                    vec![subscription.id.as_str().into()],
                ))
                .await?;
            Ok(rows.first().and_then(|row| row.first()).and_then(d1::text))
        })
    }

    fn sync_subscriptions<'a>(
        &'a self,
        _user: &'a str,
        _prices: &'a PriceSet,
        _listed: &'a [SubscriptionInfo],
        _now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async { Err(StoreError::NotOnD1("a subscription's state")) })
    }

    fn touch<'a>(
        &'a self,
        user: &'a str,
        key: &'a EntitlementKey,
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut params = user_key(user, key);
            params.push(Value::Int(now_ms));
            self.db
                .execute(Statement::new(
                    "INSERT INTO payment_entitlements (user_id, price_key, checked_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id, price_key) DO UPDATE SET checked_ms = excluded.checked_ms",
                    params,
                ))
                .await?;
            Ok(())
        })
    }
}
