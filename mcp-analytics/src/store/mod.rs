//! The embedded store: one SQLite file (WAL) holding raw `tool_calls`, the per-minute and
//! quarter-hour rollups `tool_calls_1m` and `tool_calls_15m` (written in the same transaction),
//! the hourly rollups (per tool, and per client; written within half a second, see
//! `aggregate`), the other requests and
//! their rollups (`requests`) and the recorder's counters. With the `postgres` feature,
//! `PgStore` keeps the same tables in PostgreSQL for many writers (see `pg`); both are read by
//! the same queries (see `source`), which compile without SQLite (feature `sqlite`) so that
//! another database can answer them too (`summary`, `report`, `overview` and `views` hold
//! the readers behind the stores' query methods).

// Without `sqlite` the readers and the rollup code wait for another `Source` and writer.
#![cfg_attr(not(feature = "sqlite"), allow(dead_code))]

pub(crate) mod aggregate;
pub(crate) mod allowance;
pub(crate) mod client_names;
#[cfg(all(test, feature = "sqlite"))]
mod client_tests;
mod clients;
pub(crate) mod context_cost;
mod histogram;
pub(crate) mod overview;
#[cfg(feature = "postgres")]
mod pg;
mod quality;
pub(crate) mod report;
mod request_report;
#[cfg(all(test, feature = "sqlite"))]
pub(crate) mod request_tests;
pub(crate) mod requests;
pub(crate) mod rollup;
#[cfg(all(test, feature = "sqlite"))]
mod schema_tests;
pub(crate) mod sessions;
mod sketch;
pub(crate) mod source;
#[cfg(feature = "sqlite")]
mod sqlite;
pub(crate) mod summary;
pub(crate) mod unknown;
pub(crate) mod views;

pub use client_names::{CLIENTS_PER_HOUR, OTHER_CLIENTS};
pub use clients::{ClientReport, MissingTool, MissingToolClient, ProtocolReport};
pub use histogram::LatencyHistogram;
pub use overview::Overview;
pub use quality::ParamFailure;

pub use crate::outcome::ParamProblem;
#[cfg(feature = "postgres")]
pub use pg::PgStore;
#[cfg(feature = "postgres")]
#[cfg(feature = "dashboard")]
pub(crate) use pg::describe as describe_pg_error;
pub use report::{ErrorKind, Report, Sessions, ToolReport, UserUsage};
pub use request_report::{MethodReport, PromptReport, ResourceReport, Usage};
pub use requests::{OTHER_TARGETS, TARGETS_PER_HOUR};
pub use sketch::DistinctSketch;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use summary::ToolSummary;
pub use unknown::{OTHER_UNKNOWN_TOOLS, UNKNOWN_TOOLS_PER_HOUR};
pub use views::{CallRow, SeriesPoint, SessionSummary, SessionTimeline};

/// How long `tool_loops_1m` keeps its minutes (the runaway-loop rule looks at most this far
/// back).
pub(crate) const LOOPS_KEPT_MS: i64 = 86_400_000;
