//! The transitions in SQL against their model, with two evaluators on one database: each
//! transition is made (and so notified) by exactly one of them.

use std::{path::Path, time::Duration};

use proptest::prelude::*;

use super::{
    ErrorRate, Percent, Rule,
    evaluate::Observation,
    state::{Status, Transition, apply, transition},
};

fn database(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("alerts.db");
    crate::store::SqliteStore::open(&path).unwrap();
    path
}

fn connection(path: &Path) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.busy_timeout(Duration::from_secs(10)).unwrap();
    connection
}

fn rule() -> Rule {
    Rule::ErrorRate(ErrorRate::new(Percent::new(5.0), Duration::from_secs(900)))
}

fn seen(breaching: bool) -> Observation {
    Observation {
        subject: "demo/divide".into(),
        server: "demo".into(),
        tool: Some("divide".into()),
        session: None,
        value: if breaching { 42.0 } else { 1.0 },
        breaching,
        sentence: "error rate of `divide`".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whichever evaluator sees each observation, the transitions made are the model's.
    #[test]
    fn two_evaluators_make_exactly_the_transitions_of_the_model(
        steps in proptest::collection::vec((any::<bool>(), any::<bool>()), 1..24)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = database(dir.path());
        let evaluators = [connection(&path), connection(&path)];
        let mut model: Option<Status> = None;
        for (step, (second, breaching)) in steps.into_iter().enumerate() {
            let expected = transition(model, breaching);
            model = match expected {
                Transition::Fire => Some(Status::Firing),
                Transition::Resolve => Some(Status::Ok),
                Transition::Stay => model,
            };
            let made = apply(&evaluators[usize::from(second)], &rule(), &[seen(breaching)], step as i64).unwrap();
            let made: Vec<Transition> = made.into_iter().map(|(_, made)| made).collect();
            let wanted: Vec<Transition> = [expected].into_iter().filter(|t| *t != Transition::Stay).collect();
            prop_assert_eq!(made, wanted);
        }
    }
}

#[test]
fn of_two_evaluators_racing_on_one_database_exactly_one_fires_and_one_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path());
    let race = |breaching: bool| {
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let connection = connection(&path);
                    (0..50)
                        .map(|now| {
                            apply(&connection, &rule(), &[seen(breaching)], now)
                                .unwrap()
                                .len()
                        })
                        .sum::<usize>()
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|racer| racer.join().unwrap())
            .sum::<usize>()
    };
    assert_eq!(race(true), 1);
    assert_eq!(race(false), 1);
}

/// The same race on PostgreSQL (the backend of many replicas), each evaluator with a store
/// of its own on one database of the throwaway cluster; and of the two, exactly one claims
/// each notification.
#[cfg(feature = "postgres")]
#[test]
fn of_two_evaluators_racing_on_one_postgres_database_exactly_one_fires_resolves_and_claims() {
    use crate::{
        Database,
        postgres::test_cluster::Cluster,
        store::{PgStore, source::Source},
    };

    let Database::Postgres(url) = Database::from(Cluster::shared().create_database("alerts_race"))
    else {
        unreachable!("a postgres URL")
    };
    PgStore::open(&url).unwrap();
    let race = |work: fn(&PgStore, i64) -> usize| {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (url, barrier) = (url.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let store = PgStore::open(&url).unwrap();
                    barrier.wait();
                    (0..50).map(|now| work(&store, now)).sum::<usize>()
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|racer| racer.join().unwrap())
            .sum::<usize>()
    };
    assert_eq!(
        race(|store, now| apply(store, &rule(), &[seen(true)], now).unwrap().len()),
        1
    );
    // The firing notification is pending: claimed by one of them for the lease, then again
    // once the lease ran out with nothing delivered.
    let claims = |store: &PgStore, _: i64| {
        super::state::claim(store, &[rule().id()], 1, 1_000)
            .unwrap()
            .len()
    };
    assert_eq!(race(claims), 1);
    let store = PgStore::open(&url).unwrap();
    let later = 1_000 + super::state::LEASE_MS;
    assert_eq!(
        super::state::claim(&store, &[rule().id()], 1, later)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        race(
            |store, now| apply(store, &rule(), &[seen(false)], 2_000 + now)
                .unwrap()
                .len()
        ),
        1
    );
    let rows = store
        .rows("SELECT status, value FROM alert_state", &[], |row| {
            Ok((row.string(0)?, row.float(1)?))
        })
        .unwrap();
    assert_eq!(rows, [("ok".to_owned(), 1.0)]);
}
