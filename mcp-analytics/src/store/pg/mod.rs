//! The analytics tables on PostgreSQL (feature `postgres`): [`PgStore`], the same store as
//! [`super::SqliteStore`] for a database that several replicas and collectors write at once.
//!
//! A batch is copied (binary `COPY`) into a session-private staging table, then inserted with
//! `ON CONFLICT (id) DO NOTHING`, so a batch delivered twice (an exporter's retry, two collectors)
//! counts once; the rollups (per minute, quarter hour and hour) are added for the inserted rows
//! only, in the same transaction — hourly ones included, so nothing is left for a restart to
//! repair (see `merge` for how several
//! writers add to one rollup row). The readers are the SQLite store's, over [`Source`].
//!
//! The store is synchronous like the SQLite one (the recorder's writer thread, the dashboard's
//! blocking tasks and the CLI call it): it owns one connection driven by a current-thread
//! runtime of its own.

mod merge;
mod requests;
pub(crate) mod schema;
#[cfg(test)]
mod tests;

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    time::Instant,
};

use tokio_postgres::{
    Client, Statement,
    binary_copy::BinaryCopyInWriter,
    error::SqlState,
    types::{ToSql, Type},
};

use super::{
    Overview, Report, ToolSummary, aggregate, client_names,
    requests::RequestTargets,
    source::{Param, Row, Source},
    unknown,
    views::{CallRow, SeriesPoint},
};
use crate::{
    Database, PostgresUrl, RequestEvent, Sink, SinkError, Stats, ToolCallEvent,
    catalog::ToolCatalog,
};

/// How often a batch is tried again after PostgreSQL aborted it for a deadlock or a
/// serialization failure (nothing of it was kept).
const RETRIES: usize = 5;

/// How long connecting may take unless the URL says (`connect_timeout=`).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A PostgreSQL analytics database. As a [`Sink`] it appends batches; its query methods read
/// the rollups. Every method blocks until PostgreSQL answers.
pub struct PgStore {
    url: PostgresUrl,
    /// Drives `client`'s connection; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
    statements: std::sync::Mutex<HashMap<String, Statement>>,
    /// Unknown tool names admitted to the rollups per hour.
    unknown: unknown::UnknownTools,
    /// Clients admitted to the rollups per hour.
    clients: client_names::ClientNames,
    /// Request targets admitted to the rollups per hour.
    targets: RequestTargets,
    /// The counters last stored in `recorder_stats`, and when.
    stats_written: Option<(Stats, Instant)>,
    /// Assigns sessionless callers' sessions.
    sessions: super::sessions::Sessions,
    /// The hour up to whose day before `tool_loops_1m` was pruned.
    loops_pruned_hour: i64,
}

impl PgStore {
    /// Connects to `url` and brings the analytics tables up to date.
    pub fn open(url: &PostgresUrl) -> Result<Self, crate::Error> {
        Self::connect_to(url, Access::Write)
    }

    /// Connects to `url` for reading only: the tables are left as they are (a server creates
    /// them) and every transaction of the connection is read-only, so writes through this
    /// store fail.
    pub fn open_read_only(url: &PostgresUrl) -> Result<Self, crate::Error> {
        Self::connect_to(url, Access::Read)
    }

    fn connect_to(url: &PostgresUrl, access: Access) -> Result<Self, crate::Error> {
        let error = |reason: String| crate::Error::Database {
            database: Database::Postgres(url.clone()),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| error(e.to_string()))?;
        let client = block_on(&runtime, connect(url, access)).map_err(|e| error(e.describe()))?;
        Ok(Self {
            url: url.clone(),
            runtime: Some(runtime),
            client,
            statements: std::sync::Mutex::default(),
            unknown: unknown::UnknownTools::default(),
            clients: client_names::ClientNames::default(),
            targets: RequestTargets::default(),
            stats_written: None,
            sessions: super::sessions::Sessions::default(),
            loops_pruned_hour: i64::MIN,
        })
    }

    /// How long a sessionless caller may pause before its next call starts a new session
    /// (default [`Config::DEFAULT_SESSION_IDLE`](crate::Config::DEFAULT_SESSION_IDLE)).
    pub fn set_session_idle(&mut self, idle: std::time::Duration) {
        self.sessions.set_idle(idle);
    }

    /// `events` with their sessionless callers' sessions, assigned in `session_keys` by one
    /// autocommitted upsert per row (before the batch's transaction).
    fn assign_sessions<'e, E: super::sessions::Sessioned>(
        &mut self,
        events: &'e [E],
    ) -> Result<std::borrow::Cow<'e, [E]>, tokio_postgres::Error> {
        let mut table = PgSessions {
            runtime: self.runtime.as_ref().expect("present until dropped"),
            client: &self.client,
            statements: &self.statements,
        };
        self.sessions.assign(&mut table, events)
    }

    /// The database's URL.
    pub fn url(&self) -> &PostgresUrl {
        &self.url
    }

    /// Whether the connection is gone (reopen the store).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    fn run<F: Future + Send>(&self, future: F) -> F::Output
    where
        F::Output: Send,
    {
        block_on(
            self.runtime.as_ref().expect("present until dropped"),
            future,
        )
    }

    /// Appends events and updates every rollup in one transaction. Events whose id is already
    /// stored are skipped (so a batch delivered twice counts once); returns how many were new.
    pub fn append(&mut self, events: &[ToolCallEvent]) -> Result<usize, tokio_postgres::Error> {
        if self.client.is_closed() {
            self.reconnect()?;
        }
        let events = self.assign_sessions(events)?;
        let mut attempt = 0;
        loop {
            let runtime = self.runtime.as_ref().expect("present until dropped");
            let result = block_on(
                runtime,
                store(
                    &mut self.client,
                    &mut self.unknown,
                    &mut self.clients,
                    &mut self.loops_pruned_hour,
                    &events,
                ),
            );
            if result.is_err() {
                // Names admitted by the rolled-back transaction are not in the rollup.
                self.unknown.forget();
                self.clients.forget();
            }
            match result {
                Err(error) if attempt < RETRIES && retryable(&error) => attempt += 1,
                result => return result,
            }
        }
    }

    /// Appends requests other than `tools/call` and updates their rollups in one transaction.
    /// Requests whose id is already stored are skipped; returns how many were new.
    pub fn append_requests(
        &mut self,
        requests: &[RequestEvent],
    ) -> Result<usize, tokio_postgres::Error> {
        if self.client.is_closed() {
            self.reconnect()?;
        }
        let requests = self.assign_sessions(requests)?;
        let mut attempt = 0;
        loop {
            let runtime = self.runtime.as_ref().expect("present until dropped");
            let result = block_on(
                runtime,
                requests::store(&mut self.client, &mut self.targets, &requests),
            );
            if result.is_err() {
                // Targets admitted by the rolled-back transaction are not in the rollup.
                self.targets.forget();
            }
            match result {
                Err(error) if attempt < RETRIES && retryable(&error) => attempt += 1,
                result => return result,
            }
        }
    }

    fn statements(&self) -> std::sync::MutexGuard<'_, HashMap<String, Statement>> {
        self.statements
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new connection after the last one broke.
    pub(crate) fn reconnect(&mut self) -> Result<(), tokio_postgres::Error> {
        let url = self.url.clone();
        match self.run(connect(&url, Access::Write)) {
            Ok(client) => {
                self.client = client;
                self.statements().clear();
                Ok(())
            }
            Err(Connect::Postgres(error)) => Err(error),
            // The URL parsed when the store opened.
            Err(Connect::Config(_)) => Ok(()),
        }
    }

    /// Stores the pipeline's counters under this host and process id.
    fn write_stats(&mut self, stats: &Stats) -> Result<(), tokio_postgres::Error> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64);
        let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let host = host_name();
        let pid = i64::from(std::process::id());
        let values = [
            count(stats.recorded),
            count(stats.dropped),
            count(stats.written),
            count(stats.sink_errors),
        ];
        let client = &self.client;
        self.run(async {
            client
                .execute(
                    schema::UPSERT_STATS,
                    &[
                        &host, &pid, &now_ms, &values[0], &values[1], &values[2], &values[3],
                    ],
                )
                .await
        })?;
        self.stats_written = Some((*stats, Instant::now()));
        Ok(())
    }

    /// Stores a server version's tool catalogue (replacing the one of an earlier start).
    pub fn write_catalog(&mut self, catalog: &ToolCatalog) -> Result<(), tokio_postgres::Error> {
        let params = super::context_cost::Upsert::of(catalog);
        let sql = dollars(super::context_cost::UPSERT);
        let client = &self.client;
        self.run(async {
            client
                .execute(
                    &sql,
                    &[
                        &params.server_name,
                        &params.server_version,
                        &params.recorded_ms,
                        &params.list_bytes,
                        &params.list_tokens,
                        &params.tools,
                    ],
                )
                .await
        })?;
        Ok(())
    }

    /// Per-tool figures from the rollup for calls that started at or after `since_ms`.
    pub fn tool_summary(&self, since_ms: i64) -> Result<Vec<ToolSummary>, tokio_postgres::Error> {
        super::summary::tool_summary(self, since_ms)
    }

    /// The usage report for calls that started at or after `since_ms`, optionally for one tool.
    pub fn report(
        &self,
        since_ms: i64,
        tool: Option<&str>,
    ) -> Result<Report, tokio_postgres::Error> {
        super::report::report(self, since_ms, tool, None)
    }

    /// The usage report of one server, optionally for one tool.
    pub fn server_report(
        &self,
        since_ms: i64,
        tool: Option<&str>,
        server: &str,
    ) -> Result<Report, tokio_postgres::Error> {
        super::report::report(self, since_ms, tool, Some(server))
    }

    /// The dashboard's overview since `since_ms` with chart buckets of `bucket_ms` (see
    /// [`super::SqliteStore::overview`]).
    pub fn overview(
        &self,
        since_ms: i64,
        bucket_ms: i64,
        server: Option<&str>,
    ) -> Result<Overview, tokio_postgres::Error> {
        super::overview::overview(self, since_ms, bucket_ms, server)
    }

    /// Calls, errors and latency per `bucket_ms` (at least a minute) since `since_ms`.
    pub fn series(
        &self,
        since_ms: i64,
        bucket_ms: i64,
        tool: Option<&str>,
    ) -> Result<Vec<SeriesPoint>, tokio_postgres::Error> {
        super::views::series(self, since_ms, bucket_ms, tool)
    }

    /// The latest failed calls since `since_ms`, newest first.
    pub fn recent_errors(
        &self,
        since_ms: i64,
        limit: usize,
        server: Option<&str>,
    ) -> Result<Vec<CallRow>, tokio_postgres::Error> {
        super::views::recent_errors(self, since_ms, limit, server, None)
    }

    /// The latest failed calls of `tool` since `since_ms`, newest first.
    pub fn tool_errors(
        &self,
        since_ms: i64,
        limit: usize,
        tool: &str,
    ) -> Result<Vec<CallRow>, tokio_postgres::Error> {
        super::views::recent_errors(self, since_ms, limit, None, Some(tool))
    }

    /// The `limit` sessions active since `since_ms` whose last call or request ended last
    /// (see [`super::SqliteStore::recent_sessions`]).
    pub fn recent_sessions(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<super::SessionSummary>, tokio_postgres::Error> {
        super::views::recent_sessions(self, since_ms, limit)
    }

    /// One session: its start, end, duration and call count, and its first `limit` calls and
    /// requests in order.
    pub fn session(
        &self,
        session_id: &str,
        limit: usize,
    ) -> Result<super::SessionTimeline, tokio_postgres::Error> {
        super::views::session(self, session_id, limit)
    }

    /// Revenue, conversion and payment health since `since_ms`, from the payment tables in
    /// this database (empty when there are none).
    pub fn payments(
        &self,
        since_ms: i64,
    ) -> Result<crate::payments::report::PaymentsSummary, tokio_postgres::Error> {
        let client = &self.client;
        self.run(crate::payments::report::PaymentsSummary::read_pg(
            client, since_ms,
        ))
    }

    /// Every call's latency since `since_ms`, merged from the rollup.
    pub fn latency(&self, since_ms: i64) -> Result<super::LatencyHistogram, tokio_postgres::Error> {
        super::summary::latency(self, since_ms)
    }

    /// How many distinct identified users called since `since_ms`.
    pub fn users(&self, since_ms: i64) -> Result<u64, tokio_postgres::Error> {
        super::summary::users(self, since_ms, None)
    }
}

impl Drop for PgStore {
    /// Stops the connection's runtime without waiting (allowed inside another runtime too).
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `session_keys` of a store's database, one autocommitted statement at a time.
struct PgSessions<'s> {
    runtime: &'s tokio::runtime::Runtime,
    client: &'s Client,
    statements: &'s std::sync::Mutex<HashMap<String, Statement>>,
}

impl PgSessions<'_> {
    fn query(
        &self,
        sql: &str,
        types: &[Type],
        values: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let statements = || {
            self.statements
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        let cached = statements().get(sql).cloned();
        let statement = match cached {
            Some(statement) => statement,
            None => {
                let statement = block_on(self.runtime, self.client.prepare_typed(sql, types))?;
                statements().insert(sql.to_owned(), statement.clone());
                statement
            }
        };
        block_on(self.runtime, self.client.query(&statement, values))
    }
}

impl super::sessions::SessionTable for PgSessions<'_> {
    type Error = tokio_postgres::Error;

    fn session_of(&mut self, key: &str) -> Result<Option<String>, tokio_postgres::Error> {
        let rows = self.query(
            "SELECT session_id FROM session_keys WHERE key = $1",
            &[Type::TEXT],
            &[&key],
        )?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    fn upsert(
        &mut self,
        key: &str,
        candidate: &str,
        ts_ms: i64,
        take: bool,
        idle_ms: i64,
    ) -> Result<String, tokio_postgres::Error> {
        let rows = self.query(
            schema::UPSERT_SESSION_KEY,
            &[Type::TEXT, Type::TEXT, Type::INT8, Type::BOOL, Type::INT8],
            &[&key, &candidate, &ts_ms, &take, &idle_ms],
        )?;
        Ok(rows[0].get(0))
    }

    fn prune(&mut self, before_ms: i64) -> Result<(), tokio_postgres::Error> {
        self.query(
            "DELETE FROM session_keys WHERE last_ms < $1",
            &[Type::INT8],
            &[&before_ms],
        )
        .map(drop)
    }
}

/// Runs `future` on `runtime`; from inside another runtime (where blocking on one is not
/// allowed), on a thread of its own.
fn block_on<F: Future + Send>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(future);
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(future))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
enum Connect {
    #[error(transparent)]
    Config(crate::Error),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
}

impl Connect {
    /// The error with PostgreSQL's message (a bare `db error` otherwise).
    fn describe(&self) -> String {
        match self {
            Connect::Postgres(error) => describe(error),
            Connect::Config(error) => error.to_string(),
        }
    }
}

/// `error` with PostgreSQL's own message and detail, when it sent one.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.code().code(), db.message()),
            None => format!("{}: {}", db.code().code(), db.message()),
        },
        None => error.to_string(),
    }
}

/// A connection with the analytics tables migrated and the staging table made.
/// What a store's connection may do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Read only: no migrations, read-only transactions.
    Read,
    /// Migrate, then read and write.
    Write,
}

async fn connect(url: &PostgresUrl, access: Access) -> Result<Client, Connect> {
    let mut config = crate::postgres::config(url).map_err(Connect::Config)?;
    if config.get_connect_timeout().is_none() {
        // The writer thread waits for it: an unreachable server must not hold it for minutes.
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let (mut client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!("an analytics PostgreSQL connection ended: {error}");
        }
    });
    match access {
        Access::Read => {
            client
                .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                .await?;
        }
        Access::Write => {
            crate::postgres::migrate(&mut client, "analytics", schema::MIGRATIONS).await?;
            client.batch_execute(schema::CREATE_STAGING).await?;
        }
    }
    Ok(client)
}

/// Deadlocks and serialization failures abort a transaction that can simply run again.
fn retryable(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(&SqlState::T_R_DEADLOCK_DETECTED) | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
    )
}

/// The host this process runs on (for `recorder_stats`).
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_default()
}

/// The column types of `schema::CALL_COLUMNS`.
const CALL_TYPES: [Type; 20] = [
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

/// Stores one batch and its rollups in one transaction; returns how many events were new.
async fn store(
    client: &mut Client,
    unknown: &mut unknown::UnknownTools,
    clients: &mut client_names::ClientNames,
    loops_pruned_hour: &mut i64,
    events: &[ToolCallEvent],
) -> Result<usize, tokio_postgres::Error> {
    if events.is_empty() {
        return Ok(0);
    }
    let transaction = client.transaction().await?;
    let sink = transaction
        .copy_in(&format!(
            "COPY tool_calls_staging ({}) FROM STDIN (FORMAT binary)",
            schema::CALL_COLUMNS
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &CALL_TYPES);
    let mut writer = std::pin::pin!(writer);
    for event in events {
        let duration = i64::try_from(event.duration_us).unwrap_or(i64::MAX);
        let row: [&(dyn ToSql + Sync); 20] = [
            &event.id,
            &event.ts_ms,
            &event.server_name,
            &event.server_version,
            &event.tool,
            &event.user_id,
            &event.session_id,
            &event.client_name,
            &event.client_version,
            &event.protocol_version,
            &event.transport.as_str(),
            &event.request_id,
            &duration,
            &event.status.as_str(),
            &event.error_type,
            &event.error_message,
            &event.params,
            &event.result,
            &event.user_email,
            &event.user_name,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    let mut new_ids: HashSet<String> = transaction
        .query(schema::INSERT_STAGED, &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // The first event of each stored id (a batch may repeat one).
    let inserted: Vec<&ToolCallEvent> = events
        .iter()
        .filter(|event| new_ids.remove(&event.id))
        .collect();

    // Unknown tool names: each hour of a server admits the first ones of any writer. Its
    // allowance is locked for the transaction (in key order) and read afresh, since other
    // writers admit names too.
    let allowances: std::collections::BTreeSet<(i64, &str)> = inserted
        .iter()
        .filter_map(|event| unknown::allowance_of(event))
        .collect();
    for (hour, server) in allowances {
        transaction
            .execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($2::text || '/' || $1::bigint::text, 0))",
                &[&hour, &server],
            )
            .await?;
        let names = transaction
            .query(
                &dollars(unknown::STORED_SQL),
                &[&hour, &server, &unknown::OTHER_UNKNOWN_TOOLS],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        unknown.reload(hour, server, names);
    }
    // Clients likewise, after the unknown names (every writer locks in the same order).
    let allowances: std::collections::BTreeSet<(i64, &str)> = inserted
        .iter()
        .map(|event| client_names::allowance_of(event))
        .collect();
    for (hour, server) in allowances {
        transaction
            .execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('clients/' || $2::text || '/' || $1::bigint::text, 0))",
                &[&hour, &server],
            )
            .await?;
        let stored = transaction
            .query(
                &dollars(client_names::STORED_SQL),
                &[&hour, &server, &client_names::OTHER_CLIENTS],
            )
            .await?
            .iter()
            .map(|row| client_names::key((row.get(0), row.get(1), row.get(2))))
            .collect();
        clients.reload(hour, server, stored);
    }
    // Every hour this batch uses was reloaded just above.
    let reloaded = |_: i64, _: &str| Ok::<_, std::convert::Infallible>(HashSet::new());
    let mut rolled = Vec::with_capacity(inserted.len());
    for event in inserted {
        let Ok(name) = unknown.rollup_name(event, &mut { reloaded });
        let Ok(client) = clients.rollup_client(event, &mut { reloaded });
        rolled.push((event, name, client));
    }

    write_rollups(&transaction, &rolled).await?;
    // Like SQLite's writer: once per hour of the newest call, the loop minutes a day older go.
    let newest = rolled.iter().map(|(event, _, _)| event.ts_ms).max();
    let prune = newest
        .map(|newest| aggregate::floor(newest, aggregate::HOUR_MS))
        .filter(|hour| hour > loops_pruned_hour);
    if let Some(hour) = prune {
        transaction
            .execute(
                "DELETE FROM tool_loops_1m WHERE minute_ms < $1",
                &[&(hour - super::LOOPS_KEPT_MS)],
            )
            .await?;
    }
    transaction.commit().await?;
    if let Some(hour) = prune {
        *loops_pruned_hour = hour;
    }
    Ok(rolled.len())
}

/// Adds `rolled` to every rollup, each in the same order in every writer (per minute, per
/// quarter hour, loops per minute, per hour, per client and hour, per user and hour, user
/// details).
async fn write_rollups(
    transaction: &tokio_postgres::Transaction<'_>,
    rolled: &[aggregate::Rolled<'_>],
) -> Result<(), tokio_postgres::Error> {
    for (grain, table) in &merge::BUCKETED {
        let rows = aggregate::buckets(rolled, grain);
        merge::add(
            transaction,
            table,
            rows.into_iter().map(merge::Row::bucket).collect(),
        )
        .await?;
    }
    let loops = aggregate::loops(rolled);
    if !loops.is_empty() {
        let mut minutes = Vec::with_capacity(loops.len());
        let mut servers = Vec::with_capacity(loops.len());
        let mut sessions = Vec::with_capacity(loops.len());
        let mut tools = Vec::with_capacity(loops.len());
        let mut fingerprints = Vec::with_capacity(loops.len());
        let mut calls = Vec::with_capacity(loops.len());
        for ((minute, server, session, tool, fingerprint), count) in loops {
            minutes.push(minute);
            servers.push(server);
            sessions.push(session);
            tools.push(tool);
            fingerprints.push(fingerprint);
            calls.push(count);
        }
        transaction
            .execute(
                schema::UPSERT_LOOPS,
                &[&minutes, &servers, &sessions, &tools, &fingerprints, &calls],
            )
            .await?;
    }
    let mut pending = aggregate::Pending::default();
    pending.add(rolled);
    let hourly = pending.take();
    let hours = hourly.hours.into_iter().map(merge::Row::hour).collect();
    merge::add(transaction, &merge::HOURS, hours).await?;
    let clients = hourly.clients.into_iter().map(merge::Row::client).collect();
    merge::add(transaction, &merge::CLIENTS, clients).await?;
    if !hourly.users.is_empty() {
        let (keys, counts): (Vec<_>, Vec<_>) = hourly.users.into_iter().unzip();
        let (hours, users): (Vec<i64>, Vec<String>) = keys.into_iter().unzip();
        let (calls, errors): (Vec<i64>, Vec<i64>) = counts.into_iter().unzip();
        transaction
            .execute(schema::UPSERT_USERS, &[&hours, &users, &calls, &errors])
            .await?;
    }
    if !hourly.details.is_empty() {
        let (users, details): (Vec<String>, Vec<_>) = hourly.details.into_iter().unzip();
        let (emails, names): (Vec<Option<String>>, Vec<Option<String>>) =
            details.into_iter().unzip();
        transaction
            .execute(schema::UPSERT_DETAILS, &[&users, &emails, &names])
            .await?;
    }
    Ok(())
}

/// `sql` with `?1`-style placeholders numbered `$1` for PostgreSQL.
fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl Row<tokio_postgres::Error> for tokio_postgres::Row {
    fn int(&self, index: usize) -> Result<i64, tokio_postgres::Error> {
        self.try_get(index)
    }

    fn nullable_int(&self, index: usize) -> Result<Option<i64>, tokio_postgres::Error> {
        self.try_get(index)
    }

    fn float(&self, index: usize) -> Result<f64, tokio_postgres::Error> {
        self.try_get(index)
    }

    fn text(&self, index: usize) -> Result<Option<String>, tokio_postgres::Error> {
        self.try_get(index)
    }

    fn blob(&self, index: usize) -> Result<&[u8], tokio_postgres::Error> {
        Ok(self.try_get::<_, Option<&[u8]>>(index)?.unwrap_or_default())
    }
}

impl PgStore {
    /// `sql` prepared (once per connection) with `params`' types, and their values.
    fn prepared<'p>(
        &self,
        sql: &str,
        params: &'p [Param<'_>],
    ) -> Result<(Statement, Vec<&'p (dyn ToSql + Sync)>), tokio_postgres::Error> {
        let cached = self.statements().get(sql).cloned();
        let statement = match cached {
            Some(statement) => statement,
            None => {
                let types: Vec<Type> = params
                    .iter()
                    .map(|param| match param {
                        Param::Int(_) => Type::INT8,
                        Param::Text(_) => Type::TEXT,
                        Param::Float(_) => Type::FLOAT8,
                    })
                    .collect();
                let text = dollars(sql);
                let client = &self.client;
                let statement = self.run(async { client.prepare_typed(&text, &types).await })?;
                self.statements().insert(sql.to_owned(), statement.clone());
                statement
            }
        };
        let values = params
            .iter()
            .map(|param| match param {
                Param::Int(value) => value as &(dyn ToSql + Sync),
                Param::Text(value) => value as &(dyn ToSql + Sync),
                Param::Float(value) => value as &(dyn ToSql + Sync),
            })
            .collect();
        Ok((statement, values))
    }
}

impl Source for PgStore {
    type Error = tokio_postgres::Error;

    fn each(
        &self,
        sql: &str,
        params: &[Param<'_>],
        visit: &mut super::source::Visit<'_, tokio_postgres::Error>,
    ) -> Result<(), Self::Error> {
        let (statement, values) = self.prepared(sql, params)?;
        let client = &self.client;
        let rows = self.run(async { client.query(&statement, &values).await })?;
        for row in &rows {
            visit(row)?;
        }
        Ok(())
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Self::Error> {
        let (statement, values) = self.prepared(sql, params)?;
        let client = &self.client;
        self.run(async { client.execute(&statement, &values).await })
    }
}

impl Sink for PgStore {
    fn name(&self) -> &str {
        "postgres"
    }

    fn write(&mut self, events: &[ToolCallEvent]) -> Result<(), SinkError> {
        self.append(events)?;
        Ok(())
    }

    fn write_requests(&mut self, requests: &[RequestEvent]) -> Result<(), SinkError> {
        self.append_requests(requests)?;
        Ok(())
    }

    fn write_catalog(&mut self, catalog: &ToolCatalog) -> Result<(), SinkError> {
        PgStore::write_catalog(self, catalog)?;
        Ok(())
    }

    fn flush(&mut self, stats: &Stats) -> Result<(), SinkError> {
        self.write_stats(stats)?;
        Ok(())
    }

    /// Writes changed counters at most every half second.
    fn tick(&mut self, stats: &Stats) -> Result<(), SinkError> {
        let due = self.stats_written.is_none_or(|(written, at)| {
            written != *stats && at.elapsed() >= aggregate::HOURLY_DELAY
        });
        if due {
            self.write_stats(stats)?;
        }
        Ok(())
    }
}
