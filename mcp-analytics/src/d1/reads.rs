//! The store's readers on D1: each runs over a [`Replay`] (see `replay`) until it has every
//! answer, so the dashboard's figures come from the same code as natively. A reader takes one
//! round trip, and one more per step whose statements depend on earlier answers: the report,
//! the overview and the session views take one in all (measured on the tests' data).

use super::{
    D1Error, Executor,
    replay::{self, Replay},
};
use crate::store::{
    Overview, Report, SessionSummary, SessionTimeline, overview::overview as read_overview,
    report::report as read_report, views,
};

/// Runs `reader` (any of the store's readers over a [`Source`](crate::store::source::Source))
/// against the database behind `executor`.
pub(crate) async fn read<X: Executor, T>(
    executor: &X,
    reader: impl FnMut(&Replay) -> Result<T, D1Error>,
) -> Result<T, D1Error> {
    replay::run(executor, &mut Replay::default(), reader).await
}

/// The usage report since `since_ms`, optionally of one tool and one server (see
/// [`SqliteStore::report`](crate::store::SqliteStore::report)).
pub async fn report<X: Executor>(
    executor: &X,
    since_ms: i64,
    tool: Option<&str>,
    server: Option<&str>,
) -> Result<Report, D1Error> {
    read(executor, |source| {
        read_report(source, since_ms, tool, server)
    })
    .await
}

/// The dashboard's overview (see
/// [`SqliteStore::overview`](crate::store::SqliteStore::overview)).
pub async fn overview<X: Executor>(
    executor: &X,
    since_ms: i64,
    bucket_ms: i64,
    server: Option<&str>,
) -> Result<Overview, D1Error> {
    read(executor, |source| {
        read_overview(source, since_ms, bucket_ms, server)
    })
    .await
}

/// The latest failed calls and requests since `since_ms`, newest first, optionally of one
/// server or one tool.
pub async fn recent_errors<X: Executor>(
    executor: &X,
    since_ms: i64,
    limit: usize,
    server: Option<&str>,
    tool: Option<&str>,
) -> Result<Vec<views::CallRow>, D1Error> {
    read(executor, |source| {
        views::recent_errors(source, since_ms, limit, server, tool)
    })
    .await
}

/// The `limit` sessions active since `since_ms` that ended last.
pub async fn recent_sessions<X: Executor>(
    executor: &X,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<SessionSummary>, D1Error> {
    read(executor, |source| {
        views::recent_sessions(source, since_ms, limit)
    })
    .await
}

/// One session's timeline: its first `limit` calls and requests.
pub async fn session<X: Executor>(
    executor: &X,
    session_id: &str,
    limit: usize,
) -> Result<SessionTimeline, D1Error> {
    read(executor, |source| views::session(source, session_id, limit)).await
}
