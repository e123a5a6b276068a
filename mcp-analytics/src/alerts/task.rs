//! The evaluator: a thread of its own (tool calls never wait for it, nor for a webhook) that
//! every interval observes each rule, applies the transitions and delivers what is pending.

use std::{
    fmt::Display,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use super::{
    Alerts, Rule,
    deliver::{Notification, Poster, rfc3339},
    evaluate, human,
    state::{self, Status, Transition},
};
use crate::{Database, store::source::Source};

/// The running evaluator of an [`Analytics`](crate::Analytics) handle; stops (at its next
/// wake-up, without being waited for) when dropped.
pub(crate) struct Evaluator {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl Evaluator {
    /// Starts evaluating `alerts` on `database` (already migrated), through a connection of
    /// its own.
    #[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
    pub(crate) fn start(alerts: Alerts, database: &Database) -> Result<Self, crate::Error> {
        match database {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(path) => Self::spawn(alerts, open_sqlite(path)?),
            #[cfg(not(feature = "sqlite"))]
            Database::Sqlite(_) => Err(crate::Error::Database {
                database: database.clone(),
                reason: crate::database::NO_SQLITE_FEATURE.into(),
            }),
            #[cfg(feature = "postgres")]
            Database::Postgres(url) => Self::spawn(alerts, crate::store::PgStore::open(url)?),
            #[cfg(not(feature = "postgres"))]
            Database::Postgres(_) => Err(crate::Error::Database {
                database: database.clone(),
                reason: crate::database::NO_POSTGRES_FEATURE.into(),
            }),
        }
    }

    fn spawn<C: Connection>(alerts: Alerts, connection: C) -> Result<Self, crate::Error> {
        let mut engine = Engine { connection, alerts };
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name("mcp-analytics-alerts".into())
            .spawn(move || {
                // Made here: the blocking client may not be made or dropped in async code.
                let poster = Poster::new();
                while !stopped.load(Ordering::Acquire) {
                    engine.run(&poster, now_ms());
                    std::thread::park_timeout(engine.alerts.interval);
                }
            })
            .map_err(crate::Error::Writer)?;
        Ok(Self {
            stop,
            thread: handle.thread().clone(),
        })
    }
}

impl Drop for Evaluator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

use crate::clock::now_ms;

#[cfg(feature = "sqlite")]
fn open_sqlite(path: &std::path::Path) -> Result<rusqlite::Connection, crate::Error> {
    let error = |source| crate::Error::Store {
        path: path.to_owned(),
        source,
    };
    let connection = rusqlite::Connection::open(path).map_err(error)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(error)?;
    Ok(connection)
}

/// An evaluator's database connection: SQLite's, or a [`PgStore`](crate::store::PgStore)
/// (reconnected before an evaluation when its connection broke).
trait Connection: Source<Error: Display> + Send + 'static {
    /// Opens the connection again when it broke; a failure is left for the next evaluation.
    fn repair(&mut self) {}
}

#[cfg(feature = "sqlite")]
impl Connection for rusqlite::Connection {}

#[cfg(feature = "postgres")]
impl Connection for crate::store::PgStore {
    fn repair(&mut self) {
        if self.is_closed()
            && let Err(error) = self.reconnect()
        {
            tracing::warn!(
                "mcp-analytics: alerts cannot reach PostgreSQL: {}",
                crate::store::describe_pg_error(&error)
            );
        }
    }
}

/// One evaluator's connection, rules and webhooks.
struct Engine<C> {
    connection: C,
    alerts: Alerts,
}

impl<C: Connection> Engine<C> {
    /// Evaluates every rule at `now_ms` and delivers what is pending. A failing query or
    /// webhook is logged; the next evaluation tries again.
    fn run(&mut self, poster: &Poster, now_ms: i64) {
        self.connection.repair();
        for rule in &self.alerts.rules {
            if let Err(error) = self.evaluate(rule, now_ms) {
                tracing::warn!(
                    "mcp-analytics: alert rule {} not evaluated: {error}",
                    rule.id()
                );
            }
        }
        if let Err(error) = self.deliver(poster, now_ms) {
            tracing::warn!("mcp-analytics: alert notifications not delivered: {error}");
        }
    }

    fn evaluate(&self, rule: &Rule, now_ms: i64) -> Result<(), C::Error> {
        let observations = evaluate::observe(&self.connection, rule, now_ms)?;
        for (subject, transition) in state::apply(&self.connection, rule, &observations, now_ms)? {
            let word = if transition == Transition::Fire {
                "firing"
            } else {
                "resolved"
            };
            tracing::info!("mcp-analytics: alert {} {word} for {subject}", rule.id());
        }
        Ok(())
    }

    fn deliver(&self, poster: &Poster, now_ms: i64) -> Result<(), C::Error> {
        let ids: Vec<String> = self.alerts.rules.iter().map(Rule::id).collect();
        let all = (1i64 << self.alerts.webhooks.len().min(62)) - 1;
        for claimed in state::claim(&self.connection, &ids, all, now_ms)? {
            let Some(rule) = self
                .alerts
                .rules
                .iter()
                .find(|rule| rule.id() == claimed.rule)
            else {
                continue;
            };
            let notification = notification(rule, &claimed);
            let mut accepted = 0;
            let mut failure = None;
            for (bit, webhook) in self.alerts.webhooks.iter().enumerate().take(62) {
                if claimed.delivered & (1 << bit) != 0 {
                    continue;
                }
                match poster.post(webhook, &notification) {
                    Ok(()) => accepted |= 1 << bit,
                    Err(error) => {
                        tracing::warn!(
                            "mcp-analytics: alert notification not delivered ({error}); retried at the next evaluation"
                        );
                        failure = Some(error);
                    }
                }
            }
            state::delivered(
                &self.connection,
                &claimed,
                accepted,
                failure.as_deref(),
                now_ms,
            )?;
        }
        Ok(())
    }
}

/// What is posted for `claimed`, a transition of `rule`.
fn notification(rule: &Rule, claimed: &state::Claimed) -> Notification {
    let (status, headline) = match claimed.status {
        Status::Firing => ("firing", "🔥 FIRING"),
        Status::Ok => ("resolved", "✅ RESOLVED"),
    };
    Notification {
        text: format!("{headline}: {}", claimed.summary),
        rule: claimed.rule.clone(),
        kind: rule.kind().as_str(),
        status,
        server: claimed.server.clone(),
        tool: claimed.tool.clone(),
        session: claimed.session.clone(),
        value: claimed.value,
        threshold: rule.threshold(),
        window: human(rule.window()),
        started_at: rfc3339(claimed.started_ms),
    }
}
