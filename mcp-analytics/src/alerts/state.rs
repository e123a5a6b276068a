//! `alert_state`: each rule's status per subject, changed only by compare-and-set statements so
//! that of several evaluators (replicas) on one database exactly one makes each transition, and
//! the notification it owes is claimed by exactly one of them.
//!
//! A transition leaves the row *pending* (`delivered` is not yet every webhook's bit); the
//! delivery step claims pending rows for a lease, posts them to the webhooks whose bit is
//! missing and records the outcome, so a failed delivery is retried at the next evaluation.

use rusqlite::{Connection, params};

use super::{Rule, evaluate::Observation};

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

/// Applies `rule`'s `observations` at `now_ms`: breaching subjects fire (if not firing yet),
/// firing subjects no longer breaching resolve. Returns the transitions this evaluator made.
pub(crate) fn apply(
    connection: &Connection,
    rule: &Rule,
    observations: &[Observation],
    now_ms: i64,
) -> rusqlite::Result<Vec<(String, Transition)>> {
    let id = rule.id();
    let mut made = Vec::new();
    let mut fire = connection.prepare_cached(
        "INSERT INTO alert_state (rule, subject, kind, server_name, tool, session_id, status, since_ms, started_ms, value, summary, evaluated_ms, delivered, claimed_until_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'firing', ?7, ?7, ?8, ?9, ?7, 0, 0) \
         ON CONFLICT (rule, subject) DO UPDATE SET status = 'firing', since_ms = excluded.since_ms, started_ms = excluded.started_ms, value = excluded.value, summary = excluded.summary, evaluated_ms = excluded.evaluated_ms, delivered = 0, claimed_until_ms = 0, attempts = 0, last_error = NULL \
         WHERE alert_state.status = 'ok'",
    )?;
    // A firing subject still breaching shows its latest value; any seen subject its last
    // evaluation.
    let mut seen = connection.prepare_cached(
        "UPDATE alert_state SET evaluated_ms = ?5, value = CASE WHEN status = 'firing' THEN ?3 ELSE value END, summary = CASE WHEN status = 'firing' THEN ?4 ELSE summary END WHERE rule = ?1 AND subject = ?2",
    )?;
    for observation in observations {
        let fired = observation.breaching
            && fire.execute(params![
                id,
                observation.subject,
                rule.kind().as_str(),
                observation.server,
                observation.tool,
                observation.session,
                now_ms,
                observation.value,
                observation.sentence,
            ])? == 1;
        if fired {
            made.push((observation.subject.clone(), Transition::Fire));
        } else {
            seen.execute(params![
                id,
                observation.subject,
                observation.value,
                observation.sentence,
                now_ms
            ])?;
        }
    }
    let firing: Vec<String> = connection
        .prepare_cached("SELECT subject FROM alert_state WHERE rule = ?1 AND status = 'firing'")?
        .query_map([&id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut resolve = connection.prepare_cached(
        "UPDATE alert_state SET status = 'ok', since_ms = ?3, value = ?4, summary = ?5, evaluated_ms = ?3, delivered = 0, claimed_until_ms = 0, attempts = 0, last_error = NULL \
         WHERE rule = ?1 AND subject = ?2 AND status = 'firing'",
    )?;
    for subject in firing {
        let seen = observations.iter().find(|seen| seen.subject == subject);
        if seen.is_some_and(|seen| seen.breaching) {
            continue;
        }
        let (value, sentence) = seen.map_or((0.0, rule.kind().gone().to_owned()), |seen| {
            (seen.value, seen.sentence.clone())
        });
        if resolve.execute(params![id, subject, now_ms, value, sentence])? == 1 {
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
pub(crate) fn claim(
    connection: &Connection,
    rules: &[String],
    all: i64,
    now_ms: i64,
) -> rusqlite::Result<Vec<Claimed>> {
    let mut due = connection.prepare_cached(
        "SELECT rule, subject, server_name, tool, session_id, status, started_ms, value, summary, delivered FROM alert_state WHERE delivered <> ?1 AND claimed_until_ms <= ?2",
    )?;
    let candidates: Vec<Claimed> = due
        .query_map(params![all, now_ms], |row| {
            Ok(Claimed {
                rule: row.get(0)?,
                subject: row.get(1)?,
                server: row.get(2)?,
                tool: row.get(3)?,
                session: row.get(4)?,
                status: if row.get::<_, String>(5)? == "firing" {
                    Status::Firing
                } else {
                    Status::Ok
                },
                started_ms: row.get(6)?,
                value: row.get(7)?,
                summary: row.get(8)?,
                delivered: row.get(9)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut take = connection.prepare_cached(
        "UPDATE alert_state SET claimed_until_ms = ?3 WHERE rule = ?1 AND subject = ?2 AND delivered = ?4 AND status = ?5 AND claimed_until_ms <= ?6",
    )?;
    let mut claimed = Vec::new();
    for candidate in candidates {
        if !rules.contains(&candidate.rule) {
            continue;
        }
        let status = match candidate.status {
            Status::Firing => "firing",
            Status::Ok => "ok",
        };
        if take.execute(params![
            candidate.rule,
            candidate.subject,
            now_ms + LEASE_MS,
            candidate.delivered,
            status,
            now_ms
        ])? == 1
        {
            claimed.push(candidate);
        }
    }
    Ok(claimed)
}

/// Records the outcome of delivering `claimed`: the webhooks that accepted it now, and the
/// last error (the claim is released so the next evaluation retries the others). A row that
/// changed meanwhile (a newer transition) is left alone.
pub(crate) fn delivered(
    connection: &Connection,
    claimed: &Claimed,
    accepted: i64,
    error: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let status = match claimed.status {
        Status::Firing => "firing",
        Status::Ok => "ok",
    };
    connection
        .prepare_cached(
            "UPDATE alert_state SET delivered = ?3, claimed_until_ms = 0, notified_ms = CASE WHEN ?3 <> ?4 THEN ?5 ELSE notified_ms END, attempts = attempts + 1, last_error = ?6 \
             WHERE rule = ?1 AND subject = ?2 AND status = ?7 AND delivered = ?4",
        )?
        .execute(params![
            claimed.rule,
            claimed.subject,
            claimed.delivered | accepted,
            claimed.delivered,
            now_ms,
            error,
            status,
        ])?;
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
