//! What the report and the dashboard show of the requests other than `tools/call`: per method,
//! per prompt (`prompts/get`) and per resource (`resources/read`) — calls, errors, latency —
//! from the per-minute (or, past a day, hourly) request rollup; distinct sessions per method
//! from the hourly sketches (so those start on the hour).

use std::{
    cmp::Reverse,
    collections::{BTreeMap, HashMap},
};

use serde::Serialize;

use super::{
    DistinctSketch,
    rollup::{self, Totals},
    source::{Param, Source},
};
use crate::event::Method;

/// Calls, errors and latency of a group of requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Requests of any status.
    pub calls: u64,
    /// Requests whose status is an error.
    pub errors: u64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency in milliseconds.
    pub p95_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
}

impl From<&Totals> for Usage {
    fn from(totals: &Totals) -> Self {
        Usage {
            calls: totals.calls,
            errors: totals.errors,
            p50_ms: totals.ms(0.5),
            p95_ms: totals.ms(0.95),
            p99_ms: totals.ms(0.99),
        }
    }
}

/// The requests of one method (`initialize`, `tools/list`, `prompts/get`, …).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MethodReport {
    /// The JSON-RPC method.
    pub method: String,
    /// Its calls, errors and latency.
    #[serde(flatten)]
    pub usage: Usage,
    /// Distinct sessions that sent it.
    pub sessions: u64,
}

/// The `prompts/get` requests of one prompt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PromptReport {
    /// The prompt name the client asked for.
    pub name: String,
    /// Its calls, errors and latency.
    #[serde(flatten)]
    pub usage: Usage,
}

/// The `resources/read` requests of one resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResourceReport {
    /// The resource URI the client read (redacted).
    pub uri: String,
    /// Its calls, errors and latency.
    #[serde(flatten)]
    pub usage: Usage,
}

/// Everything the report shows of the other requests.
#[derive(Default)]
pub(super) struct Requests {
    pub methods: Vec<MethodReport>,
    pub prompts: Vec<PromptReport>,
    pub resources: Vec<ResourceReport>,
    /// Distinct sessions that listed the tools.
    pub listed_sessions: u64,
}

/// The requests since `since_ms`, optionally of one server, busiest first.
pub(super) fn read<S: Source>(
    source: &S,
    since_ms: i64,
    server: Option<&str>,
) -> Result<Requests, S::Error> {
    let params = [Param::Int(since_ms), Param::Text(server)];
    let (table, time) = rollup::request_table_for(since_ms);
    let totals = rollup::fold(
        source,
        &format!(
            "SELECT method, target, status, calls, latency_hist FROM {table} WHERE {time} AND (CAST(?2 AS TEXT) IS NULL OR server_name = ?2)"
        ),
        &params,
        2,
        rollup::request_error,
        |row| Ok((row.string(0)?, row.string(1)?)),
    )?;
    let mut sessions: HashMap<String, DistinctSketch> = HashMap::new();
    source.each(
        "SELECT method, sessions_hll FROM requests_1h WHERE hour_ms >= ?1 - 3599999 AND (CAST(?2 AS TEXT) IS NULL OR server_name = ?2)",
        &params,
        &mut |row| {
            sessions
                .entry(row.string(0)?)
                .or_default()
                .merge_encoded(row.blob(1)?);
            Ok(())
        },
    )?;
    let mut methods: BTreeMap<&str, Totals> = BTreeMap::new();
    let mut prompts = Vec::new();
    let mut resources = Vec::new();
    for ((method, target), totals) in &totals {
        methods.entry(method).or_default().merge(totals);
        if target.is_empty() {
            continue;
        }
        if method == Method::PromptsGet.as_str() {
            prompts.push(PromptReport {
                name: target.clone(),
                usage: totals.into(),
            });
        } else if method == Method::ResourcesRead.as_str() {
            resources.push(ResourceReport {
                uri: target.clone(),
                usage: totals.into(),
            });
        }
    }
    let distinct = |method: &str| sessions.get(method).map_or(0, DistinctSketch::estimate);
    let mut methods: Vec<MethodReport> = methods
        .into_iter()
        .map(|(method, totals)| MethodReport {
            method: method.to_owned(),
            usage: (&totals).into(),
            sessions: distinct(method),
        })
        .collect();
    // Stable sorts: ties stay in name order.
    methods.sort_by_key(|method| Reverse(method.usage.calls));
    prompts.sort_by_key(|prompt| Reverse(prompt.usage.calls));
    resources.sort_by_key(|resource| Reverse(resource.usage.calls));
    Ok(Requests {
        methods,
        prompts,
        resources,
        listed_sessions: distinct(Method::ToolsList.as_str()),
    })
}
