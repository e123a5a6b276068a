//! Folding rows of the rollups into totals: calls, errors and a merged latency histogram per
//! key (a tool, a method and target, a time bucket, or everything).

use std::collections::BTreeMap;

use super::{
    LatencyHistogram,
    source::{Param, Row, Source},
};
use crate::{RequestStatus, Status};

/// Calls, errors and latencies summed over rollup rows.
#[derive(Default)]
pub(super) struct Totals {
    pub calls: u64,
    pub errors: u64,
    pub latency: LatencyHistogram,
}

impl Totals {
    /// Adds `other` into these totals.
    pub fn merge(&mut self, other: &Totals) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.latency.merge(&other.latency);
    }

    /// The `q` latency quantile in milliseconds (0 when there were no calls).
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.quantile(q).unwrap_or(0.0) / 1000.0
    }
}

/// Ranges longer than this read the hourly rollup instead of the per-minute one.
const MINUTE_RANGE_MS: i64 = 86_400_000;

/// The tool-call rollup table for calls since `since_ms`, and the time condition on `?1`
/// (buckets that overlap the range, so the first bucket counts whole).
pub(super) fn table_for(since_ms: i64) -> (&'static str, &'static str) {
    if hourly(since_ms) {
        ("tool_calls_1h", "hour_ms >= ?1 - 3599999")
    } else {
        ("tool_calls_1m", "minute_ms >= ?1 - 59999")
    }
}

/// [`table_for`] of the request rollups.
pub(super) fn request_table_for(since_ms: i64) -> (&'static str, &'static str) {
    if hourly(since_ms) {
        ("requests_1h", "hour_ms >= ?1 - 3599999")
    } else {
        ("requests_1m", "minute_ms >= ?1 - 59999")
    }
}

fn hourly(since_ms: i64) -> bool {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64);
    now_ms - since_ms > MINUTE_RANGE_MS
}

/// Whether a stored tool-call status is an error.
pub(super) fn tool_error(status: &str) -> bool {
    status.parse::<Status>().is_ok_and(Status::is_error)
}

/// Whether a stored request status is an error.
pub(super) fn request_error(status: &str) -> bool {
    status
        .parse::<RequestStatus>()
        .is_ok_and(RequestStatus::is_error)
}

/// Runs `sql` (which must select `status, calls, latency_hist` after the key columns) and folds
/// its rows into totals per `key(row)`, counting the statuses `error` says are errors.
pub(super) fn fold<S: Source, K: Ord>(
    source: &S,
    sql: &str,
    params: &[Param<'_>],
    key_columns: usize,
    error: fn(&str) -> bool,
    key: impl Fn(&dyn Row<S::Error>) -> Result<K, S::Error>,
) -> Result<BTreeMap<K, Totals>, S::Error> {
    let mut totals: BTreeMap<K, Totals> = BTreeMap::new();
    source.each(sql, params, &mut |row| {
        let status = row.string(key_columns)?;
        let calls = u64::try_from(row.int(key_columns + 1)?).unwrap_or(0);
        let entry = totals.entry(key(row)?).or_default();
        entry.calls += calls;
        if error(&status) {
            entry.errors += calls;
        }
        entry.latency.merge_encoded(row.blob(key_columns + 2)?);
        Ok(())
    })?;
    Ok(totals)
}
