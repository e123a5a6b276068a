//! The analytics database as the agent-facing server reads it: opened read-only (SQLite
//! read-only, PostgreSQL in read-only transactions), one query at a time on a blocking thread.

use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use mcp_analytics::{
    Database,
    payments::report::PaymentsSummary,
    store::{CallRow, Overview, PgStore, Report, SessionSummary, SessionTimeline, SqliteStore},
};

/// An opened, read-only store.
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Runs every call on the one read-only store of `database` (opened again when a PostgreSQL
/// connection broke), one after the other.
#[derive(Clone)]
pub struct Reader {
    database: Arc<Database>,
    store: Arc<Mutex<Store>>,
}

impl Reader {
    /// Opens `database`, which must exist (the server it analyses creates it).
    pub fn open(database: Database) -> anyhow::Result<Self> {
        let store = Store::open(&database)?;
        Ok(Self {
            database: Arc::new(database),
            store: Arc::new(Mutex::new(store)),
        })
    }

    /// Runs `query` on a blocking thread.
    pub async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let reader = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = reader
                .store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if store.is_broken() {
                *store = Store::open(&reader.database)?;
            }
            query(&store)
        })
        .await?
    }
}

impl Store {
    fn open(database: &Database) -> anyhow::Result<Self> {
        match database {
            Database::Sqlite(path) => {
                if !path.exists() {
                    bail!(
                        "no analytics database at {} (set --db to the server's MCP_ANALYTICS_DB)",
                        path.display()
                    );
                }
                Ok(Store::Sqlite(SqliteStore::open_read_only(path)?))
            }
            Database::Postgres(url) => Ok(Store::Postgres(PgStore::open_read_only(url)?)),
            other => bail!("unsupported database {other}"),
        }
    }

    fn is_broken(&self) -> bool {
        match self {
            Store::Sqlite(_) => false,
            Store::Postgres(store) => store.is_closed(),
        }
    }

    /// The report (figures per tool, client, error kind, …) since `since_ms`.
    pub fn report(&self, since_ms: i64, tool: Option<&str>) -> anyhow::Result<Report> {
        Ok(match self {
            Store::Sqlite(store) => store.report(since_ms, tool)?,
            Store::Postgres(store) => store.report(since_ms, tool)?,
        })
    }

    /// The dashboard's overview since `since_ms`, in one chart bucket per day.
    pub fn overview(&self, since_ms: i64) -> anyhow::Result<Overview> {
        const DAY_MS: i64 = 86_400_000;
        Ok(match self {
            Store::Sqlite(store) => store.overview(since_ms, DAY_MS, None)?,
            Store::Postgres(store) => store.overview(since_ms, DAY_MS, None)?,
        })
    }

    /// The latest failed calls (of `tool`, else also failed requests), newest first.
    pub fn errors(
        &self,
        since_ms: i64,
        limit: usize,
        tool: Option<&str>,
    ) -> anyhow::Result<Vec<CallRow>> {
        Ok(match (self, tool) {
            (Store::Sqlite(store), None) => store.recent_errors(since_ms, limit, None)?,
            (Store::Sqlite(store), Some(tool)) => store.tool_errors(since_ms, limit, tool)?,
            (Store::Postgres(store), None) => store.recent_errors(since_ms, limit, None)?,
            (Store::Postgres(store), Some(tool)) => store.tool_errors(since_ms, limit, tool)?,
        })
    }

    /// The sessions whose last call or request ended last.
    pub fn sessions(&self, since_ms: i64, limit: usize) -> anyhow::Result<Vec<SessionSummary>> {
        Ok(match self {
            Store::Sqlite(store) => store.recent_sessions(since_ms, limit)?,
            Store::Postgres(store) => store.recent_sessions(since_ms, limit)?,
        })
    }

    /// One session's figures and its first `limit` calls and requests.
    pub fn session(&self, session_id: &str, limit: usize) -> anyhow::Result<SessionTimeline> {
        Ok(match self {
            Store::Sqlite(store) => store.session(session_id, limit)?,
            Store::Postgres(store) => store.session(session_id, limit)?,
        })
    }

    /// Revenue, conversion and payment health since `since_ms`.
    pub fn payments(&self, since_ms: i64) -> anyhow::Result<PaymentsSummary> {
        Ok(match self {
            Store::Sqlite(store) => PaymentsSummary::read(store.connection(), since_ms)
                .context("reading the payment events")?,
            Store::Postgres(store) => store
                .payments(since_ms)
                .context("reading the payment events")?,
        })
    }
}
