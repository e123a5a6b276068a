//! Rollups derived from stored rows. The per-minute rollup (tool, status) is written in the same
//! transaction as its rows. The hourly rollup (tool, status, error type, with distinct-user and
//! -session sketches), the hourly per-user counts and the users' latest details (email, name) are
//! gathered in memory and written at most once a second (and on every flush), so a busy writer
//! does not upsert them per batch.

use std::{
    collections::HashMap as StdHashMap,
    hash::{BuildHasherDefault, Hasher},
    time::{Duration, Instant},
};

use rusqlite::{Transaction, params};

use super::{LatencyHistogram, schema, sketch::DistinctSketch};
use crate::ToolCallEvent;

/// Maps keyed by short strings and timestamps, rebuilt per batch: FNV-1a hashes them several
/// times faster than the default SipHash, and nothing here is attacker-chosen at that scale.
type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<Fnv>>;

#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
/// How long hourly aggregates may wait in memory.
const HOURLY_DELAY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Totals {
    calls: i64,
    sum_us: i64,
    max_us: i64,
    latency: LatencyHistogram,
}

impl Totals {
    fn add(&mut self, event: &ToolCallEvent) {
        let duration = i64::try_from(event.duration_us).unwrap_or(i64::MAX);
        self.calls += 1;
        self.sum_us = self.sum_us.saturating_add(duration);
        self.max_us = self.max_us.max(duration);
        self.latency.record(event.duration_us);
    }
}

#[derive(Default)]
struct HourTotals {
    totals: Totals,
    users: DistinctSketch,
    sessions: DistinctSketch,
}

/// `(hour, server, tool, status, error type)`.
type HourKey = (i64, String, String, &'static str, String);

/// Hourly aggregates not yet written.
#[derive(Default)]
pub(super) struct Pending {
    hours: HashMap<HourKey, HourTotals>,
    users: HashMap<(i64, String), (i64, i64)>,
    /// The latest `(email, name)` per user, for calls that carried either.
    details: HashMap<String, (Option<String>, Option<String>)>,
    oldest: Option<Instant>,
}

fn floor(ts_ms: i64, unit: i64) -> i64 {
    ts_ms - ts_ms.rem_euclid(unit)
}

/// Adds `events` to the per-minute rollup.
pub(super) fn write_minutes(
    transaction: &Transaction<'_>,
    events: &[&ToolCallEvent],
) -> rusqlite::Result<()> {
    let mut minutes: HashMap<(i64, &str, &str, &str), Totals> = HashMap::default();
    for event in events.iter().copied() {
        let key = (
            floor(event.ts_ms, MINUTE_MS),
            event.server_name.as_str(),
            event.tool.as_str(),
            event.status.as_str(),
        );
        minutes.entry(key).or_default().add(event);
    }
    let mut upsert = transaction.prepare_cached(schema::UPSERT_ROLLUP)?;
    for ((minute, server, tool, status), totals) in minutes {
        upsert.execute(params![
            minute,
            server,
            tool,
            status,
            totals.calls,
            totals.sum_us,
            totals.max_us,
            totals.latency.encode()
        ])?;
    }
    Ok(())
}

/// Keeps the latest email and name of `user`; a detail the call lacks keeps the one known.
fn remember(
    details: &mut HashMap<String, (Option<String>, Option<String>)>,
    user: &str,
    email: Option<&String>,
    name: Option<&String>,
) {
    if email.is_none() && name.is_none() {
        return;
    }
    if let Some((known_email, known_name)) = details.get_mut(user) {
        for (known, seen) in [(known_email, email), (known_name, name)] {
            if seen.is_some() && known.as_ref() != seen {
                *known = seen.cloned();
            }
        }
        return;
    }
    details.insert(user.to_owned(), (email.cloned(), name.cloned()));
}

impl Pending {
    /// Gathers `events` into the hourly aggregates.
    pub(super) fn add(&mut self, events: &[&ToolCallEvent]) {
        if events.is_empty() {
            return;
        }
        self.oldest.get_or_insert_with(Instant::now);
        // Aggregate with borrowed keys first, then move into the owned maps once per key.
        let mut hours: HashMap<(i64, &str, &str, &'static str, &str), HourTotals> =
            HashMap::default();
        let mut users: HashMap<(i64, &str), (i64, i64)> = HashMap::default();
        for event in events.iter().copied() {
            let hour = floor(event.ts_ms, HOUR_MS);
            let key = (
                hour,
                event.server_name.as_str(),
                event.tool.as_str(),
                event.status.as_str(),
                event.error_type.as_deref().unwrap_or(""),
            );
            let totals = hours.entry(key).or_default();
            totals.totals.add(event);
            if let Some(user) = &event.user_id {
                totals.users.insert(user);
                let counts = users.entry((hour, user)).or_default();
                counts.0 += 1;
                counts.1 += i64::from(event.status.is_error());
                remember(
                    &mut self.details,
                    user,
                    event.user_email.as_ref(),
                    event.user_name.as_ref(),
                );
            }
            if let Some(session) = &event.session_id {
                totals.sessions.insert(session);
            }
        }
        for ((hour, server, tool, status, error_type), batch) in hours {
            let key = (
                hour,
                server.to_owned(),
                tool.to_owned(),
                status,
                error_type.to_owned(),
            );
            let pending = self.hours.entry(key).or_default();
            pending.totals.calls += batch.totals.calls;
            pending.totals.sum_us = pending.totals.sum_us.saturating_add(batch.totals.sum_us);
            pending.totals.max_us = pending.totals.max_us.max(batch.totals.max_us);
            pending.totals.latency.merge(&batch.totals.latency);
            pending.users.merge(&batch.users);
            pending.sessions.merge(&batch.sessions);
        }
        for ((hour, user), (calls, errors)) in users {
            let counts = self.users.entry((hour, user.to_owned())).or_default();
            counts.0 += calls;
            counts.1 += errors;
        }
    }

    /// Whether the aggregates have waited long enough to be written.
    pub(super) fn is_due(&self) -> bool {
        self.oldest
            .is_some_and(|oldest| oldest.elapsed() >= HOURLY_DELAY)
    }

    /// Writes (and forgets) everything gathered.
    pub(super) fn write(&mut self, transaction: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut upsert = transaction.prepare_cached(schema::UPSERT_HOURLY)?;
        for ((hour, server, tool, status, error_type), hourly) in self.hours.drain() {
            let HourTotals {
                totals,
                users,
                sessions,
            } = hourly;
            upsert.execute(params![
                hour,
                server,
                tool,
                status,
                error_type,
                totals.calls,
                totals.sum_us,
                totals.max_us,
                totals.latency.encode(),
                users.encode(),
                sessions.encode(),
            ])?;
        }
        let mut upsert = transaction.prepare_cached(schema::UPSERT_USER)?;
        for ((hour, user), (calls, errors)) in self.users.drain() {
            upsert.execute(params![hour, user, calls, errors])?;
        }
        let mut upsert = transaction.prepare_cached(schema::UPSERT_USER_DETAILS)?;
        for (user, (email, name)) in self.details.drain() {
            upsert.execute(params![user, email, name])?;
        }
        self.oldest = None;
        Ok(())
    }
}
