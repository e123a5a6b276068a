//! The per-client views of the report, from one read of the hourly `client_calls_1h` rollup
//! (so, like the errors by type, they start on the hour): calls, errors, latency and sessions per
//! client name, version and protocol version, per protocol version, and the tools agents called
//! that the server does not have (the missing capabilities), with the clients that asked. The
//! rollup is keyed by client and status, not by tool (every tool times every client version
//! would multiply its rows), except for unknown tools; a report of one tool reads its raw rows.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    DistinctSketch,
    rollup::Totals,
    source::{Param, Row, Source},
};
use crate::Status;

/// The calls of one client (name and version) speaking one protocol version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientReport {
    /// The name the client gave in `initialize`, if any.
    pub client_name: Option<String>,
    /// The version the client gave in `initialize`, if any.
    pub client_version: Option<String>,
    /// The negotiated protocol version, if known.
    pub protocol_version: Option<String>,
    /// Tool calls of any status.
    pub calls: u64,
    /// Tool calls whose status is an error.
    pub errors: u64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency in milliseconds.
    pub p95_ms: f64,
    /// Distinct sessions.
    pub sessions: u64,
}

/// The calls of every client speaking one protocol version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProtocolReport {
    /// The negotiated protocol version, if known.
    pub protocol_version: Option<String>,
    /// Tool calls of any status.
    pub calls: u64,
    /// Tool calls whose status is an error.
    pub errors: u64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency in milliseconds.
    pub p95_ms: f64,
    /// Distinct sessions.
    pub sessions: u64,
}

/// A tool name agents called that the server does not have.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MissingTool {
    /// The name called (or [`super::OTHER_UNKNOWN_TOOLS`] for names past the hourly limit).
    pub tool: String,
    /// How many calls.
    pub calls: u64,
    /// Distinct sessions that called it.
    pub sessions: u64,
    /// The clients that called it, most calls first.
    pub clients: Vec<MissingToolClient>,
}

/// How often one client called a missing tool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MissingToolClient {
    /// The client's name, if it gave one.
    pub client_name: Option<String>,
    /// The client's version, if it gave one.
    pub client_version: Option<String>,
    /// How many calls.
    pub calls: u64,
}

/// The three views of one range.
pub(super) struct ClientViews {
    pub clients: Vec<ClientReport>,
    pub protocol_versions: Vec<ProtocolReport>,
    pub missing_tools: Vec<MissingTool>,
}

/// Calls to fold in: a rollup row's, or one raw row's.
enum Calls<'r> {
    Rolled {
        calls: u64,
        latency: &'r [u8],
        sessions: &'r [u8],
    },
    One {
        duration_us: u64,
        session: Option<String>,
    },
}

impl Calls<'_> {
    fn count(&self) -> u64 {
        match self {
            Calls::Rolled { calls, .. } => *calls,
            Calls::One { .. } => 1,
        }
    }
}

/// Totals and sessions of one group of calls.
#[derive(Default)]
struct Group {
    totals: Totals,
    sessions: DistinctSketch,
}

impl Group {
    fn add(&mut self, calls: &Calls<'_>, error: bool) {
        let count = calls.count();
        self.totals.calls += count;
        if error {
            self.totals.errors += count;
        }
        match calls {
            Calls::Rolled {
                latency, sessions, ..
            } => {
                self.totals.latency.merge_encoded(latency);
                self.sessions.merge_encoded(sessions);
            }
            Calls::One {
                duration_us,
                session,
            } => {
                self.totals.latency.record(*duration_us);
                if let Some(session) = session {
                    self.sessions.insert(session);
                }
            }
        }
    }
}

/// `(client name, client version, protocol version)`, empty when unknown.
type ClientKey = (String, String, String);

/// A missing tool's calls, and its calls per `(client name, client version)`.
type Missing = (Group, BTreeMap<(String, String), u64>);

/// The groups of the three views.
#[derive(Default)]
struct Fold {
    clients: BTreeMap<ClientKey, Group>,
    protocols: BTreeMap<String, Group>,
    missing: BTreeMap<String, Missing>,
}

impl Fold {
    /// Adds `calls` of `tool` (only an unknown tool's name is used) by `client`, of `status`.
    fn add(
        &mut self,
        tool: String,
        (name, version, protocol): ClientKey,
        status: &str,
        calls: Calls<'_>,
    ) {
        let status: Option<Status> = status.parse().ok();
        let error = status.is_none_or(Status::is_error);
        if status == Some(Status::UnknownTool) {
            let (group, by_client) = self.missing.entry(tool).or_default();
            group.add(&calls, error);
            *by_client
                .entry((name.clone(), version.clone()))
                .or_default() += calls.count();
        }
        self.protocols
            .entry(protocol.clone())
            .or_default()
            .add(&calls, error);
        self.clients
            .entry((name, version, protocol))
            .or_default()
            .add(&calls, error);
    }

    fn finish(self) -> ClientViews {
        let mut clients: Vec<ClientReport> = self
            .clients
            .into_iter()
            .map(|((name, version, protocol), group)| ClientReport {
                client_name: known(name),
                client_version: known(version),
                protocol_version: known(protocol),
                calls: group.totals.calls,
                errors: group.totals.errors,
                p50_ms: group.totals.ms(0.5),
                p95_ms: group.totals.ms(0.95),
                sessions: group.sessions.estimate(),
            })
            .collect();
        // Busiest first; the maps' key order breaks ties (the sorts are stable).
        clients.sort_by_key(|entry| std::cmp::Reverse(entry.calls));
        let mut protocol_versions: Vec<ProtocolReport> = self
            .protocols
            .into_iter()
            .map(|(protocol, group)| ProtocolReport {
                protocol_version: known(protocol),
                calls: group.totals.calls,
                errors: group.totals.errors,
                p50_ms: group.totals.ms(0.5),
                p95_ms: group.totals.ms(0.95),
                sessions: group.sessions.estimate(),
            })
            .collect();
        protocol_versions.sort_by_key(|entry| std::cmp::Reverse(entry.calls));
        let mut missing_tools: Vec<MissingTool> = self
            .missing
            .into_iter()
            .map(|(tool, (group, by_client))| {
                let mut clients: Vec<MissingToolClient> = by_client
                    .into_iter()
                    .map(|((name, version), calls)| MissingToolClient {
                        client_name: known(name),
                        client_version: known(version),
                        calls,
                    })
                    .collect();
                clients.sort_by_key(|entry| std::cmp::Reverse(entry.calls));
                MissingTool {
                    tool,
                    calls: group.totals.calls,
                    sessions: group.sessions.estimate(),
                    clients,
                }
            })
            .collect();
        missing_tools.sort_by_key(|entry| std::cmp::Reverse(entry.calls));
        ClientViews {
            clients,
            protocol_versions,
            missing_tools,
        }
    }
}

/// Reads the views of calls since `since_ms`, optionally of one server: from `client_calls_1h`
/// (so from the start of the first hour), or for one tool from its raw rows since `since_ms`
/// (the rollup keeps the names of unknown tools only).
pub(super) fn read<S: Source>(
    source: &S,
    since_ms: i64,
    tool: Option<&str>,
    server: Option<&str>,
) -> Result<ClientViews, S::Error> {
    let mut fold = Fold::default();
    let client = |row: &dyn Row<S::Error>| -> Result<ClientKey, S::Error> {
        Ok((row.string(1)?, row.string(2)?, row.string(3)?))
    };
    match tool {
        None => source.each(
            "SELECT unknown_tool, client_name, client_version, protocol_version, status, CAST(calls AS BIGINT), latency_hist, sessions_hll FROM client_calls_1h WHERE hour_ms >= ?1 - 3599999 AND (CAST(?2 AS TEXT) IS NULL OR server_name = ?2)",
            &[Param::Int(since_ms), Param::Text(server)],
            &mut |row| {
                let calls = Calls::Rolled {
                    calls: u64::try_from(row.int(5)?).unwrap_or(0),
                    latency: row.blob(6)?,
                    sessions: row.blob(7)?,
                };
                fold.add(row.string(0)?, client(row)?, &row.string(4)?, calls);
                Ok(())
            },
        )?,
        Some(tool) => source.each(
            "SELECT tool, client_name, client_version, protocol_version, status, duration_us, session_id FROM tool_calls WHERE ts_ms >= ?1 AND tool = ?2 AND (CAST(?3 AS TEXT) IS NULL OR server_name = ?3)",
            &[Param::Int(since_ms), Param::Text(Some(tool)), Param::Text(server)],
            &mut |row| {
                let calls = Calls::One {
                    duration_us: u64::try_from(row.int(5)?).unwrap_or(0),
                    session: row.text(6)?,
                };
                fold.add(row.string(0)?, client(row)?, &row.string(4)?, calls);
                Ok(())
            },
        )?,
    }
    Ok(fold.finish())
}

/// `None` for the empty text the rollup keeps for a detail the calls lacked.
fn known(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}
