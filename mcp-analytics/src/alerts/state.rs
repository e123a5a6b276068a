//! `alert_state`: each rule's status per subject, changed only by compare-and-set statements so
//! that of several evaluators (replicas) on one database exactly one makes each transition, and
//! the notification it owes is claimed by exactly one of them.
//!
//! A transition leaves the row *pending* (`delivered` is not yet every webhook's bit); the
//! delivery step claims pending rows for a lease, posts them to the webhooks whose bit is
//! missing and records the outcome, so a failed delivery is retried at the next evaluation.
//!
//! The statements are the same on SQLite and PostgreSQL (over [`Source`]); each runs on its
//! own (autocommitted), and PostgreSQL re-checks an `UPDATE`'s or upsert's `WHERE` on the row
//! a concurrent transaction just changed, so the compare-and-set holds there too.

use super::{Rule, evaluate::Observation};
use crate::store::source::{Param, Source};

/// A subject's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    Firing,
}

/// What an evaluation does to a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// ok (or never seen) → firing: notify.
    Fire,
    /// firing → ok: notify once.
    Resolve,
    /// No change: silent.
    #[cfg(test)]
    Stay,
}

/// The state machine the SQL below implements (its model in the tests).
#[cfg(test)]
pub(crate) fn transition(current: Option<Status>, breaching: bool) -> Transition {
    match (current, breaching) {
        (None | Some(Status::Ok), true) => Transition::Fire,
        (Some(Status::Firing), false) => Transition::Resolve,
        _ => Transition::Stay,
    }
}

/// How long a claimed notification is left to its evaluator before another may retry it.
pub(super) const LEASE_MS: i64 = 120_000;

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Ok => "ok",
        }
    }
}

/// Fires a subject not firing yet (changes one row, or none when it is firing already).
const FIRE: &str = "INSERT INTO alert_state (rule, subject, kind, server_name, tool, session_id, status, since_ms, started_ms, value, summary, evaluated_ms, delivered, claimed_until_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'firing', ?7, ?7, ?8, ?9, ?7, 0, 0) \
     ON CONFLICT (rule, subject) DO UPDATE SET status = 'firing', since_ms = excluded.since_ms, started_ms = excluded.started_ms, value = excluded.value, summary = excluded.summary, evaluated_ms = excluded.evaluated_ms, delivered = 0, claimed_until_ms = 0, attempts = 0, last_error = NULL \
     WHERE alert_state.status = 'ok'";

/// A firing subject still breaching shows its latest value; any seen subject its last
/// evaluation.
const SEEN: &str = "UPDATE alert_state SET evaluated_ms = ?5, value = CASE WHEN status = 'firing' THEN ?3 ELSE value END, summary = CASE WHEN status = 'firing' THEN ?4 ELSE summary END WHERE rule = ?1 AND subject = ?2";

/// Resolves a firing subject (changes one row, or none when another evaluator did).
const RESOLVE: &str = "UPDATE alert_state SET status = 'ok', since_ms = ?3, value = ?4, summary = ?5, evaluated_ms = ?3, delivered = 0, claimed_until_ms = 0, attempts = 0, last_error = NULL \
     WHERE rule = ?1 AND subject = ?2 AND status = 'firing'";

/// Applies `rule`'s `observations` at `now_ms`: breaching subjects fire (if not firing yet),
/// firing subjects no longer breaching resolve. Returns the transitions this evaluator made.
pub(crate) fn apply<S: Source>(
    db: &S,
    rule: &Rule,
    observations: &[Observation],
    now_ms: i64,
) -> Result<Vec<(String, Transition)>, S::Error> {
    let id = rule.id();
    let mut made = Vec::new();
    for observation in observations {
        let fired = observation.breaching
            && db.execute(
                FIRE,
                &[
                    Param::Text(Some(&id)),
                    Param::Text(Some(&observation.subject)),
                    Param::Text(Some(rule.kind().as_str())),
                    Param::Text(Some(&observation.server)),
                    Param::Text(observation.tool.as_deref()),
                    Param::Text(observation.session.as_deref()),
                    Param::Int(now_ms),
                    Param::Float(observation.value),
                    Param::Text(Some(&observation.sentence)),
                ],
            )? == 1;
        if fired {
            made.push((observation.subject.clone(), Transition::Fire));
        } else {
            db.execute(
                SEEN,
                &[
                    Param::Text(Some(&id)),
                    Param::Text(Some(&observation.subject)),
                    Param::Float(observation.value),
                    Param::Text(Some(&observation.sentence)),
                    Param::Int(now_ms),
                ],
            )?;
        }
    }
    let firing = db.rows(
        "SELECT subject FROM alert_state WHERE rule = ?1 AND status = 'firing'",
        &[Param::Text(Some(&id))],
        |row| row.string(0),
    )?;
    for subject in firing {
        let seen = observations.iter().find(|seen| seen.subject == subject);
        if seen.is_some_and(|seen| seen.breaching) {
            continue;
        }
        let (value, sentence) = seen.map_or((0.0, rule.kind().gone().to_owned()), |seen| {
            (seen.value, seen.sentence.clone())
        });
        let resolved = db.execute(
            RESOLVE,
            &[
                Param::Text(Some(&id)),
                Param::Text(Some(&subject)),
                Param::Int(now_ms),
                Param::Float(value),
                Param::Text(Some(&sentence)),
            ],
        )?;
        if resolved == 1 {
            made.push((subject, Transition::Resolve));
        }
    }
    Ok(made)
}

/// A notification claimed for delivery.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub rule: String,
    pub subject: String,
    pub server: String,
    pub tool: Option<String>,
    pub session: Option<String>,
    pub status: Status,
    pub started_ms: i64,
    pub value: f64,
    pub summary: String,
    /// The webhooks (bits) that accepted it already.
    pub delivered: i64,
}

/// Claims the pending notifications of `rules` (ids) not claimed by another evaluator, for
/// [`LEASE_MS`]; `all` is the bit mask of every webhook.
pub(crate) fn claim<S: Source>(
    db: &S,
    rules: &[String],
    all: i64,
    now_ms: i64,
) -> Result<Vec<Claimed>, S::Error> {
    let candidates = db.rows(
        "SELECT rule, subject, server_name, tool, session_id, status, started_ms, value, summary, delivered FROM alert_state WHERE delivered <> ?1 AND claimed_until_ms <= ?2",
        &[Param::Int(all), Param::Int(now_ms)],
        |row| {
            Ok(Claimed {
                rule: row.string(0)?,
                subject: row.string(1)?,
                server: row.string(2)?,
                tool: row.text(3)?,
                session: row.text(4)?,
                status: if row.string(5)? == "firing" {
                    Status::Firing
                } else {
                    Status::Ok
                },
                started_ms: row.int(6)?,
                value: row.float(7)?,
                summary: row.string(8)?,
                delivered: row.int(9)?,
            })
        },
    )?;
    let mut claimed = Vec::new();
    for candidate in candidates {
        if !rules.contains(&candidate.rule) {
            continue;
        }
        let taken = db.execute(
            "UPDATE alert_state SET claimed_until_ms = ?3 WHERE rule = ?1 AND subject = ?2 AND delivered = ?4 AND status = ?5 AND claimed_until_ms <= ?6",
            &[
                Param::Text(Some(&candidate.rule)),
                Param::Text(Some(&candidate.subject)),
                Param::Int(now_ms + LEASE_MS),
                Param::Int(candidate.delivered),
                Param::Text(Some(candidate.status.as_str())),
                Param::Int(now_ms),
            ],
        )?;
        if taken == 1 {
            claimed.push(candidate);
        }
    }
    Ok(claimed)
}

/// Records the outcome of delivering `claimed`: the webhooks that accepted it now, and the
/// last error (the claim is released so the next evaluation retries the others). A row that
/// changed meanwhile (a newer transition) is left alone.
pub(crate) fn delivered<S: Source>(
    db: &S,
    claimed: &Claimed,
    accepted: i64,
    error: Option<&str>,
    now_ms: i64,
) -> Result<(), S::Error> {
    db.execute(
        "UPDATE alert_state SET delivered = ?3, claimed_until_ms = 0, notified_ms = CASE WHEN ?3 <> ?4 THEN ?5 ELSE notified_ms END, attempts = attempts + 1, last_error = ?6 \
         WHERE rule = ?1 AND subject = ?2 AND status = ?7 AND delivered = ?4",
        &[
            Param::Text(Some(&claimed.rule)),
            Param::Text(Some(&claimed.subject)),
            Param::Int(claimed.delivered | accepted),
            Param::Int(claimed.delivered),
            Param::Int(now_ms),
            Param::Text(error),
            Param::Text(Some(claimed.status.as_str())),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_to_firing_notifies_firing_stays_silent_and_firing_to_ok_resolves() {
        assert_eq!(transition(None, true), Transition::Fire);
        assert_eq!(transition(Some(Status::Ok), true), Transition::Fire);
        assert_eq!(transition(Some(Status::Firing), true), Transition::Stay);
        assert_eq!(transition(Some(Status::Firing), false), Transition::Resolve);
        assert_eq!(transition(Some(Status::Ok), false), Transition::Stay);
        assert_eq!(transition(None, false), Transition::Stay);
    }
}
