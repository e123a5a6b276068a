//! Per-batch aggregation written in the same transaction as the raw rows: the per-minute rollup
//! (tool, status), the hourly rollup (tool, status, error type, with distinct-user and -session
//! sketches) and hourly per-user counts.

use std::collections::HashMap;

use rusqlite::{Transaction, params};

use super::{LatencyHistogram, schema, sketch::DistinctSketch};
use crate::ToolCallEvent;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

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
struct Hourly {
    totals: Totals,
    users: DistinctSketch,
    sessions: DistinctSketch,
}

fn floor(ts_ms: i64, unit: i64) -> i64 {
    ts_ms - ts_ms.rem_euclid(unit)
}

/// Adds `events` (all newly stored) to every rollup.
pub(super) fn write(
    transaction: &Transaction<'_>,
    events: &[&ToolCallEvent],
) -> rusqlite::Result<()> {
    let mut minutes: HashMap<(i64, &str, &str, &str), Totals> = HashMap::new();
    let mut hours: HashMap<(i64, &str, &str, &str, &str), Hourly> = HashMap::new();
    let mut users: HashMap<(i64, &str), (i64, i64)> = HashMap::new();
    for event in events.iter().copied() {
        let (server, tool, status) = (
            event.server_name.as_str(),
            event.tool.as_str(),
            event.status.as_str(),
        );
        minutes
            .entry((floor(event.ts_ms, MINUTE_MS), server, tool, status))
            .or_default()
            .add(event);
        let hour = floor(event.ts_ms, HOUR_MS);
        let error_type = event.error_type.as_deref().unwrap_or("");
        let hourly = hours
            .entry((hour, server, tool, status, error_type))
            .or_default();
        hourly.totals.add(event);
        if let Some(user) = &event.user_id {
            hourly.users.insert(user);
            let counts = users.entry((hour, user)).or_default();
            counts.0 += 1;
            counts.1 += i64::from(event.status.is_error());
        }
        if let Some(session) = &event.session_id {
            hourly.sessions.insert(session);
        }
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
    let mut upsert = transaction.prepare_cached(schema::UPSERT_HOURLY)?;
    for ((hour, server, tool, status, error_type), hourly) in hours {
        let Hourly {
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
    for ((hour, user), (calls, errors)) in users {
        upsert.execute(params![hour, user, calls, errors])?;
    }
    Ok(())
}
