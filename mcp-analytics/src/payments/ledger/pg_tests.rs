//! The ledger on PostgreSQL: the model's sequences, and several replicas (ledgers with
//! replica names of their own, as separate processes have) sharing one database.

use std::{sync::Arc, time::Duration};

use proptest::prelude::*;

use super::{
    Access, Decision, Ledger, SubscriptionChange,
    model_tests::{Backend, USERS, checkout, credits_purchase, key, op, racing_call, run_on},
    pg::PgLedger,
};
use crate::{
    database::PostgresUrl,
    payments::{
        domain::{PriceSet, SubscriptionStatus},
        provider::SubscriptionInfo,
        store::{PaymentDb, pg::PgPayments},
    },
    postgres::test_cluster::Cluster,
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

async fn stored_credits(pg: &PgPayments) -> i64 {
    pg.pool
        .get()
        .await
        .expect("a connection")
        .query_one(
            "SELECT coalesce(sum(credits), 0)::BIGINT FROM payment_entitlements",
            &[],
        )
        .await
        .expect("credits")
        .get(0)
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
            execute(&pg, "TRUNCATE payment_customers, payment_checkouts, payment_entitlements, payment_reservations, payment_subscriptions, payment_events, payment_reversals_held").await;
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
        assert_eq!(
            a.reserve(USERS[0], &key(0)).await,
            Decision::Granted(Access::Credit)
        );
        // Replica a dies with the credit reserved.
        drop(a);
        b.reload(USERS[0], &key(0)).await.expect("reload");
        assert_ne!(
            b.reserve(USERS[0], &key(0)).await,
            Decision::Granted(Access::Credit),
            "the only credit is reserved by a running call"
        );
        // Its lease runs out (a minute later).
        execute(&pg, "UPDATE payment_reservations SET lease_until_ms = 0").await;
        b.reload(USERS[0], &key(0)).await.expect("reload");
        assert_eq!(
            b.reserve(USERS[0], &key(0)).await,
            Decision::Granted(Access::Credit),
            "the dead replica's credit is free again"
        );
        b.commit(USERS[0], &key(0)).await;
        assert_eq!(stored_credits(&pg).await, 0);
        let reservations: i64 = pg
            .pool
            .get()
            .await
            .expect("a connection")
            .query_one("SELECT count(*) FROM payment_reservations", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(reservations, 0);
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

fn active_subscription(status: SubscriptionStatus) -> SubscriptionInfo {
    SubscriptionInfo {
        id: "sub_1".into(),
        status,
        customer: "cus_1".into(),
        metadata: [("mcp_user_id".to_owned(), USERS[1].to_owned())].into(),
        price_ids: PriceSet::decode(&key(2).to_string()),
    }
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
        for _ in 0..2 {
            assert_eq!(
                a.reserve(USERS[0], &key(0)).await,
                Decision::Granted(Access::Credit)
            );
        }
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
                a.commit(USERS[0], &key(0)).await;
                a.release(USERS[0], &key(0)).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        renewing.commit().await.expect("renewed");
        ending.await.expect("the calls ended");
        let reservations: i64 = renewal
            .query_one("SELECT count(*) FROM payment_reservations", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(reservations, 0, "no reservation outlives its call");
        assert_eq!(stored_credits(&pg).await, 1, "one used, one given back");
        assert_eq!(
            a.reserve(USERS[0], &key(0)).await,
            Decision::Granted(Access::Credit),
            "the credit given back can be sold again"
        );
    });
}
