//! Everything the dashboard's overview shows, from one read of the rollups (see
//! [`rollup::cells`]): the report, the chart series and the overall p95, plus distinct users
//! from the hourly sketches.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Report, SeriesPoint, report, rollup, rollup::Totals, source::Source, summary};

/// The dashboard's overview of one time range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overview {
    /// Totals, per-tool figures, errors, top users, sessions.
    pub report: Report,
    /// Calls, errors and latency per bucket.
    pub series: Vec<SeriesPoint>,
    /// The 95th percentile latency of all calls, in ms.
    pub p95_ms: Option<f64>,
    /// Distinct identified users.
    pub users: u64,
    /// Every server that recorded calls in the range (to choose one).
    pub servers: Vec<String>,
}

pub(crate) fn overview<S: Source>(
    source: &S,
    since_ms: i64,
    bucket_ms: i64,
    server: Option<&str>,
) -> Result<Overview, S::Error> {
    let bucket_ms = bucket_ms.max(60_000);
    let mut tools: BTreeMap<String, Totals> = BTreeMap::new();
    let mut buckets: BTreeMap<i64, Totals> = BTreeMap::new();
    let mut all = Totals::default();
    for ((start, tool), totals) in rollup::cells(source, since_ms, bucket_ms, server)? {
        buckets
            .entry(start - start.rem_euclid(bucket_ms))
            .or_default()
            .merge(&totals);
        all.merge(&totals);
        match tools.get_mut(&tool) {
            Some(sum) => sum.merge(&totals),
            None => {
                tools.insert(tool, totals);
            }
        }
    }
    // The report's user sketches are every user of the range: no second read for `users`.
    let (report, users) = report::complete(source, since_ms, None, server, tools)?;
    Ok(Overview {
        report,
        series: buckets
            .into_iter()
            .map(|(ts_ms, totals)| SeriesPoint::new(ts_ms, &totals))
            .collect(),
        p95_ms: all.latency.quantile(0.95).map(|us| us / 1000.0),
        users: users.estimate(),
        servers: summary::servers(source, since_ms)?,
    })
}
