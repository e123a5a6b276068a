//! Sessions of sessionless callers (MCP 2026-07-28, stateless HTTP). Their calls arrive with
//! the caller's derived key (`d-` and 16 hex digits, see `capture`) as session id; the store
//! replaces it, as it writes them, with a session of that key: the key's latest session while
//! the pause since its last call is at most the idle gap, else a new one, `<key>-<start in
//! unix ms, hex>`. A call whose W3C `traceparent` carries a trace id seen in the last day joins
//! that trace's session, whatever its key (a client that reconnected with other headers,
//! refreshed its token, or restarted) and however long the pause; the caller's key then
//! continues it. Within a batch, an untraced call close enough to its key's previous one is
//! placed without a statement.
//!
//! The state is the database's `session_keys` table (a row per key and per trace id: its
//! session and last call), so every writer of one database (replicas on PostgreSQL) continues
//! the same sessions. Each row is updated by one atomic upsert, outside the batch's
//! transaction on PostgreSQL (no lock is held across keys, so replicas cannot deadlock).

use crate::clock::Stopwatch;
use std::{borrow::Cow, collections::HashMap, time::Duration};

use crate::event::{RequestEvent, ToolCallEvent};

/// How long a trace id (and a key) is remembered after its last call, unless the idle gap is
/// longer.
const REMEMBERED: Duration = Duration::from_secs(24 * 3600);

/// How often rows older than that are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The idle gap that keeps a row's session whatever the pause (trace ids).
const FOREVER_MS: i64 = 1 << 60;

/// A row the store writes whose session may be assigned here.
pub(crate) trait Sessioned: Clone {
    fn ts_ms(&self) -> i64;
    fn session_id(&self) -> Option<&str>;
    fn set_session_id(&mut self, session: String);
    fn traceparent(&self) -> Option<&str>;
}

macro_rules! sessioned {
    ($event:ty) => {
        impl Sessioned for $event {
            fn ts_ms(&self) -> i64 {
                self.ts_ms
            }
            fn session_id(&self) -> Option<&str> {
                self.session_id.as_deref()
            }
            fn set_session_id(&mut self, session: String) {
                self.session_id = Some(session);
            }
            fn traceparent(&self) -> Option<&str> {
                self.traceparent.as_deref()
            }
        }
    };
}
sessioned!(ToolCallEvent);
sessioned!(RequestEvent);

/// The `session_keys` table of one database.
pub(crate) trait SessionTable {
    type Error;
    /// The session of row `key`, if any.
    fn session_of(&mut self, key: &str) -> Result<Option<String>, Self::Error>;
    /// Upserts row `key` for a call at `ts_ms`: it keeps its session unless `take` or its last
    /// call is more than `idle_ms` before, in which case it gets `candidate`. Returns the
    /// row's session.
    fn upsert(
        &mut self,
        key: &str,
        candidate: &str,
        ts_ms: i64,
        take: bool,
        idle_ms: i64,
    ) -> Result<String, Self::Error>;
    /// Deletes rows whose last call is before `before_ms`.
    fn prune(&mut self, before_ms: i64) -> Result<(), Self::Error>;
}

/// Assigns sessions to a store's sessionless rows.
pub(super) struct Sessions {
    idle: Duration,
    pruned: Option<Stopwatch>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            idle: crate::Config::DEFAULT_SESSION_IDLE,
            pruned: None,
        }
    }
}

impl Sessions {
    pub(super) fn set_idle(&mut self, idle: Duration) {
        self.idle = idle;
    }

    /// `events` with each sessionless row's key replaced by its session (borrowed when there
    /// is none).
    pub(super) fn assign<'e, E: Sessioned, T: SessionTable>(
        &mut self,
        table: &mut T,
        events: &'e [E],
    ) -> Result<Cow<'e, [E]>, T::Error> {
        let assigned = place(self.idle, table, events)?;
        if matches!(assigned, Cow::Owned(_))
            && self.pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY)
        {
            let newest = assigned.iter().map(Sessioned::ts_ms).max().unwrap_or(0);
            table.prune(prune_before(self.idle, newest))?;
            self.pruned = Some(Stopwatch::start());
        }
        Ok(assigned)
    }
}

/// The `last_ms` before which `session_keys` rows are no longer needed once calls up to
/// `newest_ms` are stored: a day (or the idle gap, if longer) before it.
pub(crate) fn prune_before(idle: Duration, newest_ms: i64) -> i64 {
    let kept = i64::try_from(idle.max(REMEMBERED).as_millis()).unwrap_or(FOREVER_MS);
    newest_ms.saturating_sub(kept)
}

/// `events` with each sessionless row's key replaced by its session (borrowed when there is
/// none), with `idle` as the gap that ends a session; reads no clock.
pub(crate) fn place<'e, E: Sessioned, T: SessionTable>(
    idle: Duration,
    table: &mut T,
    events: &'e [E],
) -> Result<Cow<'e, [E]>, T::Error> {
    if !events
        .iter()
        .any(|event| event.session_id().is_some_and(is_derived_key))
    {
        return Ok(Cow::Borrowed(events));
    }
    let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(FOREVER_MS);
    let mut assigned = events.to_vec();
    // The keys this batch touched: their session and latest call, and the latest call
    // stored. An untraced call within the gap of its key's latest one in the batch needs
    // no statement; each key's latest call is stored before the key is read again and at
    // the end.
    let mut touched: HashMap<String, Touched> = HashMap::new();
    for event in &mut assigned {
        let Some(key) = event
            .session_id()
            .filter(|id| is_derived_key(id))
            .map(str::to_owned)
        else {
            continue;
        };
        let ts_ms = event.ts_ms();
        let trace = event
            .traceparent()
            .and_then(trace_id)
            .map(|id| format!("t-{id}"));
        if trace.is_none()
            && let Some(known) = touched.get_mut(&key)
            && ts_ms - known.last_ms <= idle_ms
        {
            known.last_ms = known.last_ms.max(ts_ms);
            event.set_session_id(known.session.clone());
            continue;
        }
        if let Some(known) = touched.get(&key) {
            known.store(table, &key, idle_ms)?;
        }
        let traced = match &trace {
            Some(trace) => table.session_of(trace)?,
            None => None,
        };
        let candidate = traced
            .clone()
            .unwrap_or_else(|| format!("{key}-{:x}", ts_ms.max(0)));
        let mut session = table.upsert(&key, &candidate, ts_ms, traced.is_some(), idle_ms)?;
        if let Some(trace) = &trace {
            // Another writer may have given the trace a session meanwhile: it wins.
            session = table.upsert(trace, &session, ts_ms, false, FOREVER_MS)?;
        }
        event.set_session_id(session.clone());
        touched.insert(
            key,
            Touched {
                session,
                last_ms: ts_ms,
                stored_ms: ts_ms,
            },
        );
    }
    for (key, known) in &touched {
        known.store(table, key, idle_ms)?;
    }
    Ok(Cow::Owned(assigned))
}

/// A key a batch touched.
struct Touched {
    session: String,
    last_ms: i64,
    stored_ms: i64,
}

impl Touched {
    /// Stores the key's latest call when it is later than the one stored.
    fn store<T: SessionTable>(
        &self,
        table: &mut T,
        key: &str,
        idle_ms: i64,
    ) -> Result<(), T::Error> {
        if self.last_ms > self.stored_ms {
            table.upsert(key, &self.session, self.last_ms, false, idle_ms)?;
        }
        Ok(())
    }
}

/// Whether `session` is a derived caller key (`d-` and 16 lowercase hex digits, as `capture`
/// makes them), not a protocol session or an assigned session.
pub(crate) fn is_derived_key(session: &str) -> bool {
    session.len() == 18
        && session.starts_with("d-")
        && session[2..]
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// The trace id of a valid W3C `traceparent` (`{version}-{trace id}-{parent id}-{flags}`,
/// lowercase hex; version `ff`, an all-zero trace id or anything malformed give `None`).
fn trace_id(traceparent: &str) -> Option<&str> {
    let value = traceparent.trim_matches([' ', '\t']);
    let bytes = value.as_bytes();
    let hex = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|part| part.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    };
    let fits = match value.get(..2) {
        Some("ff") | None => false,
        Some("00") => bytes.len() == 55,
        Some(_) => bytes.len() == 55 || (bytes.len() > 55 && bytes[55] == b'-'),
    };
    let valid = fits
        && hex(0..2)
        && bytes[2] == b'-'
        && hex(3..35)
        && bytes[35] == b'-'
        && hex(36..52)
        && bytes[52] == b'-'
        && hex(53..55);
    valid
        .then(|| &value[3..35])
        .filter(|trace| trace.bytes().any(|b| b != b'0'))
}

/// `session_keys` of a SQLite connection (in the batch's write transaction).
#[cfg(feature = "sqlite")]
pub(super) struct SqliteSessions<'c>(pub &'c rusqlite::Connection);

/// Upserts a row (see [`SessionTable::upsert`]): `?4` take, `?5` the idle gap.
const UPSERT_SQLITE: &str = "INSERT INTO session_keys (key, session_id, last_ms) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET session_id = CASE WHEN ?4 OR last_ms < excluded.last_ms - ?5 THEN excluded.session_id ELSE session_id END, last_ms = CASE WHEN ?4 AND session_id <> excluded.session_id THEN excluded.last_ms ELSE max(last_ms, excluded.last_ms) END RETURNING session_id";

#[cfg(feature = "sqlite")]
impl SessionTable for SqliteSessions<'_> {
    type Error = rusqlite::Error;

    fn session_of(&mut self, key: &str) -> rusqlite::Result<Option<String>> {
        use rusqlite::OptionalExtension;
        self.0
            .prepare_cached("SELECT session_id FROM session_keys WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()
    }

    fn upsert(
        &mut self,
        key: &str,
        candidate: &str,
        ts_ms: i64,
        take: bool,
        idle_ms: i64,
    ) -> rusqlite::Result<String> {
        self.0.prepare_cached(UPSERT_SQLITE)?.query_row(
            rusqlite::params![key, candidate, ts_ms, take, idle_ms],
            |row| row.get(0),
        )
    }

    fn prune(&mut self, before_ms: i64) -> rusqlite::Result<()> {
        self.0
            .prepare_cached("DELETE FROM session_keys WHERE last_ms < ?1")?
            .execute([before_ms])
            .map(drop)
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::{
        super::{
            SqliteStore,
            request_tests::{call, now_ms, request},
        },
        *,
    };
    use crate::event::{Method, RequestStatus};

    const KEY: &str = "d-0123456789abcdef";
    const OTHER_KEY: &str = "d-fedcba9876543210";
    const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let mut store = SqliteStore::open(dir.path().join("sessions.db")).unwrap();
        store.set_session_idle(Duration::from_secs(1));
        store
    }

    fn traced(mut event: ToolCallEvent) -> ToolCallEvent {
        event.traceparent = Some(TRACE.into());
        event
    }

    /// The stored sessions of calls `ids`, in that order.
    fn sessions(store: &SqliteStore, ids: &[&str]) -> Vec<String> {
        ids.iter()
            .map(|id| {
                store
                    .connection()
                    .query_row(
                        "SELECT session_id FROM tool_calls WHERE id = ?1 UNION ALL SELECT session_id FROM requests WHERE id = ?1",
                        [id],
                        |row| row.get(0),
                    )
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn sessionless_calls_split_after_the_idle_gap_and_protocol_sessions_keep_their_ids() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let t = now_ms();
        store
            .append(&[call("a", t, KEY), call("b", t + 900, KEY)])
            .unwrap();
        store
            .append(&[
                call("c", t + 2_000, KEY),
                call("p", t + 9_000, "mcp-session-1"),
            ])
            .unwrap();
        store
            .append_requests(&[request(
                "r",
                t + 2_500,
                Method::ToolsList,
                None,
                KEY,
                RequestStatus::Ok,
            )])
            .unwrap();
        let [a, b, c, p, r] =
            <[String; 5]>::try_from(sessions(&store, &["a", "b", "c", "p", "r"])).unwrap();
        assert_eq!(
            a,
            format!("{KEY}-{t:x}"),
            "the key and the first call's start"
        );
        assert_eq!(a, b, "900 ms apart: one session");
        assert_ne!(b, c, "1.1 s apart: a new session");
        assert_eq!(c, format!("{KEY}-{:x}", t + 2_000));
        assert_eq!(r, c, "a request continues the session of the calls");
        assert_eq!(p, "mcp-session-1");
        let timeline = store.session(&c, 10).unwrap();
        assert_eq!(
            (timeline.start_ms, timeline.calls, timeline.requests),
            (Some(t + 2_000), 1, 1)
        );
    }

    #[test]
    fn a_batch_splits_at_the_gap_and_stores_each_key_s_latest_call_for_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let t = now_ms();
        store
            .append(&[
                call("a", t, KEY),
                call("b", t + 900, KEY),
                call("c", t + 2_500, KEY),
                call("d", t + 2_600, KEY),
            ])
            .unwrap();
        // 950 ms after the batch's last call of the key (1,050 after the one before).
        store.append(&[call("e", t + 3_550, KEY)]).unwrap();
        let found = sessions(&store, &["a", "b", "c", "d", "e"]);
        assert_eq!(found[0], found[1]);
        assert_ne!(found[1], found[2]);
        assert_eq!(found[2], format!("{KEY}-{:x}", t + 2_500));
        assert_eq!(found[3], found[2]);
        assert_eq!(found[4], found[2], "the batch stored its latest call");
    }

    #[test]
    fn a_trace_id_joins_calls_of_another_key_after_a_pause_and_that_key_continues_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let t = now_ms();
        store.append(&[traced(call("a", t, KEY))]).unwrap();
        store
            .append(&[
                traced(call("b", t + 10_000, OTHER_KEY)),
                call("c", t + 10_500, OTHER_KEY),
                call("d", t + 10_600, KEY),
            ])
            .unwrap();
        let found = sessions(&store, &["a", "b", "c", "d"]);
        assert_eq!(found[0], format!("{KEY}-{t:x}"));
        assert_eq!(
            found[1], found[0],
            "the same trace 10 s later, from another key"
        );
        assert_eq!(
            found[2], found[0],
            "the other key continues the trace's session"
        );
        assert_ne!(
            found[3], found[0],
            "the first key's own pause (10.6 s) still ends its session"
        );
    }

    #[test]
    fn two_stores_on_one_file_continue_each_other_s_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let (mut first, mut second) = (store(&dir), store(&dir));
        let t = now_ms();
        first.append(&[call("a", t, KEY)]).unwrap();
        second.append(&[call("b", t + 500, KEY)]).unwrap();
        first.append(&[call("c", t + 3_000, KEY)]).unwrap();
        let found = sessions(&first, &["a", "b", "c"]);
        assert_eq!(found[0], found[1]);
        assert_ne!(found[1], found[2]);
    }

    #[test]
    fn remembered_keys_and_traces_are_pruned_a_day_after_their_last_call() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let t = now_ms();
        store
            .append(&[traced(call("old", t - 2 * 86_400_000, OTHER_KEY))])
            .unwrap();
        // A new store prunes on its first batch.
        let mut store = self::store(&dir);
        store.append(&[call("new", t, KEY)]).unwrap();
        let keys: Vec<String> = store
            .connection()
            .prepare("SELECT key FROM session_keys")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, [KEY]);
    }

    #[test]
    fn only_capture_s_derived_keys_are_sessionless() {
        assert!(is_derived_key("d-0123456789abcdef"));
        for other in [
            "d-0123456789abcdef-18c3a5b2e00",
            "d-0123456789ABCDEF",
            "d-0123456789abcde",
            "c-0123456789abcdef",
            "4c0b5a47-0d89-4b6b-9d0b-1c7d1a2b3c4d",
        ] {
            assert!(!is_derived_key(other), "{other}");
        }
    }

    #[test]
    fn a_trace_id_comes_from_a_valid_traceparent_only() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(valid), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(
            trace_id("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for invalid in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_id(invalid), None, "{invalid}");
        }
    }
}
