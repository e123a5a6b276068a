//! `mcp-analytics`: look at what an MCP server recorded.
//!
//! ```text
//! mcp-analytics report --db ./mcp-analytics.db --since 24h [--tool NAME] [--json]
//! mcp-analytics dashboard --db ./mcp-analytics.db [--listen 127.0.0.1:8787]
//! mcp-analytics collect --db ./collected.db --listen 0.0.0.0:8787   # needs MCP_ANALYTICS_API_KEY
//! mcp-analytics mcp --db ./mcp-analytics.db [--http 127.0.0.1:8788 [--allowed-host NAME]]   # for agents
//! ```
//!
//! `--db` takes a SQLite file or a `postgres://…` URL (the server's `MCP_ANALYTICS_DB`);
//! `report --db` also takes a `.sql` dump, such as `wrangler d1 export`'s of a Worker's D1 database.

mod agent;
mod since;

use std::io::IsTerminal;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use mcp_analytics::{
    ClientText, Database,
    collector::Collector,
    dashboard::Dashboard,
    payments::report::{PaymentsSummary, format_amount},
    store::{OTHER_TARGETS, ParamProblem, PgStore, Report, SqliteStore, TARGETS_PER_HOUR, Usage},
};

/// Analytics for MCP servers built with mcp-analytics.
#[derive(Parser)]
#[command(name = "mcp-analytics", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Usage, errors, latency, users and sessions over a time range.
    ///
    /// On Cloudflare Workers, export the D1 database first and report from the file:
    /// `wrangler d1 export MCP_ANALYTICS_DB --remote --output d1.sql`, then
    /// `mcp-analytics report --db d1.sql`.
    Report {
        /// The database the server writes (its MCP_ANALYTICS_DB): a SQLite file, a
        /// postgres:// URL, or a `.sql` dump (`wrangler d1 export`'s of a Worker's D1 database).
        #[arg(long, default_value = "./mcp-analytics.db")]
        db: String,
        /// How far back to look: `30m`, `24h`, `7d`, or `all`.
        #[arg(long, default_value = "24h")]
        since: String,
        /// Only this tool.
        #[arg(long)]
        tool: Option<String>,
        /// Print one JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Receive events from servers' HTTP exporters (and serve the dashboard over them).
    Collect {
        /// The database to store into: a SQLite file or a postgres:// URL (which several
        /// collectors may share).
        #[arg(long, default_value = "./mcp-analytics.db")]
        db: String,
        /// Address to listen on (a non-loopback address needs MCP_ANALYTICS_API_KEY).
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: std::net::SocketAddr,
    },
    /// Serve the web dashboard (protected by MCP_ANALYTICS_API_KEY when set; required off loopback).
    Dashboard {
        /// The database the server writes (its MCP_ANALYTICS_DB): a SQLite file or a
        /// postgres:// URL.
        #[arg(long, default_value = "./mcp-analytics.db")]
        db: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: std::net::SocketAddr,
    },
    /// Serve the analytics as a read-only MCP server for agents (stdio unless --http).
    ///
    /// Tools: analytics_overview, tool_stats, recent_errors, session_timeline, clients,
    /// missing_tools and revenue, each over a `since` range (`30m`, `24h`, `7d`, `all`). It
    /// opens the database read-only, records none of its own calls and returns only what the
    /// store holds redacted (never users' emails or names). Add it to an MCP client as the
    /// command `mcp-analytics` with the arguments `mcp --db /path/to/mcp-analytics.db`.
    #[command(name = "mcp")]
    Mcp {
        /// The database the server writes (its MCP_ANALYTICS_DB): a SQLite file or a
        /// postgres:// URL.
        #[arg(long, default_value = "./mcp-analytics.db")]
        db: String,
        /// Serve streamable HTTP at http://ADDR/mcp instead of stdio. Protected by
        /// MCP_ANALYTICS_API_KEY (bearer) or OAuth (MCP_OAUTH_*) when set; a non-loopback
        /// address needs one of them.
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        /// With --http, also answer requests whose Host is NAME (`name` or `name:port`;
        /// loopback names always; repeat for more): the name clients reach it by off loopback.
        #[arg(long = "allowed-host", value_name = "NAME", requires = "http")]
        allowed_hosts: Vec<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    init_logging();
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// Logs what the servers refuse or fail at to stderr, at `RUST_LOG`'s levels (`warn` by
/// default), coloured only when stderr is a terminal.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dashboard { db, listen } => {
            runtime()?.block_on(Dashboard::from_env(db)?.serve(listen))?
        }
        Command::Collect { db, listen } => {
            runtime()?.block_on(Collector::from_env(db)?.serve(listen))?
        }
        Command::Mcp {
            db,
            http,
            allowed_hosts,
        } => {
            // Opened before the runtime starts: a PostgreSQL store drives its own.
            let server = agent::AgentServer::open(Database::from(db))?;
            match http {
                Some(addr) => runtime()?.block_on(agent::http(server, addr, allowed_hosts))?,
                None => runtime()?.block_on(agent::stdio(server))?,
            }
        }
        Command::Report {
            db,
            since,
            tool,
            json,
        } => {
            let since_ms = since
                .parse::<since::Since>()
                .map_err(|error| anyhow!("--{error}"))?
                .start_ms();
            let (report, payments) = read_report(&Database::from(db), since_ms, tool.as_deref())?;
            if json {
                let full = FullReport {
                    report: &report,
                    payments: &payments,
                };
                println!("{}", serde_json::to_string_pretty(&full)?);
            } else {
                print!("{}", render(&report, &since));
                print!("{}", render_payments(&payments));
            }
        }
    }
    Ok(())
}

/// The report and the payments summary of `database` since `since_ms`.
fn read_report(
    database: &Database,
    since_ms: i64,
    tool: Option<&str>,
) -> anyhow::Result<(Report, PaymentsSummary)> {
    match database {
        Database::Sqlite(path) => {
            if !path.exists() {
                bail!(
                    "no analytics database at {} (set --db to the server's MCP_ANALYTICS_DB)",
                    path.display()
                );
            }
            // `wrangler d1 export`'s file (or any SQL dump): loaded into memory.
            let store = if path.extension().is_some_and(|extension| extension == "sql") {
                SqliteStore::open_sql_dump(path)?
            } else {
                SqliteStore::open(path)?
            };
            let report = store.report(since_ms, tool).context("reading the report")?;
            let payments = PaymentsSummary::read(store.connection(), since_ms)
                .context("reading the payment events")?;
            Ok((report, payments))
        }
        Database::Postgres(url) => {
            let store = PgStore::open(url)?;
            let report = store
                .report(since_ms, tool)
                .with_context(|| format!("reading the report from {url}"))?;
            let payments = store
                .payments(since_ms)
                .with_context(|| format!("reading the payment events from {url}"))?;
            Ok((report, payments))
        }
        other => bail!("unsupported database {other}"),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn render(report: &Report, since: &str) -> String {
    let scope = report
        .tool
        .as_deref()
        .map(|tool| format!(" for `{}`", ClientText::new(tool)))
        .unwrap_or_default();
    let error_rate = if report.calls == 0 {
        0.0
    } else {
        report.errors as f64 / report.calls as f64
    };
    let range = if since == "all" {
        "All time".to_owned()
    } else {
        format!("Last {since}")
    };
    let mut out = format!(
        "{range}{scope}: {} calls, {} errors ({:.1} %), {} sessions ({:.1} calls each)\n\n",
        report.calls,
        report.errors,
        error_rate * 100.0,
        report.sessions.count,
        report.sessions.average_calls
    );
    let mut tools = table(&[
        "tool",
        "calls",
        "success",
        "errors",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "users",
        "called in",
        "listed in",
    ]);
    for tool in &report.tools {
        tools.add_row(vec![
            text(&tool.tool),
            number(tool.calls),
            number(format!("{:.1} %", tool.success_rate * 100.0)),
            number(tool.errors),
            number(format!("{:.2}", tool.p50_ms)),
            number(format!("{:.2}", tool.p95_ms)),
            number(format!("{:.2}", tool.p99_ms)),
            number(tool.users),
            number(tool.sessions),
            number(tool.listed_sessions),
        ]);
    }
    out.push_str(&format!("Tools\n{tools}\n"));
    if !report.tools.is_empty() {
        out.push_str(
            "called in / listed in: sessions that called the tool / that listed the tools\n",
        );
    }
    if report
        .tools
        .iter()
        .any(|tool| tool.tool == mcp_analytics::store::OTHER_UNKNOWN_TOOLS)
    {
        out.push_str(&format!(
            "{}: calls to unknown tool names past the first {} distinct ones per server and hour\n",
            mcp_analytics::store::OTHER_UNKNOWN_TOOLS,
            mcp_analytics::store::UNKNOWN_TOOLS_PER_HOUR
        ));
    }
    out.push('\n');
    out.push_str(&render_requests(report));
    out.push_str(&render_clients(report));
    out.push_str(&render_invalid_params(report));
    out.push_str(&render_context_cost(report));
    if !report.error_kinds.is_empty() {
        let mut errors = table(&["status", "error type", "calls"]);
        for kind in &report.error_kinds {
            errors.add_row(vec![
                text(&kind.status),
                text(kind.error_type.as_deref().unwrap_or("-")),
                number(kind.count),
            ]);
        }
        out.push_str(&format!("Errors\n{errors}\n\n"));
    }
    if !report.top_users.is_empty() {
        let mut users = table(&["user", "name", "email", "calls", "errors"]);
        for user in &report.top_users {
            users.add_row(vec![
                text(&user.user_id),
                text(user.name.as_deref().unwrap_or("-")),
                text(user.email.as_deref().unwrap_or("-")),
                number(user.calls),
                number(user.errors),
            ]);
        }
        out.push_str(&format!("Top users\n{users}\n"));
    }
    out
}

/// Tool calls per client and per protocol version, and the tools agents called that do not
/// exist; nothing when there were no calls.
fn render_clients(report: &Report) -> String {
    let mut out = String::new();
    let known = |value: &Option<String>| text(value.as_deref().unwrap_or("-"));
    if !report.clients.is_empty() {
        let mut clients = table(&[
            "client", "version", "protocol", "calls", "errors", "p50 ms", "p95 ms", "sessions",
        ]);
        for client in &report.clients {
            clients.add_row(vec![
                known(&client.client_name),
                known(&client.client_version),
                known(&client.protocol_version),
                number(client.calls),
                number(client.errors),
                number(format!("{:.2}", client.p50_ms)),
                number(format!("{:.2}", client.p95_ms)),
                number(client.sessions),
            ]);
        }
        out.push_str(&format!("Clients\n{clients}\n"));
        let other = mcp_analytics::store::OTHER_CLIENTS;
        if report
            .clients
            .iter()
            .any(|client| client.client_name.as_deref() == Some(other))
        {
            out.push_str(&format!(
                "{other}: calls of clients past the first {} distinct ones per server and hour\n",
                mcp_analytics::store::CLIENTS_PER_HOUR
            ));
        }
        out.push('\n');
    }
    if report.protocol_versions.len() > 1 {
        let mut protocols = table(&[
            "protocol", "calls", "errors", "p50 ms", "p95 ms", "sessions",
        ]);
        for protocol in &report.protocol_versions {
            protocols.add_row(vec![
                known(&protocol.protocol_version),
                number(protocol.calls),
                number(protocol.errors),
                number(format!("{:.2}", protocol.p50_ms)),
                number(format!("{:.2}", protocol.p95_ms)),
                number(protocol.sessions),
            ]);
        }
        out.push_str(&format!("Protocol versions\n{protocols}\n\n"));
    }
    if !report.missing_tools.is_empty() {
        let mut missing = table(&["tool", "calls", "sessions", "clients"]);
        for tool in &report.missing_tools {
            let clients: Vec<String> = tool
                .clients
                .iter()
                .map(|client| {
                    let name = [&client.client_name, &client.client_version]
                        .into_iter()
                        .flatten()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(" ");
                    let name = if name.is_empty() { "-" } else { &name };
                    format!("{} ({})", ClientText::new(name), client.calls)
                })
                .collect();
            missing.add_row(vec![
                text(&tool.tool),
                number(tool.calls),
                number(tool.sessions),
                Cell::new(clients.join(", ")),
            ]);
        }
        out.push_str(&format!(
            "Missing tools (called by agents, not served)\n{missing}\n\n"
        ));
    }
    out
}

/// Which field of which tool failed how, for calls whose arguments did not deserialize.
fn render_invalid_params(report: &Report) -> String {
    if report.invalid_params.is_empty() {
        return String::new();
    }
    let mut failures = table(&["tool", "field", "problem", "calls"]);
    for failure in &report.invalid_params {
        let problem = match failure.problem {
            ParamProblem::Missing => "missing",
            ParamProblem::WrongType => "wrong type",
            ParamProblem::InvalidValue => "invalid value",
            ParamProblem::UnknownField => "unknown field",
            ParamProblem::Duplicate => "given twice",
            ParamProblem::Other => "other",
        };
        failures.add_row(vec![
            text(&failure.tool),
            text(failure.field.as_deref().unwrap_or("-")),
            text(problem),
            number(failure.calls),
        ]);
    }
    format!("Invalid arguments\n{failures}\n\n")
}

/// Each server's tool definitions as `tools/list` serves them, in bytes and estimated tokens.
fn render_context_cost(report: &Report) -> String {
    let mut out = String::new();
    for catalog in &report.context_cost {
        let mut tools = table(&["tool", "bytes", "≈ tokens"]);
        let mut sorted: Vec<_> = catalog.tools.iter().collect();
        sorted.sort_by_key(|tool| std::cmp::Reverse(tool.bytes));
        for tool in sorted {
            tools.add_row(vec![
                text(&tool.tool),
                number(tool.bytes),
                number(tool.tokens),
            ]);
        }
        out.push_str(&format!(
            "Context cost of {} {}: tools/list is {} bytes ≈ {} tokens per connection (tokens ≈ bytes / 4)\n{tools}\n\n",
            ClientText::new(&catalog.server_name),
            ClientText::new(&catalog.server_version),
            catalog.list_bytes,
            catalog.list_tokens,
        ));
    }
    out
}

/// The other requests per method, and `prompts/get` and `resources/read` per prompt and
/// resource; nothing when there were none.
fn render_requests(report: &Report) -> String {
    let mut out = String::new();
    if !report.requests.is_empty() {
        let mut methods = table(&["method", "calls", "errors", "p50 ms", "p95 ms", "sessions"]);
        for method in &report.requests {
            let mut row = vec![text(&method.method)];
            row.extend(usage(&method.usage));
            row.push(number(method.sessions));
            methods.add_row(row);
        }
        out.push_str(&format!("Requests\n{methods}\n\n"));
    }
    let targets = [
        (
            "Prompts",
            "prompt",
            report
                .prompts
                .iter()
                .map(|prompt| (&prompt.name, &prompt.usage))
                .collect::<Vec<_>>(),
        ),
        (
            "Resources",
            "resource",
            report
                .resources
                .iter()
                .map(|resource| (&resource.uri, &resource.usage))
                .collect(),
        ),
    ];
    for (title, column, rows) in targets {
        if rows.is_empty() {
            continue;
        }
        let mut targets = table(&[column, "calls", "errors", "p50 ms", "p95 ms"]);
        for (name, figures) in &rows {
            let mut row = vec![text(name)];
            row.extend(usage(figures));
            targets.add_row(row);
        }
        out.push_str(&format!("{title}\n{targets}\n"));
        if rows.iter().any(|(name, _)| *name == OTHER_TARGETS) {
            out.push_str(&format!(
                "{OTHER_TARGETS}: requests for {} past the first {TARGETS_PER_HOUR} distinct ones per server and hour\n",
                column.to_owned() + "s"
            ));
        }
        out.push('\n');
    }
    out
}

/// The calls, errors, p50 and p95 cells of `usage`.
fn usage(usage: &Usage) -> [Cell; 4] {
    [
        number(usage.calls),
        number(usage.errors),
        number(format!("{:.2}", usage.p50_ms)),
        number(format!("{:.2}", usage.p95_ms)),
    ]
}

/// The JSON report: the analytics report's fields plus `payments`.
#[derive(serde::Serialize)]
struct FullReport<'a> {
    #[serde(flatten)]
    report: &'a Report,
    payments: &'a PaymentsSummary,
}

/// Revenue by tool and user, conversion and payment health; nothing without payment events.
fn render_payments(payments: &PaymentsSummary) -> String {
    if payments.by_tool.is_empty()
        && payments.conversion.is_empty()
        && payments.checkouts_created == 0
    {
        return String::new();
    }
    let mut out = format!(
        "\nPayments: {} active subscriptions, {} checkouts created, {} usage events billed, {} failures\n",
        payments.active_subscriptions,
        payments.checkouts_created,
        payments.meter_events_sent,
        payments.failures
    );
    for (title, rows) in [("tool", &payments.by_tool), ("user", &payments.by_user)] {
        if rows.is_empty() {
            continue;
        }
        let mut revenue = table(&[title, "revenue", "payments"]);
        for row in rows {
            revenue.add_row(vec![
                text(&row.key),
                number(format_amount(row.amount, &row.currency)),
                number(row.payments),
            ]);
        }
        out.push_str(&format!("Revenue by {title}\n{revenue}\n"));
    }
    if !payments.conversion.is_empty() {
        let mut conversion = table(&["paid tool", "asked to pay", "paid", "conversion"]);
        for row in &payments.conversion {
            let rate = if row.asked == 0 {
                0.0
            } else {
                row.paid as f64 / row.asked as f64
            };
            conversion.add_row(vec![
                text(&row.tool),
                number(row.asked),
                number(row.paid),
                number(format!("{:.1} %", rate * 100.0)),
            ]);
        }
        out.push_str(&format!("Conversion\n{conversion}\n"));
    }
    out
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    table
}

/// A cell of stored text: no control characters (no terminal escapes, even from databases
/// written before capture cleaned client strings) and at most `MAX_CLIENT_TEXT_CHARS` characters.
fn text(value: &str) -> Cell {
    Cell::new(ClientText::new(value))
}

/// A right-aligned cell (amounts carry a stored currency, so they are cleaned as text too).
fn number(value: impl ToString) -> Cell {
    text(&value.to_string()).set_alignment(CellAlignment::Right)
}
