//! The ledger on PostgreSQL: the model's sequences, and several replicas (ledgers with
//! replica names of their own, as separate processes have) sharing one database.

use std::{sync::Arc, time::Duration};

use proptest::prelude::*;

use super::{
    Access, Decision, Ledger, LedgerStore, ReservationId, Reversal, ReversalKind,
    SubscriptionChange,
    model_tests::{Backend, USERS, checkout, credits_purchase, key, op, racing_call, run_on},
    pg::{LEDGER_LOCK, PgLedger},
    store::CreditUse,
};
use crate::{
    database::PostgresUrl,
    payments::{
        domain::{PriceSet, SubscriptionStatus},
        provider::SubscriptionInfo,
        store::{PaymentDb, pg::PgPayments},
    },
    postgres::{test_cluster::Cluster, test_relay::Relay},
};

/// A new database of the shared test cluster, its payment tables migrated.
fn database(name: &str) -> PgPayments {
    let url = Cluster::shared().create_database(name);
    PgPayments::open(&PostgresUrl::parse(&url).expect("a PostgreSQL URL")).expect("migrate")
}

/// A replica's ledger without the listener (for tests that need none).
fn replica(pg: &PgPayments, name: &str) -> Arc<Ledger> {
    Arc::new(Ledger::new(
        Arc::new(PgLedger::new(pg.clone(), name.to_owned())),
        Duration::from_secs(3600),
    ))
}

/// One `BIGINT` (or `NULL` as 0) read from the database.
async fn scalar(pg: &PgPayments, query: &str) -> i64 {
    pg.pool
        .get()
        .await
        .expect("a connection")
        .query_one(query, &[])
        .await
        .expect(query)
        .get::<_, Option<i64>>(0)
        .unwrap_or(0)
}

async fn stored_credits(pg: &PgPayments) -> i64 {
    scalar(pg, "SELECT sum(credits)::BIGINT FROM payment_entitlements").await
}

async fn reservations(pg: &PgPayments) -> i64 {
    scalar(pg, "SELECT count(*) FROM payment_reservations").await
}

/// The reservation of a credit granted, or a panic saying what was decided instead.
fn credit(decision: Decision) -> ReservationId {
    match decision {
        Decision::Granted(Access::Credit(reservation)) => reservation,
        other => panic!("expected a credit, got {other:?}"),
    }
}

async fn execute(pg: &PgPayments, sql: &str) {
    pg.pool
        .get()
        .await
        .expect("a connection")
        .batch_execute(sql)
        .await
        .expect(sql);
}

/// Waits (at most 10 s) until the ledger hears the other replicas.
pub(in crate::payments) async fn wait_until_listening(ledger: &Ledger) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ledger.is_listening() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ledger never listened"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_on_postgres_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        static DATABASE: std::sync::OnceLock<PostgresUrl> = std::sync::OnceLock::new();
        let url = DATABASE.get_or_init(|| {
            let url = Cluster::shared().create_database("ledger_model");
            PostgresUrl::parse(&url).expect("a PostgreSQL URL")
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let pg = PgPayments::open(url).expect("migrate");
            execute(&pg, "TRUNCATE payment_customers, payment_checkouts, payment_entitlements, payment_reservations, payment_credits_used, payment_subscriptions, payment_events, payment_reversals_held").await;
            run_on(Backend::Postgres(pg), &ops).await;
        });
    }
}

#[test]
fn replicas_sharing_one_database_never_run_more_calls_than_credits() {
    let pg = database("ledger_replicas");
    runtime().block_on(async {
        let (a, b) = (replica(&pg, "a"), replica(&pg, "b"));
        a.fulfil(&checkout(0, &credits_purchase(20), true))
            .await
            .expect("fulfil");
        for ledger in [&a, &b] {
            ledger.reload(USERS[0], &key(0)).await.expect("reload");
        }
        // 60 calls on 20 credits over two replicas, each of which believes all 20 are free.
        let calls: Vec<_> = (0..60)
            .map(|i| tokio::spawn(racing_call(if i % 2 == 0 { &a } else { &b }.clone(), 0)))
            .collect();
        let mut ran = 0;
        for call in calls {
            ran += i64::from(call.await.expect("call"));
        }
        assert_eq!(ran, 20, "as many calls run as credits were bought");
        assert_eq!(stored_credits(&pg).await, 0);

        // Calls failing twice give their credit back each time; a purchase lands meanwhile.
        a.fulfil(&checkout(1, &credits_purchase(30), true))
            .await
            .expect("fulfil");
        let calls: Vec<_> = (0..90)
            .map(|i| {
                let ledger = if i % 2 == 0 { &a } else { &b }.clone();
                tokio::spawn(racing_call(ledger, if i % 3 == 0 { 2 } else { 0 }))
            })
            .collect();
        let purchase = {
            let b = b.clone();
            tokio::spawn(async move {
                b.fulfil(&checkout(2, &credits_purchase(15), true))
                    .await
                    .expect("fulfil");
            })
        };
        let mut ran = 0;
        for call in calls {
            ran += i64::from(call.await.expect("call"));
        }
        purchase.await.expect("purchase");
        let left = stored_credits(&pg).await;
        assert!(left >= 0, "{left} credits left");
        assert_eq!(ran, 45 - left, "every call that ran used its own credit");
    });
}

#[test]
fn a_dead_replicas_reserved_credit_comes_back_when_its_lease_runs_out() {
    let pg = database("ledger_lease");
    runtime().block_on(async {
        let (a, b) = (replica(&pg, "a"), replica(&pg, "b"));
        a.fulfil(&checkout(0, &credits_purchase(1), true))
            .await
            .expect("fulfil");
        a.reload(USERS[0], &key(0)).await.expect("reload");
        credit(a.reserve(USERS[0], &key(0)).await);
        // Replica a dies with the credit reserved.
        drop(a);
        b.reload(USERS[0], &key(0)).await.expect("reload");
        assert!(
            !matches!(
                b.reserve(USERS[0], &key(0)).await,
                Decision::Granted(Access::Credit(_))
            ),
            "the only credit is reserved by a running call"
        );
        // Its lease runs out (a minute later).
        execute(&pg, "UPDATE payment_reservations SET lease_until_ms = 0").await;
        b.reload(USERS[0], &key(0)).await.expect("reload");
        let reservation = credit(b.reserve(USERS[0], &key(0)).await);
        b.commit(USERS[0], &key(0), reservation).await;
        assert_eq!(stored_credits(&pg).await, 0);
        // The dead replica's row goes with any replica's next lease renewal.
        let client = pg.pool.get().await.expect("a connection");
        PgLedger::new(pg.clone(), "c".into())
            .renew_leases_on(&client)
            .await
            .expect("renew");
        assert_eq!(reservations(&pg).await, 0);
    });
}

#[test]
fn a_credit_is_not_reserved_when_the_database_is_unreachable() {
    let pg = database("ledger_down");
    runtime().block_on(async {
        let a = replica(&pg, "a");
        a.fulfil(&checkout(0, &credits_purchase(2), true))
            .await
            .expect("fulfil");
        a.reload(USERS[0], &key(0)).await.expect("reload");
        pg.pool.close();
        assert_eq!(
            a.reserve(USERS[0], &key(0)).await,
            Decision::Unavailable,
            "no run without the credit taken in the database"
        );
    });
}

/// `user`'s subscription `id` to `key(2)`'s prices, in `status`.
fn subscription(id: &str, user: &str, status: SubscriptionStatus) -> SubscriptionInfo {
    SubscriptionInfo {
        id: id.into(),
        status,
        customer: format!("cus_{user}"),
        metadata: [("mcp_user_id".to_owned(), user.to_owned())].into(),
        price_ids: PriceSet::decode(&key(2).to_string()),
    }
}

fn active_subscription(status: SubscriptionStatus) -> SubscriptionInfo {
    subscription("sub_1", USERS[1], status)
}

#[test]
fn another_replicas_change_reaches_this_replicas_memory_within_a_second() {
    let pg = database("ledger_notify");
    runtime().block_on(async {
        let db = PaymentDb::Postgres(pg.clone());
        let a = Ledger::open(&db, Duration::from_secs(3600)).expect("replica a");
        let b = Ledger::open(&db, Duration::from_secs(3600)).expect("replica b");
        for ledger in [&a, &b] {
            wait_until_listening(ledger).await;
        }
        let (user, key) = (USERS[1], key(2));
        a.apply_subscription(
            &active_subscription(SubscriptionStatus::Active),
            SubscriptionChange::Created,
        )
        .await
        .expect("subscribe");
        b.reload(user, &key).await.expect("reload");
        assert_eq!(
            b.reserve(user, &key).await,
            Decision::Granted(Access::Subscription)
        );

        // Replica a learns the subscription ended (its webhook landed there).
        a.apply_subscription(
            &active_subscription(SubscriptionStatus::Canceled),
            SubscriptionChange::Deleted,
        )
        .await
        .expect("cancel");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            if b.reserve(user, &key).await == Decision::Unknown {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "replica b still grants a cancelled subscription from memory"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        b.reload(user, &key).await.expect("reload");
        assert_eq!(
            b.reserve(user, &key).await,
            Decision::Unknown,
            "no access: the provider is asked"
        );
    });
}

#[test]
fn a_subscribers_entitled_call_needs_no_database() {
    let pg = database("ledger_memory");
    runtime().block_on(async {
        let a = replica(&pg, "a");
        let (user, key) = (USERS[1], key(2));
        a.apply_subscription(
            &active_subscription(SubscriptionStatus::Active),
            SubscriptionChange::Created,
        )
        .await
        .expect("subscribe");
        a.reload(user, &key).await.expect("reload");
        pg.pool.close();
        for _ in 0..3 {
            assert_eq!(
                a.reserve(user, &key).await,
                Decision::Granted(Access::Subscription),
                "decided from memory"
            );
        }
    });
}

#[test]
fn a_replica_that_lost_its_listening_connection_forgets_what_it_may_have_missed() {
    let pg = database("ledger_relisten");
    runtime().block_on(async {
        let db = PaymentDb::Postgres(pg.clone());
        let a = replica(&pg, "a");
        let b = Ledger::open(&db, Duration::from_secs(3600)).expect("replica b");
        wait_until_listening(&b).await;
        let (user, key) = (USERS[1], key(2));
        a.apply_subscription(
            &active_subscription(SubscriptionStatus::Active),
            SubscriptionChange::Created,
        )
        .await
        .expect("subscribe");
        b.reload(user, &key).await.expect("reload");
        assert_eq!(
            b.reserve(user, &key).await,
            Decision::Granted(Access::Subscription)
        );
        // The listening connection dies (a database restart, a network cut); the subscription
        // ends while nobody listens.
        execute(
            &pg,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{}'",
                super::listen::APPLICATION_NAME
            ),
        )
        .await;
        a.apply_subscription(
            &active_subscription(SubscriptionStatus::Canceled),
            SubscriptionChange::Deleted,
        )
        .await
        .expect("cancel");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while b.reserve(user, &key).await != Decision::Unknown {
            assert!(
                tokio::time::Instant::now() < deadline,
                "replica b still grants from memory what it may have missed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        wait_until_listening(&b).await;
    });
}

#[test]
fn a_call_ending_while_its_replica_renews_leases_still_ends_its_reservation() {
    let pg = database("ledger_renewing");
    runtime().block_on(async {
        let a = replica(&pg, "a");
        a.fulfil(&checkout(0, &credits_purchase(2), true))
            .await
            .expect("fulfil");
        a.reload(USERS[0], &key(0)).await.expect("reload");
        let used = credit(a.reserve(USERS[0], &key(0)).await);
        let released = credit(a.reserve(USERS[0], &key(0)).await);
        // The lease renewal holds every reservation row of the replica while both calls end:
        // one succeeds (its credit is used), one fails (its credit comes back).
        let mut renewal = pg.pool.get().await.expect("a connection");
        let renewing = renewal.transaction().await.expect("begin");
        renewing
            .execute(
                "UPDATE payment_reservations SET lease_until_ms = lease_until_ms + 1 WHERE replica = 'a'",
                &[],
            )
            .await
            .expect("renew");
        let ending = {
            let a = a.clone();
            tokio::spawn(async move {
                a.commit(USERS[0], &key(0), used).await;
                a.release(USERS[0], &key(0), released).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        renewing.commit().await.expect("renewed");
        ending.await.expect("the calls ended");
        assert_eq!(
            reservations(&pg).await,
            0,
            "no reservation outlives its call"
        );
        assert_eq!(stored_credits(&pg).await, 1, "one used, one given back");
        assert!(
            matches!(
                a.reserve(USERS[0], &key(0)).await,
                Decision::Granted(Access::Credit(_))
            ),
            "the credit given back can be sold again"
        );
    });
}

/// Waits (at most `within`) until `done` holds, else panics with `what`.
async fn eventually(within: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_replica_whose_listening_connection_stops_answering_forgets_what_it_holds_in_memory() {
    let direct = database("ledger_silent");
    runtime().block_on(async {
        let cluster = Cluster::shared();
        let relay = Relay::start(([127, 0, 0, 1], cluster.port()).into()).await;
        let relayed = PostgresUrl::parse(&format!(
            "postgres://postgres@{}/ledger_silent",
            relay.addr()
        ))
        .expect("a PostgreSQL URL");
        let a = replica(&direct, "a");
        let b = Ledger::open(
            &PaymentDb::Postgres(PgPayments::open(&relayed).expect("through the relay")),
            Duration::from_secs(3600),
        )
        .expect("replica b");
        wait_until_listening(&b).await;
        let (user, key) = (USERS[1], key(2));
        a.apply_subscription(
            &active_subscription(SubscriptionStatus::Active),
            SubscriptionChange::Created,
        )
        .await
        .expect("subscribe");
        b.reload(user, &key).await.expect("reload");
        assert_eq!(
            b.reserve(user, &key).await,
            Decision::Granted(Access::Subscription)
        );

        // The database goes silent for replica b (a network cut, a frozen server): no error,
        // no announcement, nothing at all; a cancellation would not reach b.
        relay.silence();
        a.apply_subscription(
            &active_subscription(SubscriptionStatus::Canceled),
            SubscriptionChange::Deleted,
        )
        .await
        .expect("cancel");
        eventually(
            Duration::from_secs(60),
            "replica b still grants from memory while its database is silent",
            async || b.reserve(user, &key).await == Decision::Unknown,
        )
        .await;
        // A reservation may find the database silent before the listener's health check does.
        eventually(
            Duration::from_secs(60),
            "replica b still believes it is listening to a silent database",
            async || !b.is_listening(),
        )
        .await;

        // The database answers again: b listens again.
        relay.resume();
        wait_until_listening(&b).await;
    });
}

#[test]
fn a_call_cancelled_while_its_credit_is_being_reserved_gives_the_credit_back() {
    let pg = database("ledger_cancelled");
    runtime().block_on(async {
        let a = replica(&pg, "a");
        a.fulfil(&checkout(0, &credits_purchase(1), true))
            .await
            .expect("fulfil");
        a.reload(USERS[0], &key(0)).await.expect("reload");
        // Another replica reserving the user's credits holds their row for a moment…
        let mut other = pg.pool.get().await.expect("a connection");
        let reserving = other.transaction().await.expect("begin");
        reserving
            .execute(
                "SELECT credits FROM payment_entitlements WHERE user_id = $1 FOR UPDATE",
                &[&USERS[0]],
            )
            .await
            .expect("lock");
        // … and the call waiting for it is cancelled (its client went away, a timeout).
        assert!(
            tokio::time::timeout(Duration::from_millis(200), a.reserve(USERS[0], &key(0)))
                .await
                .is_err(),
            "the reservation waits for the row"
        );
        reserving.commit().await.expect("commit");
        eventually(
            Duration::from_secs(10),
            "the cancelled call's reservation is left in the store",
            async || reservations(&pg).await == 0,
        )
        .await;
        a.reload(USERS[0], &key(0)).await.expect("reload");
        let reservation = credit(a.reserve(USERS[0], &key(0)).await);
        a.commit(USERS[0], &key(0), reservation).await;
        assert_eq!(stored_credits(&pg).await, 0, "the credit was sold once");
    });
}

#[test]
fn a_credit_whose_use_fails_at_first_is_used_once_when_the_database_answers_again() {
    let pg = database("ledger_retry");
    runtime().block_on(async {
        // Statements waiting for a lock fail after 100 ms (on connections made from now on).
        execute(
            &pg,
            "ALTER DATABASE ledger_retry SET lock_timeout = '100ms'",
        )
        .await;
        let pg = PgPayments::open(&pg.url).expect("a new pool");
        let a = replica(&pg, "a");
        a.fulfil(&checkout(0, &credits_purchase(2), true))
            .await
            .expect("fulfil");
        a.reload(USERS[0], &key(0)).await.expect("reload");
        let reservation = credit(a.reserve(USERS[0], &key(0)).await);
        // The tool ran; the use of its credit finds the row locked for a while and fails.
        let mut other = pg.pool.get().await.expect("a connection");
        let holding = other.transaction().await.expect("begin");
        holding
            .execute(
                "SELECT credits FROM payment_entitlements WHERE user_id = $1 FOR UPDATE",
                &[&USERS[0]],
            )
            .await
            .expect("lock");
        let committing = {
            let a = a.clone();
            tokio::spawn(async move { a.commit(USERS[0], &key(0), reservation).await })
        };
        tokio::time::sleep(Duration::from_millis(250)).await;
        holding.commit().await.expect("commit");
        committing.await.expect("the use ended");
        assert_eq!(stored_credits(&pg).await, 1, "the credit was used, once");
        assert_eq!(reservations(&pg).await, 0);
    });
}

#[test]
fn using_a_reservations_credit_again_uses_nothing_more() {
    let pg = database("ledger_used_twice");
    runtime().block_on(async {
        let (store, a) = (PgLedger::new(pg.clone(), "a".into()), replica(&pg, "a"));
        a.fulfil(&checkout(0, &credits_purchase(3), true))
            .await
            .expect("fulfil");
        let reservation = ReservationId::new();
        assert!(
            store
                .reserve_credit(USERS[0], &key(0), reservation)
                .await
                .expect("reserve")
        );
        // The first use committed, but its answer was lost (the connection broke): it runs again.
        assert_eq!(
            store
                .consume_credit(USERS[0], &key(0), reservation)
                .await
                .expect("use"),
            CreditUse::Used
        );
        assert_eq!(
            store
                .consume_credit(USERS[0], &key(0), reservation)
                .await
                .expect("use again"),
            CreditUse::AlreadyUsed
        );
        assert_eq!(stored_credits(&pg).await, 2, "one credit used");
    });
}

#[test]
fn a_credit_use_charged_to_a_refund_and_picked_as_a_deadlocks_victim_runs_again() {
    let pg = database("ledger_deadlock");
    runtime().block_on(async {
        let (store, a) = (PgLedger::new(pg.clone(), "a".into()), replica(&pg, "a"));
        let purchase = credits_purchase(2);
        let session = checkout(0, &purchase, true);
        a.fulfil(&session).await.expect("fulfil");
        let reservation = ReservationId::new();
        assert!(
            store
                .reserve_credit(USERS[0], &key(0), reservation)
                .await
                .expect("reserve")
        );
        // Refunded while the call runs: its credit is taken back, so its use is charged to
        // the refund (the ledger's lock, then the purchase's row).
        a.reverse(&Reversal {
            kind: ReversalKind::Refund,
            id: "re_0".into(),
            payment_intent: session.payment_intent.clone().expect("intent"),
            amount: purchase.amount,
            currency: "eur".into(),
        })
        .await
        .expect("refund");
        assert_eq!(stored_credits(&pg).await, 0);
        // Another client of the database locks in the other order: the purchase's row…
        let mut client = pg.pool.get().await.expect("a connection");
        let other = client.transaction().await.expect("begin");
        other
            .execute(
                "SELECT 1 FROM payment_checkouts WHERE session_id = $1 FOR UPDATE",
                &[&session.id],
            )
            .await
            .expect("lock the purchase");
        let using = tokio::spawn(async move {
            store
                .consume_credit(USERS[0], &key(0), reservation)
                .await
                .map_err(|error| error.to_string())
        });
        eventually(
            Duration::from_secs(10),
            "the use never waited for the purchase's row",
            async || {
                scalar(
                    &pg,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE payment_checkouts%'",
                )
                .await
                    == 1
            },
        )
        .await;
        // … then the ledger's lock, which the use holds: a deadlock, and PostgreSQL aborts the
        // use (it waited first).
        other
            .execute("SELECT pg_advisory_xact_lock($1)", &[&LEDGER_LOCK])
            .await
            .expect("the ledger's lock, once the use gave way");
        other.commit().await.expect("commit");
        assert_eq!(
            using.await.expect("the use ended"),
            Ok(CreditUse::TakenBack),
            "the use ran again"
        );
        assert_eq!(
            scalar(&pg, "SELECT taken_credits FROM payment_checkouts").await,
            1,
            "the refund counts one credit fewer: the call used it"
        );
        assert_eq!(reservations(&pg).await, 0);
    });
}

#[test]
fn a_credit_used_on_one_replica_leaves_what_the_others_remember_of_that_user() {
    let pg = database("ledger_quiet_uses");
    runtime().block_on(async {
        let db = PaymentDb::Postgres(pg.clone());
        let a = Ledger::open(&db, Duration::from_secs(3600)).expect("replica a");
        // USERS[0] subscribes to one tool and buys credits for another; USERS[2] subscribes.
        let (user, other) = (USERS[0], USERS[2]);
        for (id, who) in [("sub_0", user), ("sub_2", other)] {
            a.apply_subscription(
                &subscription(id, who, SubscriptionStatus::Active),
                SubscriptionChange::Created,
            )
            .await
            .expect("subscribe");
        }
        a.fulfil(&checkout(0, &credits_purchase(3), true))
            .await
            .expect("fulfil");
        // Replica b starts after those changes (so hears none of them) and loads both users.
        let b = Ledger::open(&db, Duration::from_secs(3600)).expect("replica b");
        wait_until_listening(&b).await;
        for who in [user, other] {
            b.reload(who, &key(2)).await.expect("reload");
            assert_eq!(
                b.reserve(who, &key(2)).await,
                Decision::Granted(Access::Subscription)
            );
        }

        // USERS[0] uses a credit on replica a; then USERS[2]'s subscription ends there.
        a.reload(user, &key(0)).await.expect("reload");
        let reservation = credit(a.reserve(user, &key(0)).await);
        a.commit(user, &key(0), reservation).await;
        a.apply_subscription(
            &subscription("sub_2", other, SubscriptionStatus::Canceled),
            SubscriptionChange::Deleted,
        )
        .await
        .expect("cancel");
        // Once b heard the cancellation, it heard everything a announced before it.
        eventually(
            Duration::from_secs(1),
            "replica b did not hear the cancellation within a second",
            async || b.reserve(other, &key(2)).await == Decision::Unknown,
        )
        .await;
        assert_eq!(
            b.reserve(user, &key(2)).await,
            Decision::Granted(Access::Subscription),
            "the subscriber's next call on b is still decided from memory"
        );
        // And b still sells only the credits left.
        b.reload(user, &key(0)).await.expect("reload");
        for _ in 0..2 {
            let reservation = credit(b.reserve(user, &key(0)).await);
            b.commit(user, &key(0), reservation).await;
        }
        assert!(!matches!(
            b.reserve(user, &key(0)).await,
            Decision::Granted(Access::Credit(_))
        ));
    });
}
