//! [`SqliteStore`]: the analytics tables in one SQLite file (feature `sqlite`), written as a
//! [`Sink`] and read through the shared readers (`rusqlite::Connection` is their `Source`).

use std::path::Path;

use rusqlite::{Connection, OpenFlags, functions::FunctionFlags, params};

use super::{
    CallRow, DistinctSketch, LOOPS_KEPT_MS, LatencyHistogram, Overview, Report, SeriesPoint,
    SessionSummary, SessionTimeline, ToolSummary, aggregate, client_names, context_cost, overview,
    report, requests, sessions, summary, unknown, views,
};
use crate::{
    Sink, SinkError, Stats,
    catalog::ToolCatalog,
    event::{RequestEvent, ToolCallEvent},
    schema,
};

/// A SQLite analytics database. As a [`Sink`] it appends batches; its query methods read the
/// rollups.
pub struct SqliteStore {
    connection: Connection,
    /// Hourly aggregates of rows written through the [`Sink`] path, not yet stored.
    pending: aggregate::Pending,
    /// Unknown tool names admitted to the rollups per hour.
    unknown: unknown::UnknownTools,
    /// Clients admitted to the rollups per hour.
    clients: client_names::ClientNames,
    /// Request targets admitted to the rollups per hour.
    targets: requests::RequestTargets,
    /// The counters last stored in `recorder_stats`, and when.
    stats_written: Option<(Stats, std::time::Instant)>,
    /// Assigns sessionless callers' sessions.
    sessions: sessions::Sessions,
    /// The hour up to whose day before `tool_loops_1m` was pruned.
    loops_pruned_hour: i64,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, crate::Error> {
        let path = path.as_ref();
        let error = |source| crate::Error::Store {
            path: path.to_owned(),
            source,
        };
        let connection = Connection::open(path).map_err(error)?;
        Self::prepare(connection).map_err(error)
    }

    /// Loads a SQL dump into a database in memory and opens that: the file `wrangler d1 export`
    /// writes of the Worker's D1 database (`CREATE TABLE …` and `INSERT INTO …` statements), or
    /// `sqlite3 FILE .dump`'s. Tables made by the D1 migration, which records no schema version,
    /// are recognised as this version's.
    pub fn open_sql_dump(path: impl AsRef<Path>) -> Result<Self, crate::Error> {
        let path = path.as_ref();
        let error = |reason: String| crate::Error::Database {
            database: crate::Database::Sqlite(path.to_owned()),
            reason,
        };
        let dump = std::fs::read_to_string(path)
            .map_err(|cause| error(format!("reading the SQL dump: {cause}")))?;
        let loaded = Connection::open_in_memory().and_then(|connection| {
            connection.execute_batch(&dump)?;
            Ok(connection)
        });
        let connection = loaded.map_err(|cause| error(format!("loading the SQL dump: {cause}")))?;
        Self::prepare(connection)
            .map_err(|cause| error(format!("reading the dump's tables: {cause}")))
    }

    /// Opens an existing database for reading only: nothing done through this store writes to
    /// the file (its writes fail). The schema must be at least this version's (a server of this
    /// version has opened the file).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, crate::Error> {
        let path = path.as_ref();
        let error = |source| crate::Error::Store {
            path: path.to_owned(),
            source,
        };
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(error)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(error)?;
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(error)?;
        if usize::try_from(version).unwrap_or(0) < schema::MIGRATIONS.len() {
            return Err(crate::Error::Database {
                database: crate::Database::Sqlite(path.to_owned()),
                reason: format!(
                    "its schema is version {version}, older than this mcp-analytics reads ({}): open it once with a server of this version",
                    schema::MIGRATIONS.len()
                ),
            });
        }
        Ok(Self::with_connection(connection))
    }

    fn prepare(connection: Connection) -> rusqlite::Result<Self> {
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.pragma_update(None, "page_size", 16_384)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        // A 64 MiB page cache, in-memory temp tables and checkpoints every 4,096 pages (64 MiB of
        // WAL) keep batch commits off the disk's path.
        connection.pragma_update(None, "cache_size", -65_536)?;
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        connection.pragma_update(None, "wal_autocheckpoint", 4096)?;
        register_merge(&connection, "hist_merge", LatencyHistogram::merge_blobs)?;
        register_merge(&connection, "hll_merge", DistinctSketch::merge_blobs)?;
        schema::migrate(&connection)?;
        Ok(Self::with_connection(connection))
    }

    fn with_connection(connection: Connection) -> Self {
        Self {
            connection,
            pending: aggregate::Pending::default(),
            unknown: unknown::UnknownTools::default(),
            clients: client_names::ClientNames::default(),
            targets: requests::RequestTargets::default(),
            stats_written: None,
            sessions: sessions::Sessions::default(),
            loops_pruned_hour: i64::MIN,
        }
    }

    /// How long a sessionless caller may pause before its next call starts a new session
    /// (default [`Config::DEFAULT_SESSION_IDLE`](crate::Config::DEFAULT_SESSION_IDLE)).
    pub fn set_session_idle(&mut self, idle: std::time::Duration) {
        self.sessions.set_idle(idle);
    }

    /// Rebuilds the hourly rollups a writer left unwritten (a process killed within half a
    /// second of its last calls): every hour listed in `rollup_dirty` whose row count differs
    /// from its rollup's is rebuilt from its rows. Returns how many hours were rebuilt.
    ///
    /// Call it when this store is the database's writer, before writing (the analytics builder
    /// does): a live writer's hours are listed too, and it will still write them.
    pub fn repair_rollups(&mut self) -> rusqlite::Result<usize> {
        let hours: Vec<i64> = self
            .connection
            .prepare("SELECT hour_ms FROM rollup_dirty ORDER BY hour_ms")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut rebuilt = 0;
        for hour in hours {
            let transaction = self.connection.transaction()?;
            let result =
                aggregate::rebuild(&transaction, hour, &mut self.unknown, &mut self.clients);
            if result.is_err() {
                self.unknown.forget();
            }
            rebuilt += usize::from(result?);
            transaction.execute("DELETE FROM rollup_dirty WHERE hour_ms = ?1", [hour])?;
            transaction.commit()?;
        }
        Ok(rebuilt)
    }

    /// Appends events and updates every rollup in one transaction. Events whose id is already
    /// stored are skipped (so a batch delivered twice counts once); returns how many were new.
    pub fn append(&mut self, events: &[ToolCallEvent]) -> rusqlite::Result<usize> {
        self.store(events, true)
    }

    /// Stores rows and the per-minute rollup; hourly aggregates are written when `hourly_now`
    /// or when they are due (see `aggregate`).
    fn store(&mut self, events: &[ToolCallEvent], hourly_now: bool) -> rusqlite::Result<usize> {
        let stored = self.store_in_transaction(events, hourly_now);
        if stored.is_err() {
            // Names admitted by the rolled-back transaction are not in the rollup. (Clients
            // admitted by it stay admitted: the hourly client rollup is written late, so the
            // allowance in memory is the one complete list of this writer's clients.)
            self.unknown.forget();
        }
        stored
    }

    fn store_in_transaction(
        &mut self,
        events: &[ToolCallEvent],
        hourly_now: bool,
    ) -> rusqlite::Result<usize> {
        let transaction = self.connection.transaction()?;
        let events = self
            .sessions
            .assign(&mut sessions::SqliteSessions(&transaction), events)?;
        let mut inserted = Vec::with_capacity(events.len());
        {
            let mut insert = transaction.prepare_cached(schema::INSERT_CALL)?;
            for event in events.iter() {
                let changed = insert.execute(params![
                    event.id,
                    event.ts_ms,
                    event.server_name,
                    event.server_version,
                    event.tool,
                    event.user_id,
                    event.session_id,
                    event.client_name,
                    event.client_version,
                    event.protocol_version,
                    event.transport.as_str(),
                    event.request_id,
                    i64::try_from(event.duration_us).unwrap_or(i64::MAX),
                    event.status.as_str(),
                    event.error_type,
                    event.error_message,
                    event.params,
                    event.result,
                    event.user_email,
                    event.user_name,
                ])?;
                if changed == 1 {
                    let name = self.unknown.rollup_name(event, &mut |hour, server| {
                        unknown::stored(&*transaction, hour, server)
                    })?;
                    let client = self.clients.rollup_client(event, &mut |hour, server| {
                        client_names::stored(&*transaction, hour, server)
                    })?;
                    inserted.push((event, name, client));
                }
            }
        }
        aggregate::write_buckets(&transaction, &inserted)?;
        if let Some(newest) = inserted.iter().map(|(event, _, _)| event.ts_ms).max() {
            let hour = aggregate::floor(newest, aggregate::HOUR_MS);
            if hour > self.loops_pruned_hour {
                prune_loops(&transaction, hour)?;
                self.loops_pruned_hour = hour;
            }
        }
        self.pending.add(&inserted);
        if hourly_now || self.pending.is_due() {
            self.pending.write(&transaction)?;
        } else {
            self.pending.note_dirty(&transaction)?;
        }
        transaction.commit()?;
        Ok(inserted.len())
    }

    /// Appends requests other than `tools/call` and updates their rollups in one transaction.
    /// Requests whose id is already stored are skipped; returns how many were new.
    pub fn append_requests(&mut self, requests: &[RequestEvent]) -> rusqlite::Result<usize> {
        let transaction = self.connection.transaction()?;
        let stored = self
            .sessions
            .assign(&mut sessions::SqliteSessions(&transaction), requests)
            .and_then(|requests| requests::append(&transaction, &mut self.targets, &requests))
            .and_then(|stored| transaction.commit().map(|()| stored));
        if stored.is_err() {
            // Targets admitted by the rolled-back transaction are not in the rollup.
            self.targets.forget();
        }
        stored
    }

    /// Writes the hourly aggregates now.
    fn write_pending(&mut self) -> rusqlite::Result<()> {
        let transaction = self.connection.transaction()?;
        self.pending.write(&transaction)?;
        transaction.commit()
    }

    /// Stores a server version's tool catalogue (replacing the one of an earlier start).
    pub fn write_catalog(&mut self, catalog: &ToolCatalog) -> rusqlite::Result<()> {
        let params = context_cost::Upsert::of(catalog);
        self.connection.execute(
            context_cost::UPSERT,
            params![
                params.server_name,
                params.server_version,
                params.recorded_ms,
                params.list_bytes,
                params.list_tokens,
                params.tools,
            ],
        )?;
        Ok(())
    }

    /// Stores the pipeline's counters under this process's id.
    fn write_stats(&mut self, stats: &Stats) -> rusqlite::Result<()> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64);
        let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.connection.execute(
            schema::UPSERT_STATS,
            params![
                now_ms,
                std::process::id(),
                count(stats.recorded),
                count(stats.dropped),
                count(stats.written),
                count(stats.sink_errors),
            ],
        )?;
        self.stats_written = Some((*stats, std::time::Instant::now()));
        Ok(())
    }

    /// Per-tool figures from the rollup for calls that started at or after `since_ms`.
    pub fn tool_summary(&self, since_ms: i64) -> rusqlite::Result<Vec<ToolSummary>> {
        summary::tool_summary(&self.connection, since_ms)
    }

    /// The usage report for calls that started at or after `since_ms`, optionally for one tool.
    pub fn report(&self, since_ms: i64, tool: Option<&str>) -> rusqlite::Result<Report> {
        report::report(&self.connection, since_ms, tool, None)
    }

    /// The usage report of one server (as the collector stores many), optionally for one tool.
    pub fn server_report(
        &self,
        since_ms: i64,
        tool: Option<&str>,
        server: &str,
    ) -> rusqlite::Result<Report> {
        report::report(&self.connection, since_ms, tool, Some(server))
    }

    /// The dashboard's overview since `since_ms` with chart buckets of `bucket_ms`, read from
    /// the coarsest rollup the buckets allow (hourly for whole hours, quarter-hour rows checked
    /// against the hourly rollup for whole quarters, else per minute).
    /// `server` narrows it to one server's calls.
    pub fn overview(
        &self,
        since_ms: i64,
        bucket_ms: i64,
        server: Option<&str>,
    ) -> rusqlite::Result<Overview> {
        overview::overview(&self.connection, since_ms, bucket_ms, server)
    }

    /// Calls, errors and latency per `bucket_ms` (at least a minute) since `since_ms`.
    pub fn series(
        &self,
        since_ms: i64,
        bucket_ms: i64,
        tool: Option<&str>,
    ) -> rusqlite::Result<Vec<SeriesPoint>> {
        views::series(&self.connection, since_ms, bucket_ms, tool)
    }

    /// The latest failed calls since `since_ms`, newest first.
    /// `server` narrows it to one server's calls.
    pub fn recent_errors(
        &self,
        since_ms: i64,
        limit: usize,
        server: Option<&str>,
    ) -> rusqlite::Result<Vec<CallRow>> {
        views::recent_errors(&self.connection, since_ms, limit, server, None)
    }

    /// The latest failed calls of `tool` since `since_ms`, newest first.
    pub fn tool_errors(
        &self,
        since_ms: i64,
        limit: usize,
        tool: &str,
    ) -> rusqlite::Result<Vec<CallRow>> {
        views::recent_errors(&self.connection, since_ms, limit, None, Some(tool))
    }

    /// The `limit` sessions active since `since_ms` whose last call or request ended last,
    /// with their figures in that range.
    pub fn recent_sessions(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> rusqlite::Result<Vec<SessionSummary>> {
        views::recent_sessions(&self.connection, since_ms, limit)
    }

    /// One session: its start, end, duration and call count, and its first `limit` calls and
    /// requests in order.
    pub fn session(&self, session_id: &str, limit: usize) -> rusqlite::Result<SessionTimeline> {
        views::session(&self.connection, session_id, limit)
    }

    /// Every call's latency since `since_ms`, merged from the rollup.
    pub fn latency(&self, since_ms: i64) -> rusqlite::Result<LatencyHistogram> {
        summary::latency(&self.connection, since_ms)
    }

    /// How many distinct identified users called since `since_ms`.
    pub fn users(&self, since_ms: i64) -> rusqlite::Result<u64> {
        summary::users(&self.connection, since_ms, None)
    }

    /// The underlying connection, for ad-hoc queries.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

/// Deletes the `tool_loops_1m` minutes more than [`LOOPS_KEPT_MS`] before `hour`.
fn prune_loops(transaction: &rusqlite::Transaction<'_>, hour: i64) -> rusqlite::Result<()> {
    transaction
        .prepare_cached("DELETE FROM tool_loops_1m WHERE minute_ms < ?1")?
        .execute([hour - LOOPS_KEPT_MS])?;
    Ok(())
}

/// Registers `name(a, b)`, an SQL function merging two rollup BLOBs (used by the upserts).
fn register_merge(
    connection: &Connection,
    name: &str,
    merge: fn(&[u8], &[u8]) -> Vec<u8>,
) -> rusqlite::Result<()> {
    connection.create_scalar_function(
        name,
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |context| {
            Ok(merge(
                context.get_raw(0).as_blob()?,
                context.get_raw(1).as_blob()?,
            ))
        },
    )
}

impl Sink for SqliteStore {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn write(&mut self, events: &[ToolCallEvent]) -> Result<(), SinkError> {
        self.store(events, false)?;
        Ok(())
    }

    fn write_requests(&mut self, requests: &[RequestEvent]) -> Result<(), SinkError> {
        self.append_requests(requests)?;
        Ok(())
    }

    fn write_catalog(&mut self, catalog: &ToolCatalog) -> Result<(), SinkError> {
        SqliteStore::write_catalog(self, catalog)?;
        Ok(())
    }

    fn flush(&mut self, stats: &Stats) -> Result<(), SinkError> {
        self.write_pending()?;
        self.write_stats(stats)?;
        Ok(())
    }

    /// Writes the hourly aggregates once due, and changed counters at most every half second.
    fn tick(&mut self, stats: &Stats) -> Result<(), SinkError> {
        if self.pending.is_due() {
            self.write_pending()?;
        }
        let stats_due = self.stats_written.is_none_or(|(written, at)| {
            written != *stats && at.elapsed() >= aggregate::HOURLY_DELAY
        });
        if stats_due {
            self.write_stats(stats)?;
        }
        Ok(())
    }
}
