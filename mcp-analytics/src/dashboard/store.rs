//! The analytics database the dashboard reads and the collector writes: a SQLite file or a
//! PostgreSQL database behind one set of calls.

use std::path::PathBuf;

#[cfg(feature = "postgres")]
use crate::store::PgStore;
use crate::{
    Database, Error, RequestEvent, ToolCallEvent,
    payments::report::PaymentsSummary,
    store::{CallRow, Overview, SessionTimeline, SqliteStore},
};

/// An opened analytics database.
pub(crate) enum Store {
    Sqlite(SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(PgStore),
}

/// Why the database has no answer (the API answers 503 with this message).
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    /// The server has not created its database yet.
    #[error("no analytics database at {} yet", .0.display())]
    NoDatabase(PathBuf),
    #[error(transparent)]
    Open(Error),
    #[error(transparent)]
    Query(#[from] rusqlite::Error),
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL: {}", crate::store::describe_pg_error(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Thread(#[from] tokio::task::JoinError),
}

impl Store {
    /// Opens `database` for reading: a SQLite file must exist (the server creates it); a
    /// PostgreSQL database gets its analytics tables when it lacks them.
    pub(crate) fn open_existing(database: &Database) -> Result<Self, QueryError> {
        if let Database::Sqlite(path) = database
            && !path.exists()
        {
            return Err(QueryError::NoDatabase(path.clone()));
        }
        Self::open(database).map_err(QueryError::Open)
    }

    /// Opens (creating if needed) `database`.
    /// See [`SqliteStore::set_session_idle`].
    pub(crate) fn set_session_idle(&mut self, idle: std::time::Duration) {
        match self {
            Store::Sqlite(store) => store.set_session_idle(idle),
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.set_session_idle(idle),
        }
    }

    pub(crate) fn open(database: &Database) -> Result<Self, Error> {
        match database {
            Database::Sqlite(path) => Ok(Store::Sqlite(SqliteStore::open(path)?)),
            #[cfg(feature = "postgres")]
            Database::Postgres(url) => Ok(Store::Postgres(PgStore::open(url)?)),
            #[cfg(not(feature = "postgres"))]
            Database::Postgres(_) => Err(Error::Database {
                database: database.clone(),
                reason: crate::database::NO_POSTGRES_FEATURE.into(),
            }),
        }
    }

    /// Whether the connection broke (so the store should be opened again).
    pub(crate) fn is_broken(&self) -> bool {
        match self {
            Store::Sqlite(_) => false,
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.is_closed(),
        }
    }

    /// See [`SqliteStore::overview`].
    pub(crate) fn overview(
        &self,
        since_ms: i64,
        bucket_ms: i64,
        server: Option<&str>,
    ) -> Result<Overview, QueryError> {
        Ok(match self {
            Store::Sqlite(store) => store.overview(since_ms, bucket_ms, server)?,
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.overview(since_ms, bucket_ms, server)?,
        })
    }

    /// See [`SqliteStore::recent_errors`].
    pub(crate) fn recent_errors(
        &self,
        since_ms: i64,
        limit: usize,
        server: Option<&str>,
    ) -> Result<Vec<CallRow>, QueryError> {
        Ok(match self {
            Store::Sqlite(store) => store.recent_errors(since_ms, limit, server)?,
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.recent_errors(since_ms, limit, server)?,
        })
    }

    /// See [`SqliteStore::session`].
    pub(crate) fn session(
        &self,
        session_id: &str,
        limit: usize,
    ) -> Result<SessionTimeline, QueryError> {
        Ok(match self {
            Store::Sqlite(store) => store.session(session_id, limit)?,
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.session(session_id, limit)?,
        })
    }

    /// The alerts firing and those resolved since `since_ms`.
    pub(crate) fn alerts(
        &self,
        since_ms: i64,
    ) -> Result<Vec<super::alerts::AlertView>, QueryError> {
        Ok(match self {
            Store::Sqlite(store) => super::alerts::recent(store.connection(), since_ms)?,
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => super::alerts::recent(store, since_ms)?,
        })
    }

    /// Revenue, conversion and payment health since `since_ms`.
    pub(crate) fn payments(&self, since_ms: i64) -> Result<PaymentsSummary, QueryError> {
        Ok(match self {
            Store::Sqlite(store) => PaymentsSummary::read(store.connection(), since_ms)?,
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.payments(since_ms)?,
        })
    }

    /// Stores `events` (skipping ids already stored); returns how many were new.
    pub(crate) fn append(&mut self, events: &[ToolCallEvent]) -> Result<usize, QueryError> {
        Ok(match self {
            Store::Sqlite(store) => store.append(events)?,
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.append(events)?,
        })
    }

    /// Stores `requests` (skipping ids already stored); returns how many were new.
    pub(crate) fn append_requests(
        &mut self,
        requests: &[RequestEvent],
    ) -> Result<usize, QueryError> {
        Ok(match self {
            Store::Sqlite(store) => store.append_requests(requests)?,
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.append_requests(requests)?,
        })
    }
}
