//! Storing calls and requests on D1: the rows and every rollup the native store writes
//! (`tool_calls_1m`, `tool_calls_15m`, `tool_calls_1h`, `client_calls_1h`, `user_calls_1h`,
//! `user_details`, `tool_loops_1m`, `requests_1m`, `requests_1h`, `session_keys`), hourly ones
//! with every batch (nothing survives between a Worker's requests).
//!
//! D1 has no interactive transactions, so a batch is planned from a snapshot and written with
//! optimistic concurrency:
//! 1. **Read** (one round trip, more only when a step depends on an earlier answer, see
//!    `replay`): which ids are stored, the `session_keys` rows of the batch's callers and
//!    traces, the names each touched hour admitted (unknown tools, clients, request targets),
//!    and the BLOBs of the rollup rows the batch adds to.
//! 2. **Plan** in Rust with the store's own code: sessions, allowances, aggregates; BLOBs merged
//!    with their encodings.
//! 3. **Write** (one round trip, one atomic `batch`), where every statement fails unless what
//!    it was planned from still holds: rows are inserted with a plain `INSERT` (a row stored
//!    meanwhile breaks the `UNIQUE` id); a rollup row is upserted with its counts added in SQL
//!    and its BLOBs set only if its latency histogram is the one read (`CASE … END` gives NULL
//!    into a NOT NULL column otherwise — a histogram only grows, so it identifies the row's
//!    state); every `session_keys` row read is set (or checked) only if it is as read; and an
//!    hour that admitted a new name checks that it holds no more names than its allowance.
//!    A failed check rolls the batch back and the batch is planned again from a fresh read,
//!    up to `ATTEMPTS` (8) times. (Any constraint failure counts as such a conflict: a
//!    statement failing for another reason shows up, after the retries, as the last
//!    conflict's message.)
//!
//! So the stored result is the one of a single native writer storing the batches in their
//! commit order: counts are exact, the per-hour caps (100 unknown tools, clients, targets)
//! hold, and sessions continue across isolates. What differs from a native writer:
//! `session_keys` is pruned with every batch that has sessionless calls (natively every ten
//! minutes; only rows a day older than the batch's newest call go), a `session_keys` row
//! pruned by another isolate between the read and the write is written back by this one,
//! and a writer never leaves hourly aggregates for `rollup_dirty` (it writes them with
//! every batch, as the PostgreSQL store does). Each retry costs two more round trips.

use std::{
    borrow::Cow,
    collections::{BTreeSet, HashMap, HashSet},
    time::Duration,
};

use super::{
    D1Error, Executor, MAX_SAFE_INT, Statement, Value,
    replay::{self, Replay},
};
use crate::{
    RequestEvent, Status, ToolCallEvent,
    catalog::ToolCatalog,
    event::Method,
    schema,
    store::{
        LOOPS_KEPT_MS,
        aggregate::{self, HOUR_MS, Pending},
        allowance::hour_of,
        client_names::{self, CLIENTS_PER_HOUR, ClientNames, OTHER_CLIENTS},
        context_cost,
        requests::{self, OTHER_TARGETS, RequestTargets, TARGETS_PER_HOUR},
        rollup::tables::{BUCKETED, CLIENTS, HOURS, REQUEST_HOURS, REQUEST_MINUTES, Table},
        sessions::{self, SessionTable, Sessioned},
        source::{Param, Source},
        unknown::{self, OTHER_UNKNOWN_TOOLS, UNKNOWN_TOOLS_PER_HOUR, UnknownTools},
    },
};

/// How many times a batch is planned and written before giving up on races.
const ATTEMPTS: usize = 8;

/// D1 binds at most 100 parameters per statement.
const PARAMETERS: usize = 100;

/// How many events a [`write()`] stored (the others were stored before).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// New tool calls.
    pub calls: usize,
    /// New other requests.
    pub requests: usize,
}

/// Stores `calls` and `requests` (sanitized, as the recorder hands them to a sink) and every
/// rollup they add to, as `SqliteStore::append` then `append_requests` would; events whose id
/// is stored already are skipped. `idle` is the gap that ends a sessionless caller's session
/// ([`Config::DEFAULT_SESSION_IDLE`](crate::Config::DEFAULT_SESSION_IDLE) natively).
///
/// Two round trips when nothing races (see the module's documentation); a batch that keeps
/// losing races fails after `ATTEMPTS` (8) tries with the last conflict's message.
pub async fn write<X: Executor>(
    executor: &X,
    calls: &[ToolCallEvent],
    requests: &[RequestEvent],
    idle: Duration,
) -> Result<Written, D1Error> {
    if calls.is_empty() && requests.is_empty() {
        return Ok(Written::default());
    }
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let mut cache = Replay::default();
        let plan = replay::run(executor, &mut cache, |source| {
            plan(source, calls, requests, idle)
        })
        .await?;
        if plan.statements.is_empty() {
            return Ok(plan.written);
        }
        match executor.batch(&plan.statements).await {
            Ok(_) => return Ok(plan.written),
            Err(error) if error.is_lost_race() => last = Some(error),
            Err(error) => return Err(error),
        }
    }
    let last = last.map_or_else(String::new, |error| error.message().to_owned());
    Err(D1Error::new(format!(
        "a batch lost a race to other writers {ATTEMPTS} times (last: {last})"
    )))
}

/// Stores a server version's tool catalogue (replacing the one of an earlier start), as
/// `SqliteStore::write_catalog` does: one round trip.
pub async fn write_catalog<X: Executor>(
    executor: &X,
    catalog: &ToolCatalog,
) -> Result<(), D1Error> {
    let row = context_cost::Upsert::of(catalog);
    let statement = Statement::new(
        context_cost::UPSERT,
        vec![
            row.server_name.into(),
            row.server_version.into(),
            Value::Int(row.recorded_ms),
            safe(row.list_bytes),
            safe(row.list_tokens),
            Value::Text(row.tools),
        ],
    );
    executor.batch(&[statement]).await.map(drop)
}

/// The write batch of one attempt.
struct Plan {
    statements: Vec<Statement>,
    written: Written,
}

fn plan(
    source: &Replay,
    calls: &[ToolCallEvent],
    requests: &[RequestEvent],
    idle: Duration,
) -> Result<Plan, D1Error> {
    let mut statements = Vec::new();
    let mut table = SessionRows::new(source);
    let calls = sessions::place(idle, &mut table, calls)?;
    let requests = sessions::place(idle, &mut table, requests)?;
    let written = Written {
        calls: plan_calls(source, &calls, &mut statements)?,
        requests: plan_requests(source, &requests, &mut statements)?,
    };
    statements.extend(table.writes());
    if matches!(calls, Cow::Owned(_)) || matches!(requests, Cow::Owned(_)) {
        let newest = calls
            .iter()
            .map(Sessioned::ts_ms)
            .chain(requests.iter().map(Sessioned::ts_ms))
            .max()
            .unwrap_or(0);
        statements.push(Statement::new(
            "DELETE FROM session_keys WHERE last_ms < ?1",
            vec![Value::Int(sessions::prune_before(idle, newest))],
        ));
    }
    // The checks (allowances within their limits, session keys still absent) come last,
    // after every write they look at.
    let (checks, mut statements): (Vec<_>, Vec<_>) = statements
        .into_iter()
        .partition(|statement| statement.sql.starts_with(ABORT_IF));
    statements.extend(checks);
    Ok(Plan {
        statements,
        written,
    })
}

/// The ids of `ids` already stored in `table`.
fn stored_ids(source: &Replay, table: &str, ids: &[&str]) -> Result<HashSet<String>, D1Error> {
    let mut stored = HashSet::new();
    for chunk in ids.chunks(PARAMETERS) {
        let list = (1..=chunk.len())
            .map(|index| format!("?{index}"))
            .collect::<Vec<_>>()
            .join(", ");
        let params: Vec<Param<'_>> = chunk.iter().map(|id| Param::Text(Some(id))).collect();
        stored.extend(source.rows(
            &format!("SELECT id FROM {table} WHERE id IN ({list})"),
            &params,
            |row| row.string(0),
        )?);
    }
    Ok(stored)
}

/// The first event of each id not stored yet, in order.
fn new_events<'e, E>(
    source: &Replay,
    table: &str,
    events: &'e [E],
    id: impl Fn(&E) -> &str,
) -> Result<Vec<&'e E>, D1Error> {
    let mut seen = HashSet::new();
    let ids: Vec<&str> = events
        .iter()
        .map(&id)
        .filter(|event_id| seen.insert(*event_id))
        .collect();
    let mut skip = stored_ids(source, table, &ids)?;
    Ok(events
        .iter()
        .filter(|event| skip.insert(id(event).to_owned()))
        .collect())
}

/// Plain `INSERT`s of `rows` with the columns of `insert_or_ignore` (the native statement),
/// as many rows per statement as D1's 100 parameters allow: a row stored meanwhile by another
/// writer fails the batch.
fn inserts(insert_or_ignore: &str, rows: Vec<Vec<Value>>) -> Vec<Statement> {
    let head = insert_or_ignore.replacen("INSERT OR IGNORE", "INSERT", 1);
    let head = &head[..head.find(" VALUES").expect("an INSERT … VALUES")];
    let Some(columns) = rows.first().map(Vec::len) else {
        return Vec::new();
    };
    rows.chunks(PARAMETERS / columns)
        .map(|chunk| {
            let values = (0..chunk.len())
                .map(|row| {
                    let places = (1..=columns)
                        .map(|column| format!("?{}", row * columns + column))
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!("({places})")
                })
                .collect::<Vec<_>>()
                .join(", ");
            Statement::new(format!("{head} VALUES {values}"), chunk.concat())
        })
        .collect()
}

/// A duration or sum as D1 can bind it.
fn safe(value: i64) -> Value {
    Value::Int(value.clamp(-MAX_SAFE_INT, MAX_SAFE_INT))
}

fn duration(duration_us: u64) -> Value {
    safe(i64::try_from(duration_us).unwrap_or(i64::MAX))
}

fn text(value: &Option<String>) -> Value {
    value.as_deref().into()
}

/// Plans the rows and rollups of `calls`; returns how many are new.
fn plan_calls(
    source: &Replay,
    calls: &[ToolCallEvent],
    statements: &mut Vec<Statement>,
) -> Result<usize, D1Error> {
    let fresh = new_events(source, "tool_calls", calls, |call| &call.id)?;
    let mut rows = Vec::with_capacity(fresh.len());
    let mut unknown = UnknownTools::default();
    let mut clients = ClientNames::default();
    let mut admitted_unknown = BTreeSet::new();
    let mut admitted_clients = BTreeSet::new();
    let mut rolled = Vec::with_capacity(fresh.len());
    for event in fresh {
        rows.push(vec![
            event.id.as_str().into(),
            Value::Int(event.ts_ms),
            event.server_name.as_str().into(),
            event.server_version.as_str().into(),
            event.tool.as_str().into(),
            text(&event.user_id),
            text(&event.session_id),
            text(&event.client_name),
            text(&event.client_version),
            text(&event.protocol_version),
            event.transport.as_str().into(),
            text(&event.request_id),
            duration(event.duration_us),
            event.status.as_str().into(),
            text(&event.error_type),
            text(&event.error_message),
            text(&event.params),
            text(&event.result),
            text(&event.user_email),
            text(&event.user_name),
        ]);
        let hour = hour_of(event.ts_ms);
        let server = event.server_name.as_str();
        let name = unknown.rollup_name(event, &mut |hour, server| {
            unknown::stored(source, hour, server)
        })?;
        if event.status == Status::UnknownTool
            && name != OTHER_UNKNOWN_TOOLS
            && !unknown::stored(source, hour, server)?.contains(name)
        {
            admitted_unknown.insert((hour, server));
        }
        let client = clients.rollup_client(event, &mut |hour, server| {
            client_names::stored(source, hour, server)
        })?;
        if client.0 != OTHER_CLIENTS
            && !client_names::stored(source, hour, server)?.contains(&client_names::key(client))
        {
            admitted_clients.insert((hour, server));
        }
        rolled.push((event, name, client));
    }
    statements.extend(inserts(schema::INSERT_CALL, rows));
    for (hour, server) in admitted_unknown {
        statements.push(abort_if_more(
            unknown::STORED_SQL,
            vec![Value::Int(hour), server.into(), OTHER_UNKNOWN_TOOLS.into()],
            UNKNOWN_TOOLS_PER_HOUR,
        ));
    }
    for (hour, server) in admitted_clients {
        statements.push(abort_if_more(
            client_names::STORED_SQL,
            vec![Value::Int(hour), server.into(), OTHER_CLIENTS.into()],
            CLIENTS_PER_HOUR,
        ));
    }

    for (grain, table) in &BUCKETED {
        let mut merges = Merges::new(table);
        for ((start, server, tool, status), totals) in aggregate::buckets(&rolled, grain) {
            let blobs = vec![totals.latency.encode()];
            merges.add(start, &[server, tool, status], counts(&totals), blobs);
        }
        statements.extend(merges.statements(source)?);
    }
    for ((minute, server, session, tool, fingerprint), calls) in aggregate::loops(&rolled) {
        // The fingerprint's halves, each exact as a JavaScript number, joined in SQL.
        statements.push(Statement::new(
            LOOPS,
            vec![
                Value::Int(minute),
                server.into(),
                session.into(),
                tool.into(),
                Value::Int(fingerprint >> 32),
                Value::Int(fingerprint & 0xffff_ffff),
                Value::Int(calls),
            ],
        ));
    }
    if let Some(newest) = rolled.iter().map(|(event, _, _)| event.ts_ms).max() {
        statements.push(Statement::new(
            "DELETE FROM tool_loops_1m WHERE minute_ms < ?1",
            vec![Value::Int(
                aggregate::floor(newest, HOUR_MS) - LOOPS_KEPT_MS,
            )],
        ));
    }
    let hourly = Pending::of(&rolled);
    let mut merges = Merges::new(&HOURS);
    for ((hour, server, tool, status, error_type), totals) in hourly.hours {
        merges.add(
            hour,
            &[&server, &tool, status, &error_type],
            counts(&totals.totals),
            vec![
                totals.totals.latency.encode(),
                totals.users.encode(),
                totals.sessions.encode(),
            ],
        );
    }
    statements.extend(merges.statements(source)?);
    let mut merges = Merges::new(&CLIENTS);
    for ((hour, server, tool, name, version, protocol, status), client) in hourly.clients {
        merges.add(
            hour,
            &[&server, &tool, &name, &version, &protocol, status],
            counts(&client.totals),
            vec![client.totals.latency.encode(), client.sessions.encode()],
        );
    }
    statements.extend(merges.statements(source)?);
    for ((hour, user), (calls, errors)) in hourly.users {
        statements.push(Statement::new(
            schema::UPSERT_USER,
            vec![
                Value::Int(hour),
                user.as_str().into(),
                Value::Int(calls),
                Value::Int(errors),
            ],
        ));
    }
    for (user, (email, name)) in hourly.details {
        statements.push(Statement::new(
            schema::UPSERT_USER_DETAILS,
            vec![user.as_str().into(), text(&email), text(&name)],
        ));
    }
    Ok(rolled.len())
}

/// Plans the rows and rollups of `requests`; returns how many are new.
fn plan_requests(
    source: &Replay,
    requests: &[RequestEvent],
    statements: &mut Vec<Statement>,
) -> Result<usize, D1Error> {
    let fresh = new_events(source, "requests", requests, |request| &request.id)?;
    let mut rows = Vec::with_capacity(fresh.len());
    let mut targets = RequestTargets::default();
    let mut admitted: BTreeSet<(i64, &str, Method)> = BTreeSet::new();
    let mut rolled = Vec::with_capacity(fresh.len());
    for request in fresh {
        rows.push(vec![
            request.id.as_str().into(),
            Value::Int(request.ts_ms),
            request.server_name.as_str().into(),
            request.server_version.as_str().into(),
            request.method.as_str().into(),
            text(&request.target),
            text(&request.user_id),
            text(&request.session_id),
            text(&request.client_name),
            text(&request.client_version),
            text(&request.protocol_version),
            request.transport.as_str().into(),
            text(&request.request_id),
            duration(request.duration_us),
            request.status.as_str().into(),
            text(&request.error_type),
            text(&request.error_message),
            text(&request.client_capabilities),
        ]);
        let target = targets.rollup_target(request, &mut |hour, server, method| {
            requests::stored(source, hour, server, method)
        })?;
        let (hour, server) = (hour_of(request.ts_ms), request.server_name.as_str());
        if !target.is_empty()
            && target != OTHER_TARGETS
            && !requests::stored(source, hour, server, request.method)?.contains(target)
        {
            admitted.insert((hour, server, request.method));
        }
        rolled.push((request, target));
    }
    statements.extend(inserts(schema::INSERT_REQUEST, rows));
    for (hour, server, method) in admitted {
        statements.push(abort_if_more(
            requests::STORED_SQL,
            vec![
                Value::Int(hour),
                server.into(),
                method.as_str().into(),
                OTHER_TARGETS.into(),
            ],
            TARGETS_PER_HOUR,
        ));
    }
    let mut merges = Merges::new(&REQUEST_MINUTES);
    for ((minute, server, method, target, status), totals) in requests::minutes(&rolled) {
        merges.add(
            minute,
            &[server, method.as_str(), target, status],
            counts(&totals),
            vec![totals.latency.encode()],
        );
    }
    statements.extend(merges.statements(source)?);
    let mut merges = Merges::new(&REQUEST_HOURS);
    for ((hour, server, method, target, status), totals, sessions) in requests::hours(&rolled) {
        merges.add(
            hour,
            &[server, method.as_str(), target, status],
            counts(&totals),
            vec![totals.latency.encode(), sessions.encode()],
        );
    }
    statements.extend(merges.statements(source)?);
    Ok(rolled.len())
}

/// Adds calls to `tool_loops_1m`, the fingerprint given as its high (signed) and low 32 bits.
const LOOPS: &str = "INSERT INTO tool_loops_1m (minute_ms, server_name, session_id, tool, args_fp, calls) VALUES (?1, ?2, ?3, ?4, (?5 << 32) | ?6, ?7) ON CONFLICT (minute_ms, server_name, session_id, tool, args_fp) DO UPDATE SET calls = calls + excluded.calls";

/// The start of a statement that fails (a NULL into `session_keys`' NOT NULL key) when its
/// condition holds, rolling the batch back.
const ABORT_IF: &str =
    "INSERT INTO session_keys (key, session_id, last_ms) SELECT NULL, NULL, NULL WHERE ";

/// Fails the batch when `distinct` (one of the allowances' `SELECT DISTINCT`s) finds more than
/// `limit` names: another isolate admitted names to the same hour meanwhile.
fn abort_if_more(distinct: &str, params: Vec<Value>, limit: usize) -> Statement {
    Statement::new(
        format!("{ABORT_IF}(SELECT count(*) FROM ({distinct})) > {limit}"),
        params,
    )
}

/// `(calls, duration sum, longest duration)` to add.
fn counts(totals: &aggregate::Totals) -> [Value; 3] {
    [
        Value::Int(totals.calls),
        safe(totals.sum_us),
        safe(totals.max_us),
    ]
}

/// A batch's rows to add to one rollup table: the counters are added in SQL, the BLOBs merged
/// here with the stored row's and set only if the row's histogram is still the one read —
/// else NULL, which fails the batch. A row absent when read is compared with NULL, so one
/// created meanwhile fails too.
struct Merges<'t> {
    table: &'t Table,
    rows: Vec<(RowKey, Added)>,
}

/// A rollup row's `(time, texts)`.
type RowKey = (i64, Vec<String>);

/// What a batch adds to a rollup row: `(calls, duration sum, longest)` and its BLOBs.
type Added = ([Value; 3], Vec<Vec<u8>>);

impl<'t> Merges<'t> {
    fn new(table: &'t Table) -> Self {
        Self {
            table,
            rows: Vec::new(),
        }
    }

    fn add(&mut self, time: i64, texts: &[&str], counts: [Value; 3], blobs: Vec<Vec<u8>>) {
        let texts = texts.iter().map(|text| (*text).to_owned()).collect();
        self.rows.push(((time, texts), (counts, blobs)));
    }

    /// The upserts, after reading the stored rows (as many keys per statement as D1's
    /// parameters allow, in key order so that every pass asks the same statements).
    fn statements(mut self, source: &Replay) -> Result<Vec<Statement>, D1Error> {
        let table = self.table;
        self.rows.sort_by(|a, b| a.0.cmp(&b.0));
        let keys: Vec<&str> = std::iter::once(table.time)
            .chain(table.texts.iter().copied())
            .collect();
        let blob_names: Vec<&str> = table.blobs.iter().map(|(name, _)| *name).collect();
        let mut stored: HashMap<RowKey, Vec<Vec<u8>>> = HashMap::new();
        for chunk in self.rows.chunks(PARAMETERS / keys.len()) {
            let condition = (0..chunk.len())
                .map(|row| {
                    let matches = keys
                        .iter()
                        .enumerate()
                        .map(|(index, key)| format!("{key} = ?{}", row * keys.len() + index + 1))
                        .collect::<Vec<_>>()
                        .join(" AND ");
                    format!("({matches})")
                })
                .collect::<Vec<_>>()
                .join(" OR ");
            let mut params = Vec::with_capacity(chunk.len() * keys.len());
            for ((time, texts), _) in chunk {
                params.push(Param::Int(*time));
                params.extend(texts.iter().map(|text| Param::Text(Some(text))));
            }
            let sql = format!(
                "SELECT {}, {} FROM {} WHERE {condition}",
                keys.join(", "),
                blob_names.join(", "),
                table.name
            );
            source.each(&sql, &params, &mut |row| {
                let texts = (1..keys.len())
                    .map(|index| row.string(index))
                    .collect::<Result<_, _>>()?;
                let blobs = (0..blob_names.len())
                    .map(|index| Ok(row.blob(keys.len() + index)?.to_vec()))
                    .collect::<Result<_, D1Error>>()?;
                stored.insert((row.int(0)?, texts), blobs);
                Ok(())
            })?;
        }
        let columns = keys.len() + 3 + blob_names.len();
        let placeholders = (1..=columns)
            .map(|index| format!("?{index}"))
            .collect::<Vec<_>>()
            .join(", ");
        let expected_at = columns + 1;
        let sets = blob_names
            .iter()
            .map(|blob| {
                format!("{blob} = CASE WHEN latency_hist = ?{expected_at} THEN excluded.{blob} END")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO {name} ({keys}, calls, duration_us_sum, duration_us_max, {blob_list}) VALUES ({placeholders}) ON CONFLICT ({keys}) DO UPDATE SET calls = calls + excluded.calls, duration_us_sum = duration_us_sum + excluded.duration_us_sum, duration_us_max = max(duration_us_max, excluded.duration_us_max), {sets}",
            name = table.name,
            keys = keys.join(", "),
            blob_list = blob_names.join(", "),
        );
        Ok(self
            .rows
            .into_iter()
            .map(|((time, texts), (counts, blobs))| {
                let (expected, blobs) = match stored.get(&(time, texts.clone())) {
                    Some(stored) => {
                        let merged = table
                            .blobs
                            .iter()
                            .zip(stored.iter().zip(&blobs))
                            .map(|((_, merge), (stored, batch))| merge(stored, batch))
                            .collect();
                        (Value::Blob(stored[0].clone()), merged)
                    }
                    None => (Value::Null, blobs),
                };
                let mut values = vec![Value::Int(time)];
                values.extend(texts.into_iter().map(Value::Text));
                values.extend(counts);
                values.extend(blobs.into_iter().map(Value::Blob));
                values.push(expected);
                Statement::new(sql.clone(), values)
            })
            .collect())
    }
}

/// `session_keys` as read, and as the batch's calls leave it (simulating the native upsert).
struct SessionRows<'s> {
    source: &'s Replay,
    /// Key → `(session, last call)` as read (`None`: absent).
    read: HashMap<String, Option<(String, i64)>>,
    /// Key → its state after the calls placed so far.
    now: HashMap<String, Option<(String, i64)>>,
}

impl<'s> SessionRows<'s> {
    fn new(source: &'s Replay) -> Self {
        Self {
            source,
            read: HashMap::new(),
            now: HashMap::new(),
        }
    }

    fn row(&mut self, key: &str) -> Result<Option<(String, i64)>, D1Error> {
        if let Some(row) = self.now.get(key) {
            return Ok(row.clone());
        }
        let row = self
            .source
            .rows(
                "SELECT session_id, last_ms FROM session_keys WHERE key = ?1",
                &[Param::Text(Some(key))],
                |row| Ok((row.string(0)?, row.int(1)?)),
            )?
            .into_iter()
            .next();
        self.read.insert(key.to_owned(), row.clone());
        self.now.insert(key.to_owned(), row.clone());
        Ok(row)
    }

    /// Every row read, set to its new state only if it is still as read (else the batch
    /// fails): a row left unchanged is checked too, as the sessions placed depend on it.
    fn writes(&self) -> Vec<Statement> {
        let mut keys: Vec<&String> = self.now.keys().collect();
        keys.sort();
        keys.into_iter()
            .map(|key| {
                let (expected_session, expected_last) = match &self.read[key] {
                    Some((session, last)) => (session.as_str().into(), Value::Int(*last)),
                    None => (Value::Null, Value::Null),
                };
                match &self.now[key] {
                    Some((session, last)) => Statement::new(
                        "INSERT INTO session_keys (key, session_id, last_ms) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET session_id = CASE WHEN session_id = ?4 AND last_ms = ?5 THEN excluded.session_id END, last_ms = excluded.last_ms",
                        vec![
                            key.as_str().into(),
                            session.as_str().into(),
                            Value::Int(*last),
                            expected_session,
                            expected_last,
                        ],
                    ),
                    // Read as absent and left so.
                    None => Statement::new(
                        format!("{ABORT_IF}EXISTS (SELECT 1 FROM session_keys WHERE key = ?1)"),
                        vec![key.as_str().into()],
                    ),
                }
            })
            .collect()
    }
}

impl SessionTable for SessionRows<'_> {
    type Error = D1Error;

    fn session_of(&mut self, key: &str) -> Result<Option<String>, D1Error> {
        Ok(self.row(key)?.map(|(session, _)| session))
    }

    /// As `sessions::UPSERT_SQLITE` does it.
    fn upsert(
        &mut self,
        key: &str,
        candidate: &str,
        ts_ms: i64,
        take: bool,
        idle_ms: i64,
    ) -> Result<String, D1Error> {
        let row = match self.row(key)? {
            None => (candidate.to_owned(), ts_ms),
            Some((session, last_ms)) => {
                let changes = take || last_ms < ts_ms - idle_ms;
                let last = if take && session != candidate {
                    ts_ms
                } else {
                    last_ms.max(ts_ms)
                };
                let session = if changes {
                    candidate.to_owned()
                } else {
                    session
                };
                (session, last)
            }
        };
        let session = row.0.clone();
        self.now.insert(key.to_owned(), Some(row));
        Ok(session)
    }

    fn prune(&mut self, _before_ms: i64) -> Result<(), D1Error> {
        // `plan` prunes with every batch, after the batch's own rows are written.
        Ok(())
    }
}
