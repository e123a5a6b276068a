//! The D1 ledger on real SQLite (the D1 tests' executor: no custom functions, JavaScript
//! numbers), several isolates' ledgers sharing one database.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::future::join_all;

use super::{Access, Decision, Fulfilment, Ledger, LedgerStore, ReservationId, d1::D1Ledger};
use crate::{
    d1::{Statement, Value},
    payments::{
        domain::{CheckoutStatus, EntitlementKey, Granted, PaymentStatus},
        pricing::CheckoutMode,
        provider::CheckoutInfo,
        store::d1::D1Payments,
    },
};

/// An isolate's ledger over `db`.
fn isolate(db: &D1Payments) -> Ledger {
    Ledger::new(
        Arc::new(D1Ledger::new(db.clone())),
        Duration::from_secs(3600),
    )
}

const KEY: &str = "price_image";

/// A paid test checkout of user `u` granting `credits`.
fn paid(id: &str, credits: i64) -> CheckoutInfo {
    CheckoutInfo {
        id: id.into(),
        url: None,
        status: CheckoutStatus::Complete,
        payment_status: PaymentStatus::Paid,
        mode: CheckoutMode::Payment,
        customer: Some("cus_local_1".into()),
        subscription: None,
        client_reference_id: Some("u".into()),
        metadata: HashMap::from([
            ("mcp_user_id".to_owned(), "u".to_owned()),
            ("mcp_price_key".to_owned(), KEY.to_owned()),
            ("mcp_tool".to_owned(), "generate_image".to_owned()),
            ("mcp_grant".to_owned(), Granted::Credits(credits).encode()),
        ]),
        amount_total: Some(1000),
        currency: Some("usd".into()),
        expires_at: 4_000_000_000,
        payment_intent: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

async fn scalar(db: &D1Payments, sql: &str) -> i64 {
    let rows = db
        .rows(Statement::new(sql, Vec::new()))
        .await
        .expect("read");
    match rows.first().and_then(|row| row.first()) {
        Some(Value::Int(value)) => *value,
        other => panic!("{sql}: {other:?}"),
    }
}

#[test]
fn calls_in_many_isolates_never_use_more_credits_than_were_bought() {
    runtime().block_on(async {
        let db = D1Payments::on_sqlite();
        let isolates: Vec<Ledger> = (0..5).map(|_| isolate(&db)).collect();
        let key = EntitlementKey::from_stored(KEY);
        assert_eq!(
            isolates[0].fulfil(&paid("cs_1", 3)).await.expect("fulfil"),
            Fulfilment::Granted
        );
        // Every isolate's memory says three credits are left.
        for ledger in &isolates {
            ledger.reload("u", &key).await.expect("load");
        }
        let calls = isolates
            .iter()
            .flat_map(|ledger| [ledger, ledger])
            .map(|ledger| async {
                let decision = ledger.reserve("u", &key).await;
                if let Decision::Granted(Access::Credit(reservation)) = decision {
                    ledger.commit("u", &key, reservation).await;
                    true
                } else {
                    false
                }
            });
        let granted = join_all(calls).await.into_iter().filter(|ran| *ran).count();
        assert_eq!(granted, 3, "ten calls on five isolates, three credits");
        assert_eq!(
            scalar(&db, "SELECT credits FROM payment_entitlements").await,
            0
        );
    });
}

#[test]
fn a_purchase_applied_by_two_isolates_grants_once() {
    runtime().block_on(async {
        let db = D1Payments::on_sqlite();
        let (first, second) = (isolate(&db), isolate(&db));
        let session = paid("cs_1", 1);
        let both = join_all([first.fulfil(&session), second.fulfil(&session)]).await;
        let mut outcomes: Vec<Fulfilment> = both.into_iter().map(|f| f.expect("fulfil")).collect();
        outcomes.sort_by_key(|outcome| *outcome == Fulfilment::AlreadyGranted);
        assert_eq!(outcomes, [Fulfilment::Granted, Fulfilment::AlreadyGranted]);
        assert_eq!(
            scalar(&db, "SELECT credits FROM payment_entitlements").await,
            1
        );
        assert_eq!(
            scalar(
                &db,
                "SELECT count(*) FROM payment_events WHERE kind = 'checkout_completed'"
            )
            .await,
            1
        );
        assert_eq!(
            scalar(
                &db,
                "SELECT count(*) FROM payment_customers WHERE customer_id = 'cus_local_1'"
            )
            .await,
            1
        );
    });
}

#[test]
fn a_reservation_is_given_back_once_and_one_never_taken_gives_nothing() {
    runtime().block_on(async {
        let db = D1Payments::on_sqlite();
        let store = D1Ledger::new(db.clone());
        isolate(&db).fulfil(&paid("cs_1", 1)).await.expect("fulfil");
        let key = EntitlementKey::from_stored(KEY);
        let credits = || scalar(&db, "SELECT credits FROM payment_entitlements");
        let taken = ReservationId::new();
        assert!(
            store
                .reserve_credit("u", &key, taken)
                .await
                .expect("reserve")
        );
        assert!(
            !store
                .reserve_credit("u", &key, ReservationId::new())
                .await
                .expect("reserve"),
            "one credit, reserved"
        );
        assert_eq!(credits().await, 0);
        store
            .release_credit("u", &key, taken)
            .await
            .expect("release");
        store
            .release_credit("u", &key, taken)
            .await
            .expect("release again");
        store
            .release_credit("u", &key, ReservationId::new())
            .await
            .expect("release of a reservation never taken");
        assert_eq!(credits().await, 1);
    });
}
