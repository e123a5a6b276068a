//! The usage report behind `mcp-analytics report` and the dashboard: per-tool figures from the
//! per-minute (or, past a day, hourly) rollup; distinct users and sessions from the hourly
//! sketches; errors by type, top users and the per-client views (see `clients`) from the hourly
//! tables (so those start on the hour);
//! the other requests per method, prompt and resource (see `request_report`).

use serde::Serialize;

use std::collections::{BTreeMap, HashMap};

use super::{
    ClientReport, DistinctSketch, MethodReport, MissingTool, ParamFailure, PromptReport,
    ProtocolReport, ResourceReport, clients, context_cost, quality, request_report,
    rollup::Totals,
    source::{Param, Source},
    summary,
};
use crate::{catalog::ToolCatalog, schema::IS_ERROR};

/// Everything the report shows for one time range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Start of the range (unix ms, inclusive).
    pub since_ms: i64,
    /// The tool the report is limited to, if any.
    pub tool: Option<String>,
    /// Calls of any tool in the range.
    pub calls: u64,
    /// Calls whose status is an error.
    pub errors: u64,
    /// Per tool, busiest first.
    pub tools: Vec<ToolReport>,
    /// The other requests (`initialize`, `tools/list`, `prompts/get`, …) per method, busiest
    /// first (empty in a report of one tool).
    pub requests: Vec<MethodReport>,
    /// `prompts/get` per prompt name, busiest first (empty in a report of one tool).
    pub prompts: Vec<PromptReport>,
    /// `resources/read` per resource URI, busiest first (empty in a report of one tool).
    pub resources: Vec<ResourceReport>,
    /// Errors by status and type, most frequent first.
    pub error_kinds: Vec<ErrorKind>,
    /// The most active users, most calls first (at most 10).
    pub top_users: Vec<UserUsage>,
    /// Session figures.
    pub sessions: Sessions,
    /// Per client name, version and protocol version, busiest first (from the start of the
    /// first hour; in a report of one tool, from its rows).
    pub clients: Vec<ClientReport>,
    /// Per protocol version, busiest first (as `clients`).
    pub protocol_versions: Vec<ProtocolReport>,
    /// Tool names agents called that the server does not have, most called first (as
    /// `clients`).
    pub missing_tools: Vec<MissingTool>,
    /// For calls whose arguments did not deserialize: which field of which tool failed how,
    /// most frequent first.
    pub invalid_params: Vec<ParamFailure>,
    /// What each server's tool catalogue costs an agent's context, as its latest version
    /// served it (of the report's tool only, for a report of one tool).
    pub context_cost: Vec<ToolCatalog>,
}

/// Usage and latency of one tool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolReport {
    /// The tool name.
    pub tool: String,
    /// Calls of any status.
    pub calls: u64,
    /// Calls whose status is an error.
    pub errors: u64,
    /// `(calls - errors) / calls`, 0–1.
    pub success_rate: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency in milliseconds.
    pub p95_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Distinct users who called it.
    pub users: u64,
    /// Distinct sessions that called it.
    pub sessions: u64,
    /// Distinct sessions that listed the tools (`tools/list` answers every tool, so this is
    /// the same for each): how many could have called it.
    pub listed_sessions: u64,
}

/// How many calls ended with one status and error type.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorKind {
    /// The status (`tool_error`, `panic`, …).
    pub status: String,
    /// The error type, if recorded.
    pub error_type: Option<String>,
    /// How many calls.
    pub count: u64,
}

/// One user's activity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserUsage {
    /// The user id.
    pub user_id: String,
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// The latest email seen for the user (masked unless configured otherwise), if any.
    pub email: Option<String>,
    /// The latest name seen for the user (masked unless configured otherwise), if any.
    pub name: Option<String>,
}

/// Session figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sessions {
    /// Distinct sessions with at least one call.
    pub count: u64,
    /// Average calls per session.
    pub average_calls: f64,
}

pub(crate) fn report<S: Source>(
    source: &S,
    since_ms: i64,
    tool: Option<&str>,
    server: Option<&str>,
) -> Result<Report, S::Error> {
    let totals = summary::tool_totals(source, since_ms, server)?;
    Ok(complete(source, since_ms, tool, server, totals)?.0)
}

/// The report around per-tool totals already read from the rollup, and the distinct users of
/// its scope (the union of its tools' sketches).
pub(super) fn complete<S: Source>(
    source: &S,
    since_ms: i64,
    tool: Option<&str>,
    server: Option<&str>,
    totals: BTreeMap<String, Totals>,
) -> Result<(Report, DistinctSketch), S::Error> {
    let mut tools: Vec<ToolReport> = totals
        .into_iter()
        .filter(|(name, _)| tool.is_none_or(|tool| name == tool))
        .map(|(name, totals)| ToolReport {
            success_rate: if totals.calls == 0 {
                0.0
            } else {
                (totals.calls - totals.errors) as f64 / totals.calls as f64
            },
            p50_ms: totals.ms(0.5),
            p95_ms: totals.ms(0.95),
            p99_ms: totals.ms(0.99),
            tool: name,
            calls: totals.calls,
            errors: totals.errors,
            users: 0,
            sessions: 0,
            listed_sessions: 0,
        })
        .collect();
    let filter = "hour_ms >= ?1 - 3599999 AND (CAST(?2 AS TEXT) IS NULL OR tool = ?2) AND (CAST(?3 AS TEXT) IS NULL OR server_name = ?3)";
    let params = [Param::Int(since_ms), Param::Text(tool), Param::Text(server)];
    // Per tool: its users' and its sessions' sketches.
    let mut sketches: HashMap<String, (DistinctSketch, DistinctSketch)> = HashMap::new();
    source.each(
        &format!("SELECT tool, users_hll, sessions_hll FROM tool_calls_1h WHERE {filter}"),
        &params,
        &mut |row| {
            let (users, sessions) = sketches.entry(row.string(0)?).or_default();
            users.merge_encoded(row.blob(1)?);
            sessions.merge_encoded(row.blob(2)?);
            Ok(())
        },
    )?;
    let mut all_users = DistinctSketch::default();
    let mut sessions = DistinctSketch::default();
    for (users, tool_sessions) in sketches.values() {
        all_users.merge(users);
        sessions.merge(tool_sessions);
    }
    let requests = request_report::read(source, since_ms, server)?;
    for entry in &mut tools {
        if let Some((users, sessions)) = sketches.get(&entry.tool) {
            entry.users = users.estimate();
            entry.sessions = sessions.estimate();
        }
        entry.listed_sessions = requests.listed_sessions;
    }
    tools.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.tool.cmp(&b.tool)));
    let error_kinds = source.rows(
        &format!(
            "SELECT status, NULLIF(error_type, ''), CAST(sum(calls) AS BIGINT) FROM tool_calls_1h WHERE {filter} AND {IS_ERROR} GROUP BY status, error_type ORDER BY sum(calls) DESC, status, error_type"
        ),
        &params,
        |row| {
            Ok(ErrorKind {
                status: row.string(0)?,
                error_type: row.text(1)?,
                count: count(row.int(2)?),
            })
        },
    )?;
    // Per-user counts are kept per hour across servers and tools; narrower scopes read their rows.
    let top_users_sql = if tool.is_none() && server.is_none() {
        "SELECT user_id, CAST(sum(calls) AS BIGINT) AS calls, CAST(sum(errors) AS BIGINT) AS errors FROM user_calls_1h WHERE hour_ms >= ?1 - 3599999 AND CAST(?2 AS TEXT) IS NULL AND CAST(?3 AS TEXT) IS NULL GROUP BY user_id ORDER BY sum(calls) DESC, user_id LIMIT 10".to_owned()
    } else {
        format!(
            "SELECT user_id, count(*) AS calls, CAST(sum(CASE WHEN {IS_ERROR} THEN 1 ELSE 0 END) AS BIGINT) AS errors FROM tool_calls WHERE ts_ms >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR tool = ?2) AND (CAST(?3 AS TEXT) IS NULL OR server_name = ?3) AND user_id IS NOT NULL GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 10"
        )
    };
    // Each top user's latest details, from the user directory.
    let top_users_sql = format!(
        "SELECT top.user_id, top.calls, top.errors, details.email, details.name FROM ({top_users_sql}) AS top LEFT JOIN user_details AS details USING (user_id) ORDER BY top.calls DESC, top.user_id"
    );
    let top_users = source.rows(&top_users_sql, &params, |row| {
        Ok(UserUsage {
            user_id: row.string(0)?,
            calls: count(row.int(1)?),
            errors: count(row.int(2)?),
            email: row.text(3)?,
            name: row.text(4)?,
        })
    })?;
    let views = clients::read(source, since_ms, tool, server)?;
    let calls: u64 = tools.iter().map(|entry| entry.calls).sum();
    let session_count = sessions.estimate();
    let report = Report {
        since_ms,
        tool: tool.map(str::to_owned),
        calls,
        errors: tools.iter().map(|entry| entry.errors).sum(),
        tools,
        // A report of one tool has none of the other requests.
        requests: if tool.is_none() {
            requests.methods
        } else {
            Vec::new()
        },
        prompts: if tool.is_none() {
            requests.prompts
        } else {
            Vec::new()
        },
        resources: if tool.is_none() {
            requests.resources
        } else {
            Vec::new()
        },
        error_kinds,
        top_users,
        sessions: Sessions {
            count: session_count,
            average_calls: if session_count == 0 {
                0.0
            } else {
                calls as f64 / session_count as f64
            },
        },
        clients: views.clients,
        protocol_versions: views.protocol_versions,
        missing_tools: views.missing_tools,
        invalid_params: quality::read(source, since_ms, tool, server)?,
        context_cost: context_cost::read(source, server, tool)?,
    };
    Ok((report, all_users))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
