//! Analytics on Cloudflare D1 (SQLite reached asynchronously, without custom SQL functions or
//! interactive transactions, written by many isolates at once): the same rows and rollups as
//! [`SqliteStore`](crate::store::SqliteStore) stores for the same events, and the same readers.
//!
//! - [`write()`] stores a request's calls and requests in two round trips: one [`Executor::batch`]
//!   reading what the batch depends on (stored ids, session keys, the hours' admitted names,
//!   the rollup rows it adds to), one writing everything atomically. The write validates every
//!   read it used (optimistic concurrency), so a batch that raced another isolate fails as a
//!   whole and is planned again (see `writes`). [`write_catalog`] stores a tool catalogue.
//! - `read` runs a synchronous reader over a replay cache (see `replay`); [`report`],
//!   [`overview`], [`recent_errors`], [`recent_sessions`] and [`session`] are the dashboard's.
//! - [`migration`] is the schema to apply with `wrangler d1 migrations apply`.
//!
//! Nothing here needs threads, and time comes from `crate::clock` (JavaScript's on wasm32).

mod reads;
mod replay;
mod schema;
#[cfg(all(test, feature = "sqlite"))]
pub(crate) mod tests;
mod writes;

// For the Worker's dashboard (payments, alerts), which runs readers beyond the ones below.
#[allow(unused_imports)]
pub(crate) use reads::read;
pub use reads::{overview, recent_errors, recent_sessions, report, session};
pub use schema::migration;
pub use writes::{Written, write, write_catalog};

/// A value bound to or read from D1.
///
/// D1 binds JavaScript values: an integer travels as an `f64`, exact only within
/// ±(2^53 − 1) ([`MAX_SAFE_INT`]). Every integer the writes bind is within it (timestamps and
/// durations in ms and µs are; larger durations and sums are stored as [`MAX_SAFE_INT`];
/// 64-bit fingerprints are bound in two halves and joined in SQL). The readers bind
/// `i64::MAX` as an open upper bound, which stays one as a float. An executor reading a whole
/// number back as a float may answer [`Value::Real`]: readers accept it as an integer.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer within ±[`MAX_SAFE_INT`].
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// A BLOB (an `ArrayBuffer` on D1).
    Blob(Vec<u8>),
}

/// The largest integer a JavaScript number holds exactly (2^53 − 1).
pub const MAX_SAFE_INT: i64 = (1 << 53) - 1;

impl From<Option<&str>> for Value {
    fn from(text: Option<&str>) -> Self {
        text.map_or(Value::Null, |text| Value::Text(text.to_owned()))
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

/// One SQL statement with positional parameters (`?1`, `?2`, …).
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// The SQL text.
    pub sql: String,
    /// The values of `?1`, `?2`, ….
    pub params: Vec<Value>,
}

impl Statement {
    /// `sql` with `params`.
    pub fn new(sql: impl Into<String>, params: Vec<Value>) -> Self {
        Self {
            sql: sql.into(),
            params,
        }
    }
}

/// What one statement of a batch gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// The rows it returned, columns in order.
    pub rows: Vec<Vec<Value>>,
    /// How many rows it changed (D1's `meta.changes`).
    pub changes: u64,
}

/// A failed D1 call, with D1's message.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("D1: {message}")]
pub struct D1Error {
    message: String,
}

impl D1Error {
    /// An error with `message` (D1's, or this module's).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a batch failed on a constraint: how a write that lost a race to another isolate
    /// fails (see `writes`), so it is planned again.
    pub(crate) fn is_lost_race(&self) -> bool {
        self.message.contains("constraint failed")
    }
}

/// A D1-like database: runs statements in batches, each atomically (one implicit
/// transaction; a failing statement rolls the whole batch back) and in order.
///
/// Its futures need not be `Send` (on wasm32 they are not).
#[allow(async_fn_in_trait)]
pub trait Executor {
    /// Runs `statements` in order in one transaction; one [`Outcome`] per statement.
    async fn batch(&self, statements: &[Statement]) -> Result<Vec<Outcome>, D1Error>;
}
