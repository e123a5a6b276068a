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
