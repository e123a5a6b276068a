//! Rollups derived from stored rows. The per-minute and quarter-hour rollups (tool, status) are
//! written in the same transaction as their rows. The hourly rollup (tool, status, error type, with distinct-user and
//! -session sketches), the hourly one per client and status (with a session sketch; tools only when unknown), the hourly per-user counts and the users' latest details (email, name) are
//! gathered in memory and written once they have waited [`HOURLY_DELAY`] (by the next batch or the
//! writer's timer) and on every flush, so a busy writer does not upsert them per batch. The hours
//! they cover are listed in `rollup_dirty` meanwhile (with the rows), so a process killed before
//! writing them leaves a note for the next start to [`rebuild`] those hours from their rows.

use crate::clock::Stopwatch;
use std::{
    collections::HashMap as StdHashMap,
    hash::{BuildHasherDefault, Hasher},
    time::Duration,
};

#[cfg(feature = "sqlite")]
use rusqlite::{Transaction, params};

#[cfg(feature = "sqlite")]
use super::rollup::{MINUTE, QUARTER};
use super::{LatencyHistogram, client_names::RolledClient, rollup::Grain, sketch::DistinctSketch};
#[cfg(feature = "sqlite")]
use crate::schema;
use crate::{Status, ToolCallEvent};

/// Maps keyed by short strings and timestamps, rebuilt per batch: FNV-1a hashes them several
/// times faster than the default SipHash, and nothing here is attacker-chosen at that scale.
pub(crate) type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<Fnv>>;

#[derive(Default)]
pub(crate) struct Fnv(u64);

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

pub(super) const MINUTE_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// How long hourly aggregates may wait in memory.
pub(super) const HOURLY_DELAY: Duration = Duration::from_millis(500);

/// Calls, summed and longest duration, and latencies of one rollup row.
#[derive(Default)]
pub(crate) struct Totals {
    pub calls: i64,
    pub sum_us: i64,
    pub max_us: i64,
    pub latency: LatencyHistogram,
}

impl Totals {
    fn add(&mut self, event: &ToolCallEvent) {
        self.record(event.duration_us);
    }

    /// Counts one call that took `duration_us`.
    pub(super) fn record(&mut self, duration_us: u64) {
        let duration = i64::try_from(duration_us).unwrap_or(i64::MAX);
        self.calls += 1;
        self.sum_us = self.sum_us.saturating_add(duration);
        self.max_us = self.max_us.max(duration);
        self.latency.record(duration_us);
    }

    /// Adds `other` into these totals.
    pub(super) fn merge(&mut self, other: &Totals) {
        self.calls += other.calls;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.max_us = self.max_us.max(other.max_us);
        self.latency.merge(&other.latency);
    }
}

/// An hourly rollup row's figures.
#[derive(Default)]
pub(crate) struct HourTotals {
    pub totals: Totals,
    pub users: DistinctSketch,
    pub sessions: DistinctSketch,
}

/// `(hour, server, tool, status, error type)`.
pub(crate) type HourKey = (i64, String, String, &'static str, String);

/// `(hour, server, unknown tool, client name, client version, protocol version, status)`: the
/// tool's (rollup) name for calls of unknown tools, else empty; a client detail the call lacked
/// is empty.
pub(crate) type ClientKey = (i64, String, String, String, String, String, &'static str);

/// A [`ClientKey`] borrowed from the events.
type BorrowedClientKey<'e> = (
    i64,
    &'e str,
    &'e str,
    &'e str,
    &'e str,
    &'e str,
    &'static str,
);

/// A `client_calls_1h` row's figures.
#[derive(Default)]
pub(crate) struct ClientTotals {
    pub totals: Totals,
    pub sessions: DistinctSketch,
}

/// `(bucket start, server, tool, status)` of a [`Grain`] rollup.
pub(crate) type BucketKey<'e> = (i64, &'e str, &'e str, &'static str);

/// A user's latest `(email, name)`.
pub(crate) type Details = (Option<String>, Option<String>);

/// The hourly aggregates taken out of [`Pending`] to be written.
#[derive(Default)]
pub(crate) struct Hourly {
    /// `tool_calls_1h` rows.
    pub hours: Vec<(HourKey, HourTotals)>,
    /// `client_calls_1h` rows.
    pub clients: Vec<(ClientKey, ClientTotals)>,
    /// `user_calls_1h` rows: `(hour, user)` and `(calls, errors)`.
    pub users: Vec<((i64, String), (i64, i64))>,
    /// `user_details` rows: user and `(email, name)`.
    pub details: Vec<(String, Details)>,
}

/// Hourly aggregates not yet written.
#[derive(Default)]
pub(crate) struct Pending {
    hours: HashMap<HourKey, HourTotals>,
    clients: HashMap<ClientKey, ClientTotals>,
    users: HashMap<(i64, String), (i64, i64)>,
    /// The latest `(email, name)` per user, for calls that carried either.
    details: HashMap<String, (Option<String>, Option<String>)>,
    oldest: Option<Stopwatch>,
    /// Hours with aggregates here, and whether `rollup_dirty` lists them yet.
    dirty: HashMap<i64, bool>,
}

/// A stored event and the tool name (see `unknown`) and client (see `client_names`) its rollups
/// use.
pub(crate) type Rolled<'e> = (&'e ToolCallEvent, &'e str, RolledClient<'e>);

pub(crate) fn floor(ts_ms: i64, unit: i64) -> i64 {
    ts_ms - ts_ms.rem_euclid(unit)
}

/// The rows of `events` in the `grain` rollup.
pub(crate) fn buckets<'e>(events: &[Rolled<'e>], grain: &Grain) -> Vec<(BucketKey<'e>, Totals)> {
    let mut buckets: HashMap<BucketKey<'e>, Totals> = HashMap::default();
    for &(event, tool, _) in events {
        let key = (
            floor(event.ts_ms, grain.ms),
            event.server_name.as_str(),
            tool,
            event.status.as_str(),
        );
        buckets.entry(key).or_default().add(event);
    }
    buckets.into_iter().collect()
}

/// `(minute, server, session, tool, arguments' fingerprint)` of `tool_loops_1m`.
pub(crate) type LoopKey<'e> = (i64, &'e str, &'e str, &'e str, i64);

/// Calls of `events` that carry a session, per [`LoopKey`].
pub(crate) fn loops<'e>(events: &[Rolled<'e>]) -> HashMap<LoopKey<'e>, i64> {
    let mut loops: HashMap<LoopKey<'e>, i64> = HashMap::default();
    for &(event, tool, _) in events {
        if let Some(session) = &event.session_id {
            let key = (
                floor(event.ts_ms, MINUTE_MS),
                event.server_name.as_str(),
                session.as_str(),
                tool,
                args_fingerprint(event.params.as_deref()),
            );
            *loops.entry(key).or_default() += 1;
        }
    }
    loops
}

/// A fingerprint of a call's (redacted) arguments: FNV-1a of their stored text, so calls with
/// the same arguments share it.
fn args_fingerprint(params: Option<&str>) -> i64 {
    let mut hasher = Fnv::default();
    hasher.write(params.unwrap_or("").as_bytes());
    hasher.finish() as i64
}

/// Adds `events` to the per-minute and quarter-hour rollups, and to `tool_loops_1m`.
#[cfg(feature = "sqlite")]
pub(super) fn write_buckets(
    transaction: &Transaction<'_>,
    events: &[Rolled<'_>],
) -> rusqlite::Result<()> {
    for grain in [&MINUTE, &QUARTER] {
        let mut upsert =
            transaction.prepare_cached(&schema::upsert_bucket(grain.table, grain.time))?;
        for ((start, server, tool, status), totals) in buckets(events, grain) {
            upsert.execute(params![
                start,
                server,
                tool,
                status,
                totals.calls,
                totals.sum_us,
                totals.max_us,
                totals.latency.encode()
            ])?;
        }
    }
    let mut upsert = transaction.prepare_cached(schema::UPSERT_LOOPS)?;
    for ((minute, server, session, tool, fingerprint), calls) in loops(events) {
        upsert.execute(params![minute, server, session, tool, fingerprint, calls])?;
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
    pub(super) fn add(&mut self, events: &[Rolled<'_>]) {
        if events.is_empty() {
            return;
        }
        self.oldest.get_or_insert_with(Stopwatch::start);
        self.gather(events);
    }

    /// The hourly aggregates of `events` alone (for a writer that writes them with every
    /// batch; reads no clock, so it runs on wasm32).
    #[cfg(any(feature = "workers", test))]
    pub(crate) fn of(events: &[Rolled<'_>]) -> Hourly {
        let mut pending = Pending::default();
        pending.gather(events);
        pending.take()
    }

    /// Gathers `events` into the hourly aggregates, leaving the timer alone.
    fn gather(&mut self, events: &[Rolled<'_>]) {
        // Aggregate with borrowed keys first, then move into the owned maps once per key.
        let mut hours: HashMap<(i64, &str, &str, &'static str, &str), HourTotals> =
            HashMap::default();
        let mut clients: HashMap<BorrowedClientKey<'_>, ClientTotals> = HashMap::default();
        let mut users: HashMap<(i64, &str), (i64, i64)> = HashMap::default();
        for &(event, tool, (client_name, client_version, protocol_version)) in events {
            let hour = floor(event.ts_ms, HOUR_MS);
            let key = (
                hour,
                event.server_name.as_str(),
                tool,
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
            let unknown = if event.status == Status::UnknownTool {
                tool
            } else {
                ""
            };
            let client = clients
                .entry((
                    hour,
                    event.server_name.as_str(),
                    unknown,
                    client_name,
                    client_version,
                    protocol_version,
                    event.status.as_str(),
                ))
                .or_default();
            client.totals.add(event);
            if let Some(session) = &event.session_id {
                totals.sessions.insert(session);
                client.sessions.insert(session);
            }
        }
        for ((hour, server, tool, status, error_type), batch) in hours {
            self.dirty.entry(hour).or_insert(false);
            let key = (
                hour,
                server.to_owned(),
                tool.to_owned(),
                status,
                error_type.to_owned(),
            );
            let pending = self.hours.entry(key).or_default();
            pending.totals.merge(&batch.totals);
            pending.users.merge(&batch.users);
            pending.sessions.merge(&batch.sessions);
        }
        for ((hour, server, tool, name, version, protocol, status), batch) in clients {
            let key = (
                hour,
                server.to_owned(),
                tool.to_owned(),
                name.to_owned(),
                version.to_owned(),
                protocol.to_owned(),
                status,
            );
            let pending = self.clients.entry(key).or_default();
            pending.totals.merge(&batch.totals);
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

    /// Lists the hours with aggregates in memory in `rollup_dirty` (in the rows' transaction).
    #[cfg(feature = "sqlite")]
    pub(super) fn note_dirty(&mut self, transaction: &Transaction<'_>) -> rusqlite::Result<()> {
        for (hour, noted) in &mut self.dirty {
            if !*noted {
                transaction
                    .prepare_cached("INSERT OR IGNORE INTO rollup_dirty (hour_ms) VALUES (?1)")?
                    .execute([*hour])?;
                *noted = true;
            }
        }
        Ok(())
    }

    /// Takes everything gathered (for a writer that keeps no `rollup_dirty` notes).
    pub(crate) fn take(&mut self) -> Hourly {
        self.dirty.clear();
        self.oldest = None;
        Hourly {
            hours: self.hours.drain().collect(),
            clients: self.clients.drain().collect(),
            users: self.users.drain().collect(),
            details: self.details.drain().collect(),
        }
    }

    /// Writes (and forgets) everything gathered.
    #[cfg(feature = "sqlite")]
    pub(super) fn write(&mut self, transaction: &Transaction<'_>) -> rusqlite::Result<()> {
        let dirty: Vec<(i64, bool)> = self.dirty.drain().collect();
        let hourly = self.take();
        let mut upsert = transaction.prepare_cached(schema::UPSERT_HOURLY)?;
        for ((hour, server, tool, status, error_type), hourly) in hourly.hours {
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
        let mut upsert = transaction.prepare_cached(schema::UPSERT_CLIENT_HOURLY)?;
        for ((hour, server, tool, name, version, protocol, status), client) in hourly.clients {
            upsert.execute(params![
                hour,
                server,
                tool,
                name,
                version,
                protocol,
                status,
                client.totals.calls,
                client.totals.sum_us,
                client.totals.max_us,
                client.totals.latency.encode(),
                client.sessions.encode(),
            ])?;
        }
        let mut upsert = transaction.prepare_cached(schema::UPSERT_USER)?;
        for ((hour, user), (calls, errors)) in hourly.users {
            upsert.execute(params![hour, user, calls, errors])?;
        }
        let mut upsert = transaction.prepare_cached(schema::UPSERT_USER_DETAILS)?;
        for (user, (email, name)) in hourly.details {
            upsert.execute(params![user, email, name])?;
        }
        let mut clean =
            transaction.prepare_cached("DELETE FROM rollup_dirty WHERE hour_ms = ?1")?;
        for (hour, noted) in dirty {
            if noted {
                clean.execute([hour])?;
            }
        }
        Ok(())
    }
}

/// Rebuilds the hourly rollups of `hour` (from `hour` to `hour + 1 h`) from its rows, and says
/// whether they disagreed: when the hour's row count equals both the tool and the client
/// rollups', nothing is touched.
/// Reads the hour's rows through the `ts_ms` index, 4,096 at a time.
#[cfg(feature = "sqlite")]
pub(super) fn rebuild(
    transaction: &Transaction<'_>,
    hour: i64,
    unknown: &mut super::unknown::UnknownTools,
    admitted_clients: &mut super::client_names::ClientNames,
) -> rusqlite::Result<bool> {
    let rows: i64 = transaction.query_row(
        "SELECT count(*) FROM tool_calls WHERE ts_ms >= ?1 AND ts_ms < ?1 + 3600000",
        [hour],
        |row| row.get(0),
    )?;
    let (rolled, clients): (i64, i64) = transaction.query_row(
        "SELECT (SELECT coalesce(sum(calls), 0) FROM tool_calls_1h WHERE hour_ms = ?1), (SELECT coalesce(sum(calls), 0) FROM client_calls_1h WHERE hour_ms = ?1)",
        [hour],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if rows == rolled && rows == clients {
        return Ok(false);
    }
    transaction.execute("DELETE FROM tool_calls_1h WHERE hour_ms = ?1", [hour])?;
    transaction.execute("DELETE FROM client_calls_1h WHERE hour_ms = ?1", [hour])?;
    transaction.execute("DELETE FROM user_calls_1h WHERE hour_ms = ?1", [hour])?;
    let mut statement = transaction.prepare(
        "SELECT ts_ms, server_name, tool, status, error_type, duration_us, user_id, session_id, user_email, user_name, client_name, client_version, protocol_version FROM tool_calls WHERE ts_ms >= ?1 AND ts_ms < ?1 + 3600000 ORDER BY ts_ms",
    )?;
    let mut found = statement.query([hour])?;
    let mut pending = Pending::default();
    let mut chunk = Vec::with_capacity(4096);
    loop {
        let row = found.next()?;
        if let Some(row) = row {
            chunk.extend(stored_event(row)?);
        }
        if chunk.len() == 4096 || (row.is_none() && !chunk.is_empty()) {
            let mut rolled = Vec::with_capacity(chunk.len());
            for event in &chunk {
                rolled.push((
                    event,
                    unknown.rollup_name(event, &mut |hour, server| {
                        super::unknown::stored(&**transaction, hour, server)
                    })?,
                    admitted_clients.rollup_client(event, &mut |hour, server| {
                        super::client_names::stored(&**transaction, hour, server)
                    })?,
                ));
            }
            pending.add(&rolled);
            chunk.clear();
        }
        if row.is_none() {
            break;
        }
    }
    pending.write(transaction)?;
    Ok(true)
}

/// The fields of a stored row the hourly rollups use (`None` for a status this version does not
/// know, which it never writes).
#[cfg(feature = "sqlite")]
fn stored_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<ToolCallEvent>> {
    let Ok(status) = row.get::<_, String>(3)?.parse() else {
        return Ok(None);
    };
    Ok(Some(ToolCallEvent {
        id: String::new(),
        ts_ms: row.get(0)?,
        server_name: row.get(1)?,
        server_version: String::new(),
        tool: row.get(2)?,
        user_id: row.get(6)?,
        user_email: row.get(8)?,
        user_name: row.get(9)?,
        session_id: row.get(7)?,
        client_name: row.get(10)?,
        client_version: row.get(11)?,
        protocol_version: row.get(12)?,
        transport: crate::Transport::Http,
        request_id: None,
        duration_us: u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
        status,
        error_type: row.get(4)?,
        error_message: None,
        params: None,
        result: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }))
}
