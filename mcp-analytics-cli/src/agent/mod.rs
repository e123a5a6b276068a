//! `mcp-analytics mcp`: the analytics as a read-only MCP server an agent can ask ("which tools
//! failed most this week, and for which clients?"), written with this crate's own macros.
//!
//! It reads the database through a read-only store and records nothing: its own calls are
//! not the analysed server's traffic, and a read-only database could not take them anyway.
//! What it returns is what the store holds, already redacted; it never returns users'
//! emails or names (the report's `top_users`), webhook URLs, keys or tool results.

mod reader;

use std::net::SocketAddr;

use mcp_analytics::{
    Analytics, Database, mcp_server,
    payments::report::format_amount,
    rmcp::model::{CallToolResult, ContentBlock},
    serve::HttpServer,
    store::ToolReport,
    tool,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::since::{BadSince, Since};
use reader::Reader;

/// Rows a tool returns unless asked for another number.
const DEFAULT_LIMIT: usize = 20;
/// Rows a tool returns at most (as the dashboard's drill-downs).
const MAX_LIMIT: usize = 200;
/// The range when `since` is not given.
const DEFAULT_SINCE: &str = "24h";

/// Serves the analytics of `database` over stdin/stdout until the client disconnects.
pub async fn stdio(server: AgentServer) -> anyhow::Result<()> {
    mcp_analytics::serve::stdio(server).await?;
    Ok(())
}

/// Serves the analytics of `database` over streamable HTTP at `http://{addr}/mcp`, behind
/// `MCP_ANALYTICS_API_KEY` or OAuth (`MCP_OAUTH_*`), one of which a non-loopback address needs;
/// requests must name a loopback host or one of `allowed_hosts`.
pub async fn http(
    server: AgentServer,
    addr: SocketAddr,
    allowed_hosts: Vec<String>,
) -> anyhow::Result<()> {
    HttpServer::new(move || server.clone())
        .allowed_hosts(allowed_hosts)
        .without_dashboard()
        .private()
        .api_key_from_env()?
        .oauth_from_env()?
        .serve(addr)
        .await?;
    Ok(())
}

/// The agent-facing analytics server.
#[derive(Clone)]
pub struct AgentServer {
    /// Disabled: the server's own calls are not recorded.
    analytics: Analytics,
    reader: Reader,
}

impl AgentServer {
    /// Opens `database` read-only (a SQLite file must exist). Call it outside the async
    /// runtime: a PostgreSQL store drives its own.
    pub fn open(database: Database) -> anyhow::Result<Self> {
        Ok(Self {
            analytics: Analytics::disabled(),
            reader: Reader::open(database)?,
        })
    }
}

/// `since` alone.
#[derive(Deserialize, JsonSchema)]
pub struct RangeArgs {
    /// How far back: `30m`, `24h`, `7d` or `all`. Default `24h`.
    since: Option<String>,
}

/// `since` and a row limit.
#[derive(Deserialize, JsonSchema)]
pub struct ListArgs {
    /// How far back: `30m`, `24h`, `7d` or `all`. Default `24h`.
    since: Option<String>,
    /// Rows at most (default 20, max 200).
    limit: Option<u32>,
}

/// `since`, one tool, a row limit.
#[derive(Deserialize, JsonSchema)]
pub struct ToolArgs {
    /// How far back: `30m`, `24h`, `7d` or `all`. Default `24h`.
    since: Option<String>,
    /// Only this tool.
    tool: Option<String>,
    /// Rows at most (default 20, max 200).
    limit: Option<u32>,
}

/// `since`, one session, a row limit.
#[derive(Deserialize, JsonSchema)]
pub struct SessionArgs {
    /// How far back to list sessions: `30m`, `24h`, `7d` or `all`. Default `24h`.
    since: Option<String>,
    /// A session id (from the list): its timeline. Omit for the latest sessions.
    session: Option<String>,
    /// Rows at most (default 20, max 200).
    limit: Option<u32>,
}

/// What a tool answers: its result, or a tool error an agent can read and act on.
type Answer = Result<CallToolResult, String>;

#[mcp_server(
    name = "mcp-analytics",
    instructions = "Read-only analytics of an MCP server: usage, errors, latency, sessions, clients, missing tools, revenue. Start with analytics_overview. Every tool takes `since` (`30m`, `24h`, `7d`, `all`; default `24h`).",
    analytics = self.analytics
)]
impl AgentServer {
    /// Headline figures: calls, errors, p95 latency, users, sessions, the busiest and the
    /// most failing tools, error kinds, and what the tool list costs an agent's context.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn analytics_overview(&self, args: RangeArgs) -> Answer {
        let (since, since_ms) = range(args.since.as_deref())?;
        let overview = self.read(move |store| store.overview(since_ms)).await?;
        let report = &overview.report;
        let mut failing: Vec<_> = report.tools.iter().filter(|tool| tool.errors > 0).collect();
        failing.sort_by(|a, b| b.errors.cmp(&a.errors).then_with(|| a.tool.cmp(&b.tool)));
        let text = format!(
            "{}: {} calls, {} errors ({:.1} %), {} sessions, {} users{}",
            since,
            report.calls,
            report.errors,
            percent(report.errors, report.calls),
            report.sessions.count,
            overview.users,
            failing
                .first()
                .map(|tool| format!("; most failing: {} ({} errors)", tool.tool, tool.errors))
                .unwrap_or_default()
        );
        let value = json!({
            "since": since,
            "calls": report.calls,
            "errors": report.errors,
            "error_rate": rate(report.errors, report.calls),
            "p95_ms": overview.p95_ms,
            "users": overview.users,
            "sessions": report.sessions,
            "busiest_tools": report.tools.iter().take(5).map(headline).collect::<Vec<_>>(),
            "most_failing_tools": failing.iter().take(5).map(|tool| headline(tool)).collect::<Vec<_>>(),
            "error_kinds": report.error_kinds.iter().take(5).collect::<Vec<_>>(),
            "clients": report.clients.len(),
            "missing_tools": report.missing_tools.len(),
            "servers": overview.servers,
            "context_cost": report.context_cost.iter().map(|catalog| json!({
                "server_name": catalog.server_name,
                "server_version": catalog.server_version,
                "list_bytes": catalog.list_bytes,
                "list_tokens": catalog.list_tokens,
            })).collect::<Vec<_>>(),
        });
        Ok(answer(text, value))
    }

    /// Per tool, busiest first: calls, errors, success rate, p50/p95/p99 ms, users, sessions;
    /// and for calls with invalid arguments, which field failed how.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn tool_stats(&self, args: ToolArgs) -> Answer {
        let (since, since_ms) = range(args.since.as_deref())?;
        let limit = limit(args.limit);
        let tool = args.tool.clone();
        let report = self
            .read(move |store| store.report(since_ms, tool.as_deref()))
            .await?;
        let text = match report.tools.first() {
            None => format!("{}: no calls{}", since, of_tool(args.tool.as_deref())),
            Some(_) => format!(
                "{}: {} calls, {} errors{} (tools busiest first)",
                since,
                report.calls,
                report.errors,
                of_tool(args.tool.as_deref())
            ),
        };
        let value = json!({
            "since": since,
            "tool": args.tool,
            "tools": first(&report.tools, limit),
            "invalid_params": first(&report.invalid_params, limit),
        });
        Ok(answer(text, value))
    }

    /// The latest failed calls (and failed requests, unless `tool` is given), newest first:
    /// tool, status, error type and message, redacted arguments, duration, user and session.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn recent_errors(&self, args: ToolArgs) -> Answer {
        let (since, since_ms) = range(args.since.as_deref())?;
        let limit = limit(args.limit);
        let tool = args.tool.clone();
        let errors = self
            .read(move |store| store.errors(since_ms, limit, tool.as_deref()))
            .await?;
        let text = format!(
            "{}: {} latest errors{} (newest first)",
            since,
            errors.len(),
            of_tool(args.tool.as_deref())
        );
        Ok(answer(
            text,
            json!({"since": since, "tool": args.tool, "errors": errors}),
        ))
    }

    /// Without `session`: the latest sessions (start, end, calls, errors, other requests).
    /// With `session`: its start, end, duration and its calls and requests in order.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn session_timeline(&self, args: SessionArgs) -> Answer {
        let (since, since_ms) = range(args.since.as_deref())?;
        let limit = limit(args.limit);
        let Some(session) = args.session else {
            let sessions = self
                .read(move |store| store.sessions(since_ms, limit))
                .await?;
            let text = format!(
                "{}: {} latest sessions (latest first); pass `session` for one's timeline",
                since,
                sessions.len()
            );
            return Ok(answer(text, json!({"since": since, "sessions": sessions})));
        };
        let id = session.clone();
        let timeline = self.read(move |store| store.session(&id, limit)).await?;
        if timeline.start_ms.is_none() {
            return Err(format!(
                "no session {session:?} is recorded; call session_timeline without `session` for the latest sessions"
            ));
        }
        let text = format!(
            "session {session}: {} calls, {} other requests over {} ms",
            timeline.calls, timeline.requests, timeline.duration_ms
        );
        Ok(answer(
            text,
            serde_json::to_value(&timeline).unwrap_or_default(),
        ))
    }

    /// Calls, errors, p50/p95 ms and sessions per client (name, version, protocol version),
    /// busiest first, and per protocol version.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn clients(&self, args: ListArgs) -> Answer {
        let (since, since_ms) = range(args.since.as_deref())?;
        let limit = limit(args.limit);
        let report = self.read(move |store| store.report(since_ms, None)).await?;
        let text = format!(
            "{}: {} clients, {} protocol versions",
            since,
            report.clients.len(),
            report.protocol_versions.len()
        );
        let value = json!({
            "since": since,
            "clients": first(&report.clients, limit),
            "protocol_versions": first(&report.protocol_versions, limit),
        });
        Ok(answer(text, value))
    }

    /// Tool names agents called that the server does not have, most called first, with their
    /// calls, sessions and the clients that called them.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn missing_tools(&self, args: ListArgs) -> Answer {
        let (since, since_ms) = range(args.since.as_deref())?;
        let limit = limit(args.limit);
        let report = self.read(move |store| store.report(since_ms, None)).await?;
        let text = format!(
            "{}: missing tools (called by agents, not served): {}",
            since,
            report.missing_tools.len()
        );
        Ok(answer(
            text,
            json!({"since": since, "missing_tools": first(&report.missing_tools, limit)}),
        ))
    }

    /// Revenue by tool and by user (`amount` in the currency's minor unit, e.g. cents),
    /// conversion of paid tools, active subscriptions, checkouts, metered events and payment
    /// failures.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn revenue(&self, args: ListArgs) -> Answer {
        let (since, since_ms) = range(args.since.as_deref())?;
        let limit = limit(args.limit);
        let mut payments = self.read(move |store| store.payments(since_ms)).await?;
        let mut totals: std::collections::BTreeMap<&str, i64> = Default::default();
        for row in &payments.by_tool {
            *totals.entry(&row.currency).or_default() += row.amount;
        }
        let revenue: Vec<String> = totals
            .iter()
            .map(|(currency, amount)| format_amount(*amount, currency))
            .collect();
        let text = format!(
            "{}: revenue {}; {} checkouts created, {} active subscriptions, {} failures",
            since,
            if revenue.is_empty() {
                "none".to_owned()
            } else {
                revenue.join(", ")
            },
            payments.checkouts_created,
            payments.active_subscriptions,
            payments.failures
        );
        payments.by_tool.truncate(limit);
        payments.by_user.truncate(limit);
        payments.conversion.truncate(limit);
        let mut value = json!({"since": since});
        if let (Value::Object(out), Ok(Value::Object(fields))) =
            (&mut value, serde_json::to_value(&payments))
        {
            out.extend(fields);
        }
        Ok(answer(text, value))
    }
}

impl AgentServer {
    /// Runs `query` on the store; a failure is a tool error naming it.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&reader::Store) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        self.reader
            .read(query)
            .await
            .map_err(|error| format!("reading the analytics failed: {error:#}"))
    }
}

/// How `since` (default `24h`) reads in a summary, and the start of its range in unix ms; or a
/// tool error naming the accepted forms.
fn range(since: Option<&str>) -> Result<(String, i64), String> {
    let text = since.unwrap_or(DEFAULT_SINCE);
    let parsed: Since = text.parse().map_err(|error: BadSince| error.to_string())?;
    let label = match parsed {
        Since::All => "all time".to_owned(),
        Since::Last(_) => format!("last {text}"),
    };
    Ok((label, parsed.start_ms()))
}

/// A tool's calls, errors and p95, as the overview lists it.
fn headline(tool: &ToolReport) -> Value {
    json!({"tool": tool.tool, "calls": tool.calls, "errors": tool.errors, "p95_ms": tool.p95_ms})
}

/// The requested row limit, within 1..=[`MAX_LIMIT`].
fn limit(requested: Option<u32>) -> usize {
    requested.map_or(DEFAULT_LIMIT, |limit| {
        usize::try_from(limit)
            .unwrap_or(MAX_LIMIT)
            .clamp(1, MAX_LIMIT)
    })
}

/// The first `limit` rows.
fn first<T: Serialize>(rows: &[T], limit: usize) -> &[T] {
    &rows[..rows.len().min(limit)]
}

fn of_tool(tool: Option<&str>) -> String {
    tool.map(|tool| format!(" of `{tool}`")).unwrap_or_default()
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    rate(part, whole) * 100.0
}

/// A result with `value` as structured content, and `summary` then `value` as text: clients
/// that read only the text (most hand it to the model as is) see the same data.
fn answer(summary: String, value: Value) -> CallToolResult {
    let mut result = CallToolResult::structured(value);
    let json = std::mem::take(&mut result.content);
    result.content = std::iter::once(ContentBlock::text(summary))
        .chain(json)
        .collect();
    result
}
