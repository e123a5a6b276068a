//! The per-tool rollups and how they are read: rows per minute and per quarter hour (written
//! with their rows) and per hour, folded into totals (calls, errors and a merged latency
//! histogram) per key — a tool, a method and target, a time bucket, or everything.
//!
//! A range reads the coarsest rollup its chart buckets allow. Quarter-hour buckets read whole
//! hours from `tool_calls_15m` where it holds every call the hourly rollup counts, and the
//! rest (the range's first, partial hour; an hour written by a version that kept no quarter
//! rollup; an hour whose hourly rollup is still in memory) from `tool_calls_1m`: the answer is
//! the per-minute one, read from a fifteenth of the rows.

use std::collections::{BTreeMap, BTreeSet};

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

/// A rollup of calls per time bucket, server, tool and status, written in its rows'
/// transaction.
pub(crate) struct Grain {
    /// The bucket's length.
    pub ms: i64,
    pub table: &'static str,
    /// The column holding the bucket's start (unix ms).
    pub time: &'static str,
}

/// `tool_calls_1m`.
pub(crate) const MINUTE: Grain = Grain {
    ms: 60_000,
    table: "tool_calls_1m",
    time: "minute_ms",
};

/// `tool_calls_15m`.
pub(crate) const QUARTER: Grain = Grain {
    ms: 900_000,
    table: "tool_calls_15m",
    time: "quarter_ms",
};

/// The rollup tables writers add rows to, for the stores that merge BLOBs in Rust.
#[cfg(any(
    feature = "postgres",
    feature = "workers",
    all(test, feature = "sqlite")
))]
pub(crate) mod tables {
    use super::{Grain, MINUTE, QUARTER};
    use crate::store::{DistinctSketch, LatencyHistogram};

    /// A rollup table whose rows writers add to: its time column, text key columns and BLOBs (the
    /// first the latency histogram), which merge in Rust where the database has no merge function
    /// (PostgreSQL, D1).
    pub(crate) struct Table {
        pub name: &'static str,
        pub time: &'static str,
        pub texts: &'static [&'static str],
        pub blobs: &'static [(&'static str, Merge)],
    }

    /// Merges a stored BLOB with a batch's.
    pub(crate) type Merge = fn(&[u8], &[u8]) -> Vec<u8>;

    /// The rollups per time bucket, server, tool and status (`tool_calls_1m`, `tool_calls_15m`).
    pub(crate) const BUCKETED: [(&Grain, Table); 2] =
        [(&MINUTE, bucketed(&MINUTE)), (&QUARTER, bucketed(&QUARTER))];

    const fn bucketed(grain: &Grain) -> Table {
        Table {
            name: grain.table,
            time: grain.time,
            texts: &["server_name", "tool", "status"],
            blobs: &[("latency_hist", LatencyHistogram::merge_blobs)],
        }
    }

    /// The `tool_calls_1h` rollup.
    pub(crate) const HOURS: Table = Table {
        name: "tool_calls_1h",
        time: "hour_ms",
        texts: &["server_name", "tool", "status", "error_type"],
        blobs: &[
            ("latency_hist", LatencyHistogram::merge_blobs),
            ("users_hll", DistinctSketch::merge_blobs),
            ("sessions_hll", DistinctSketch::merge_blobs),
        ],
    };

    /// The `client_calls_1h` rollup.
    pub(crate) const CLIENTS: Table = Table {
        name: "client_calls_1h",
        time: "hour_ms",
        texts: &[
            "server_name",
            "unknown_tool",
            "client_name",
            "client_version",
            "protocol_version",
            "status",
        ],
        blobs: &[
            ("latency_hist", LatencyHistogram::merge_blobs),
            ("sessions_hll", DistinctSketch::merge_blobs),
        ],
    };

    /// The `requests_1m` rollup.
    pub(crate) const REQUEST_MINUTES: Table = Table {
        name: "requests_1m",
        time: "minute_ms",
        texts: &["server_name", "method", "target", "status"],
        blobs: &[("latency_hist", LatencyHistogram::merge_blobs)],
    };

    /// The `requests_1h` rollup.
    pub(crate) const REQUEST_HOURS: Table = Table {
        name: "requests_1h",
        time: "hour_ms",
        texts: &["server_name", "method", "target", "status"],
        blobs: &[
            ("latency_hist", LatencyHistogram::merge_blobs),
            ("sessions_hll", DistinctSketch::merge_blobs),
        ],
    };
}

const HOUR_MS: i64 = 3_600_000;

/// Ranges longer than this read the hourly rollup instead of the finer ones.
const FINE_RANGE_MS: i64 = 86_400_000;

/// The chart bucket whose rollup a summary of calls since `since_ms` reads: quarter hours up to
/// a day back (exact to the minute), hours beyond (from the start of the first hour).
pub(super) fn summary_bucket(since_ms: i64) -> i64 {
    if hourly(since_ms) {
        HOUR_MS
    } else {
        QUARTER.ms
    }
}

/// Totals of calls since `since_ms` (of `server`, or every server) per `(bucket start, tool)`,
/// from the coarsest rollup whose buckets fit whole into `bucket_ms`: hours (from the start of
/// the first hour), quarter hours or minutes (from the start of the first minute). Buckets
/// start on multiples of their length, so each fits whole into a chart bucket of `bucket_ms`.
pub(super) fn cells<S: Source>(
    source: &S,
    since_ms: i64,
    bucket_ms: i64,
    server: Option<&str>,
) -> Result<BTreeMap<(i64, String), Totals>, S::Error> {
    let bucket_ms = bucket_ms.max(MINUTE.ms);
    let first_minute = floor(since_ms, MINUTE.ms);
    if bucket_ms % HOUR_MS == 0 {
        return fold(
            source,
            "SELECT hour_ms, tool, status, calls, latency_hist FROM tool_calls_1h WHERE hour_ms >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR server_name = ?2)",
            &[Param::Int(floor(since_ms, HOUR_MS)), Param::Text(server)],
            2,
            tool_error,
            start_and_tool,
        );
    }
    if bucket_ms % QUARTER.ms != 0 {
        return minutes(source, first_minute, i64::MAX, server);
    }
    let first_hour = first_minute + (HOUR_MS - first_minute.rem_euclid(HOUR_MS)) % HOUR_MS;
    let mut cells = if first_minute < first_hour {
        minutes(source, first_minute, first_hour, server)?
    } else {
        BTreeMap::new()
    };
    let hours: BTreeMap<i64, u64> = source
        .rows(
            "SELECT hour_ms, CAST(sum(calls) AS BIGINT) FROM tool_calls_1h WHERE hour_ms >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR server_name = ?2) GROUP BY hour_ms",
            &[Param::Int(first_hour), Param::Text(server)],
            |row| Ok((row.int(0)?, count(row.int(1)?))),
        )?
        .into_iter()
        .collect();
    let quarters = fold(
        source,
        "SELECT quarter_ms, tool, status, calls, latency_hist FROM tool_calls_15m WHERE quarter_ms >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR server_name = ?2)",
        &[Param::Int(first_hour), Param::Text(server)],
        2,
        tool_error,
        start_and_tool,
    )?;
    let mut quartered: BTreeMap<i64, u64> = BTreeMap::new();
    for ((start, _), totals) in &quarters {
        *quartered.entry(floor(*start, HOUR_MS)).or_default() += totals.calls;
    }
    let partial: BTreeSet<i64> = hours
        .keys()
        .chain(quartered.keys())
        .filter(|hour| hours.get(hour) != quartered.get(hour))
        .copied()
        .collect();
    for (key, totals) in quarters {
        if !partial.contains(&floor(key.0, HOUR_MS)) {
            cells.entry(key).or_default().merge(&totals);
        }
    }
    for hour in partial {
        for (key, totals) in minutes(source, hour, hour + HOUR_MS, server)? {
            cells.entry(key).or_default().merge(&totals);
        }
    }
    Ok(cells)
}

/// The per-minute cells from `from_ms` (inclusive) to `until_ms` (exclusive).
fn minutes<S: Source>(
    source: &S,
    from_ms: i64,
    until_ms: i64,
    server: Option<&str>,
) -> Result<BTreeMap<(i64, String), Totals>, S::Error> {
    fold(
        source,
        "SELECT minute_ms, tool, status, calls, latency_hist FROM tool_calls_1m WHERE minute_ms >= ?1 AND minute_ms < ?2 AND (CAST(?3 AS TEXT) IS NULL OR server_name = ?3)",
        &[
            Param::Int(from_ms),
            Param::Int(until_ms),
            Param::Text(server),
        ],
        2,
        tool_error,
        start_and_tool,
    )
}

fn start_and_tool<E>(row: &dyn Row<E>) -> Result<(i64, String), E> {
    Ok((row.int(0)?, row.string(1)?))
}

fn floor(ts_ms: i64, unit_ms: i64) -> i64 {
    ts_ms - ts_ms.rem_euclid(unit_ms)
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The request rollup table for requests since `since_ms`, and the time condition on `?1`
/// (buckets that overlap the range, so the first bucket counts whole).
pub(super) fn request_table_for(since_ms: i64) -> (&'static str, &'static str) {
    if hourly(since_ms) {
        ("requests_1h", "hour_ms >= ?1 - 3599999")
    } else {
        ("requests_1m", "minute_ms >= ?1 - 59999")
    }
}

fn hourly(since_ms: i64) -> bool {
    crate::clock::now_ms() - since_ms > FINE_RANGE_MS
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
        let calls = count(row.int(key_columns + 1)?);
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
