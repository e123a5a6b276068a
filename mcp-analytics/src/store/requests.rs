//! Storing requests other than `tools/call`: their rows in `requests`, and their rollups —
//! `requests_1m` and `requests_1h` per method, target and status (the hourly one with a
//! distinct-session sketch) — both written in the rows' transaction. Targets are client-chosen
//! (prompt names, resource URIs): per server, hour and method the first [`TARGETS_PER_HOUR`]
//! distinct ones keep their own rollup rows, later ones are counted under [`OTHER_TARGETS`].

use std::collections::HashSet;

#[cfg(feature = "sqlite")]
use rusqlite::{Transaction, params};

use super::{
    aggregate::{HOUR_MS, HashMap, MINUTE_MS, Totals, floor},
    allowance::{Allowance, hour_of},
    sketch::DistinctSketch,
    source::{Param, Source},
};
#[cfg(feature = "sqlite")]
use crate::schema;
use crate::{RequestEvent, event::Method};

/// The rollup target of requests past the per-hour limit of distinct targets.
pub const OTHER_TARGETS: &str = "(other targets)";

/// Distinct targets a server's rollups keep per method and hour.
pub const TARGETS_PER_HOUR: usize = 100;

/// A stored request and the target its rollups use (`""` for none).
pub(crate) type Rolled<'e> = (&'e RequestEvent, &'e str);

/// `(minute or hour, server, method, target, status)`.
pub(crate) type Key<'e> = (i64, &'e str, Method, &'e str, &'static str);

/// Reads the targets a server's method admitted in an hour: `(hour, server, method)` to targets.
pub(crate) type Lookup<'l, E> = dyn FnMut(i64, &str, Method) -> Result<HashSet<String>, E> + 'l;

/// The targets admitted per hour, server and method.
pub(crate) struct RequestTargets(Allowance);

impl Default for RequestTargets {
    fn default() -> Self {
        Self(Allowance::new(TARGETS_PER_HOUR))
    }
}

impl RequestTargets {
    /// The target `request` is rolled up under: its own (or `""` without one), unless the
    /// hour's allowance for its method is used up. `stored(hour, server, method)` reads the
    /// targets the rollup already has (see [`stored`]).
    pub(crate) fn rollup_target<'e, E>(
        &mut self,
        request: &'e RequestEvent,
        stored: &mut Lookup<'_, E>,
    ) -> Result<&'e str, E> {
        let Some(target) = request.target.as_deref() else {
            return Ok("");
        };
        if target == OTHER_TARGETS {
            return Ok(OTHER_TARGETS);
        }
        let hour = hour_of(request.ts_ms);
        let (server, method) = (request.server_name.as_str(), request.method);
        let admitted = self.0.admits(hour, server, method.as_str(), target, || {
            stored(hour, server, method)
        })?;
        Ok(if admitted { target } else { OTHER_TARGETS })
    }

    /// Replaces what is known of `server`'s `method` targets in `hour` by `targets`.
    #[cfg(feature = "postgres")]
    pub(super) fn reload(
        &mut self,
        hour: i64,
        server: &str,
        method: Method,
        targets: HashSet<String>,
    ) {
        self.0.insert(hour, server, method.as_str(), targets);
    }

    /// Forgets what is in memory (after a transaction that admitted targets was rolled back).
    pub(super) fn forget(&mut self) {
        self.0.forget();
    }
}

/// The targets `server`'s rollup already has for `method` in `hour`.
pub(crate) fn stored<S: Source>(
    source: &S,
    hour: i64,
    server: &str,
    method: Method,
) -> Result<HashSet<String>, S::Error> {
    Ok(source
        .rows(
            STORED_SQL,
            &[
                Param::Int(hour),
                Param::Text(Some(server)),
                Param::Text(Some(method.as_str())),
                Param::Text(Some(OTHER_TARGETS)),
            ],
            |row| row.string(0),
        )?
        .into_iter()
        .collect())
}

/// The targets of a server's method in an hour of the per-minute rollup (`?1` hour, `?2`
/// server, `?3` method, `?4` [`OTHER_TARGETS`]).
pub(crate) const STORED_SQL: &str = "SELECT DISTINCT target FROM requests_1m WHERE minute_ms >= ?1 AND minute_ms < ?1 + 3600000 AND server_name = ?2 AND method = ?3 AND target != '' AND target != ?4";

/// The per-minute rollup rows of `requests`.
pub(crate) fn minutes<'e>(requests: &[Rolled<'e>]) -> Vec<(Key<'e>, Totals)> {
    let mut minutes: HashMap<Key<'e>, Totals> = HashMap::default();
    for (request, target) in requests.iter().copied() {
        minutes
            .entry(key(request, target, MINUTE_MS))
            .or_default()
            .record(request.duration_us);
    }
    minutes.into_iter().collect()
}

/// The hourly rollup rows of `requests`, with their distinct sessions.
pub(crate) fn hours<'e>(requests: &[Rolled<'e>]) -> Vec<(Key<'e>, Totals, DistinctSketch)> {
    let mut hours: HashMap<Key<'e>, (Totals, DistinctSketch)> = HashMap::default();
    for (request, target) in requests.iter().copied() {
        let (totals, sessions) = hours.entry(key(request, target, HOUR_MS)).or_default();
        totals.record(request.duration_us);
        if let Some(session) = &request.session_id {
            sessions.insert(session);
        }
    }
    hours
        .into_iter()
        .map(|(key, (totals, sessions))| (key, totals, sessions))
        .collect()
}

fn key<'e>(request: &'e RequestEvent, target: &'e str, unit: i64) -> Key<'e> {
    (
        floor(request.ts_ms, unit),
        request.server_name.as_str(),
        request.method,
        target,
        request.status.as_str(),
    )
}

/// Stores `requests` (skipping ids already stored) and adds the new ones to both rollups, in
/// `transaction`; returns how many were new.
#[cfg(feature = "sqlite")]
pub(super) fn append(
    transaction: &Transaction<'_>,
    targets: &mut RequestTargets,
    requests: &[RequestEvent],
) -> rusqlite::Result<usize> {
    let mut inserted = Vec::with_capacity(requests.len());
    {
        let mut insert = transaction.prepare_cached(schema::INSERT_REQUEST)?;
        for request in requests {
            let changed = insert.execute(params![
                request.id,
                request.ts_ms,
                request.server_name,
                request.server_version,
                request.method.as_str(),
                request.target,
                request.user_id,
                request.session_id,
                request.client_name,
                request.client_version,
                request.protocol_version,
                request.transport.as_str(),
                request.request_id,
                i64::try_from(request.duration_us).unwrap_or(i64::MAX),
                request.status.as_str(),
                request.error_type,
                request.error_message,
                request.client_capabilities,
            ])?;
            if changed == 1 {
                let target = targets.rollup_target(request, &mut |hour, server, method| {
                    stored(&**transaction, hour, server, method)
                })?;
                inserted.push((request, target));
            }
        }
    }
    let mut upsert = transaction.prepare_cached(schema::UPSERT_REQUEST_MINUTE)?;
    for ((minute, server, method, target, status), totals) in minutes(&inserted) {
        upsert.execute(params![
            minute,
            server,
            method.as_str(),
            target,
            status,
            totals.calls,
            totals.sum_us,
            totals.max_us,
            totals.latency.encode(),
        ])?;
    }
    let mut upsert = transaction.prepare_cached(schema::UPSERT_REQUEST_HOUR)?;
    for ((hour, server, method, target, status), totals, sessions) in hours(&inserted) {
        upsert.execute(params![
            hour,
            server,
            method.as_str(),
            target,
            status,
            totals.calls,
            totals.sum_us,
            totals.max_us,
            totals.latency.encode(),
            sessions.encode(),
        ])?;
    }
    Ok(inserted.len())
}
