//! Usage billing without Stripe on the call path: a successful metered call queues one event
//! (a lock-free push) that the sender thread writes to the `meter_outbox` table within 50 ms
//! ([`MeterDurability::Queued`], the default), or writes it to the outbox itself before its
//! result is returned ([`MeterDurability::Committed`]). The sender delivers outbox events with
//! their identifier as the idempotency key, retrying with backoff — through outages, a refused
//! key (401, 403) or a refused event (a renamed meter), with an alarm in the log for the last
//! two — until Stripe takes them or they are older than the 35 days it accepts. While Stripe
//! is down or refuses the key the sender pauses (as long as the failed event backs off)
//! rather than trying every event in turn. Undelivered events survive restarts, and Stripe's
//! dedupe of identifiers (kept at least 24 hours) makes a repeated delivery harmless.
//!
//! On PostgreSQL every replica shares one outbox; `postgres` claims events for one sender at a
//! time and hands a dead replica's events to another.

#[cfg(feature = "sqlite")]
use std::collections::HashMap;
use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use crossbeam_queue::SegQueue;

#[cfg(feature = "sqlite")]
use super::store::{PaymentStore, SharedStore, StoreError};
use super::{
    now_ms,
    provider::{MeterEvent, Provider, ProviderError},
    store::{Delivery, EventRow, MeterRow, PaymentDb, PaymentEventKind},
};
use crate::Error;

#[cfg(feature = "postgres")]
mod postgres;

/// The longest wait between delivery attempts of one event.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// Events delivered per round.
const ROUND: usize = 1000;
/// Stripe takes meter events up to 35 days old; older usage is given up.
const STRIPE_MAX_AGE_S: i64 = 35 * 24 * 3600;

/// How often the sender thread looks for newly queued events (the call path never wakes it).
const POLL: Duration = Duration::from_millis(50);
/// How long a dropped meter waits for its sender to stop, beyond one provider request: the
/// database round trips that settle the request in flight, hand back what was claimed and
/// write what is queued.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// When the usage of a successful metered call becomes durable.
///
/// Measured on a 2-core VM (`cargo bench -p mcp-analytics --bench paid_call`): `Queued` adds
/// about 1 µs to a call, `Committed` about 40–60 µs (one SQLite WAL commit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MeterDurability {
    /// Queued in memory (a lock-free push) and written to the outbox by the sender thread
    /// within 50 ms, and at once on shutdown. A crash (a kill, an abort) in that window loses
    /// that usage: the user is never billed twice, at worst not billed.
    #[default]
    Queued,
    /// Written to the outbox before the call's result is returned (one SQLite transaction on
    /// the call path, or one PostgreSQL transaction on a pooled connection): no crash after a
    /// result was sent can lose its usage.
    Committed,
}

impl MeterDurability {
    /// What [`MeterDurability`]'s `FromStr` accepts (any case, surrounding spaces ignored).
    pub const EXPECTED: &'static str = "`committed` or `queued`";
}

impl std::str::FromStr for MeterDurability {
    type Err = UnknownMeterDurability;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "committed" => Ok(Self::Committed),
            "queued" => Ok(Self::Queued),
            _ => Err(UnknownMeterDurability(value.to_owned())),
        }
    }
}

/// A [`MeterDurability`] name that is neither `committed` nor `queued` (the text given).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not {expected}", expected = MeterDurability::EXPECTED)]
pub struct UnknownMeterDurability(pub String);

/// One successful metered call waiting to be written to the outbox.
struct Queued {
    identifier: String,
    event_name: String,
    user: String,
    tool: String,
    ts_s: i64,
}

/// Where the outbox lives: the SQLite payment tables of this process, or the PostgreSQL ones
/// every replica shares.
pub(crate) enum MeterStore {
    #[cfg(feature = "sqlite")]
    Sqlite(SharedStore),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgMeter),
    /// A Worker's D1 tables: written by the call, delivered by no one yet (a Worker has no
    /// thread; delivering to Stripe through `fetch` is to come).
    #[cfg(feature = "workers")]
    D1(crate::payments::store::d1::D1Payments),
}

impl MeterStore {
    /// A build without a payment database has no outbox (see [`PaymentDb::absent`]).
    #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
    fn absent(&self) -> ! {
        match *self {}
    }
}

/// Metered usage: the queue the call path pushes to, the outbox, and the sender thread that
/// delivers it. Dropping the `Meter` stops the sender and waits for it (see [`Drop`]).
pub(crate) struct Meter {
    state: Arc<State>,
    flush: mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
    /// `None` only while dropping (a mutex only so that the meter is `Sync`: only the drop
    /// takes it).
    sender: std::sync::Mutex<Option<SenderThread>>,
}

/// What the call path and the sender thread share.
struct State {
    durability: MeterDurability,
    queue: SegQueue<Queued>,
    /// Wakes the sender at once (a flush, or the meter dropped).
    wake: tokio::sync::Notify,
    store: MeterStore,
    /// Meter events waiting in a PostgreSQL outbox, as the sender last counted them.
    #[cfg(feature = "postgres")]
    pending: AtomicU64,
    /// Until when (Unix ms) the sender does not deliver: Stripe is down or refuses the key.
    paused_until_ms: AtomicI64,
    /// Set when the meter is dropped: the sender sends nothing more once the request in flight
    /// is answered, writes what is queued and ends.
    stopping: AtomicBool,
    /// The sender thread's own provider: pooled connections belong to the runtime that
    /// opened them.
    provider: Provider,
}

/// The running sender thread.
struct SenderThread {
    handle: JoinHandle<()>,
    /// Disconnected once the thread has ended (ending drops its sending half).
    ended: mpsc::Receiver<()>,
}

impl Meter {
    /// Starts the sender thread.
    pub(crate) fn start(
        db: PaymentDb,
        provider: Provider,
        durability: MeterDurability,
    ) -> Result<Arc<Self>, Error> {
        let store = match db {
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => MeterStore::Sqlite(store),
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => MeterStore::Postgres(postgres::PgMeter::new(
                pg.url,
                pg.pool,
                provider.request_timeout(),
            )),
            #[cfg(feature = "workers")]
            PaymentDb::D1(d1) => MeterStore::D1(d1),
        };
        Self::start_on(store, provider, durability)
    }

    /// Starts the sender thread on `store`.
    fn start_on(
        store: MeterStore,
        provider: Provider,
        durability: MeterDurability,
    ) -> Result<Arc<Self>, Error> {
        let (flush, flushes) = mpsc::channel();
        let state = Arc::new(State {
            durability,
            queue: SegQueue::new(),
            wake: tokio::sync::Notify::new(),
            store,
            #[cfg(feature = "postgres")]
            pending: AtomicU64::new(0),
            paused_until_ms: AtomicI64::new(0),
            stopping: AtomicBool::new(false),
            provider,
        });
        let (ended_when_dropped, ended) = mpsc::channel();
        let thread = std::thread::Builder::new().name("mcp-analytics-meter".into());
        let shared = state.clone();
        let spawned: std::io::Result<JoinHandle<()>> = match &state.store {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            MeterStore::Sqlite(store) => {
                let store = store.clone();
                thread.spawn(move || {
                    let _ended = ended_when_dropped;
                    run(&shared, &flushes, &store);
                })
            }
            #[cfg(feature = "postgres")]
            MeterStore::Postgres(pg) => {
                let sender = postgres::Sender::new(pg);
                thread.spawn(move || {
                    let _ended = ended_when_dropped;
                    sender.run(&shared, &flushes);
                })
            }
            // No threads on a Worker: calls write the outbox themselves.
            #[cfg(feature = "workers")]
            MeterStore::D1(_) => {
                drop((thread, shared, flushes, ended_when_dropped, ended));
                return Ok(Arc::new(Meter {
                    state,
                    flush,
                    sender: std::sync::Mutex::new(None),
                }));
            }
        };
        let handle = spawned.map_err(Error::Writer)?;
        Ok(Arc::new(Meter {
            state,
            flush,
            sender: std::sync::Mutex::new(Some(SenderThread { handle, ended })),
        }))
    }

    /// Records the usage of one successful metered call, durably or queued (see
    /// [`MeterDurability`]); never fails the call.
    pub(crate) async fn record(&self, user: &str, tool: &str, event_name: &str) {
        let event = Queued {
            identifier: identifier(),
            event_name: event_name.to_owned(),
            user: user.to_owned(),
            tool: tool.to_owned(),
            ts_s: now_ms() / 1000,
        };
        let state = &self.state;
        #[cfg(feature = "workers")]
        #[allow(irrefutable_let_patterns)] // D1 is the only store of a Worker's build.
        if let MeterStore::D1(d1) = &state.store {
            if let Err(error) = d1_enqueue(d1, &event).await {
                tracing::error!("cannot write a meter event to the outbox: {error}");
            }
            return;
        }
        if state.durability == MeterDurability::Committed {
            let written: Result<(), (String, Vec<Queued>)> = match &state.store {
                #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
                absent => absent.absent(),
                #[cfg(feature = "sqlite")]
                MeterStore::Sqlite(store) => {
                    enqueue(store, vec![event]).map_err(|(error, back)| (error.to_string(), back))
                }
                #[cfg(feature = "postgres")]
                MeterStore::Postgres(pg) => pg.enqueue_committed(vec![event]).await,
                #[cfg(feature = "workers")]
                MeterStore::D1(_) => unreachable!("written above"),
            };
            if let Err((error, back)) = written {
                tracing::error!("cannot write a meter event to the outbox, queued: {error}");
                back.into_iter().for_each(|event| state.queue.push(event));
            }
            return;
        }
        state.queue.push(event);
    }

    /// Resolves once everything queued before is in the outbox and a delivery round ran.
    pub(crate) async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.flush.send(done).is_ok() {
            self.state.wake.notify_one();
            let _ = wait.await;
        }
    }

    /// Meter events waiting in the outbox (on PostgreSQL: every replica's, as of the sender's
    /// last round).
    pub(crate) fn pending(&self) -> u64 {
        match &self.state.store {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            MeterStore::Sqlite(store) => store
                .lock()
                .outbox()
                .pending()
                .unwrap_or(0)
                .max(0)
                .unsigned_abs(),
            #[cfg(feature = "postgres")]
            MeterStore::Postgres(_) => self.state.pending.load(Ordering::Relaxed),
            // Not counted on a Worker (counting would take a D1 round trip).
            #[cfg(feature = "workers")]
            MeterStore::D1(_) => 0,
        }
    }

    /// The state the sender thread shares (tests: to see that the thread let go of it).
    #[cfg(all(test, feature = "postgres"))]
    fn state(&self) -> std::sync::Weak<State> {
        Arc::downgrade(&self.state)
    }
}

impl State {
    fn drain(&self) -> Vec<Queued> {
        drain(&self.queue)
    }

    /// Whether delivery pauses now (the provider is down or refuses the key).
    fn paused(&self) -> bool {
        now_ms() < self.paused_until_ms.load(Ordering::Relaxed)
    }

    /// Whether the meter was dropped (the sender is to stop).
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Sends `due` in order until the provider is down or refuses the key (then the sender
    /// pauses as long as that event backs off, instead of trying the next one at once), or
    /// the meter is dropped. Returns the outcomes and the events not tried.
    async fn send(&self, due: Vec<MeterRow>) -> Sent {
        let mut outcomes = Vec::with_capacity(due.len());
        let mut due = due.into_iter().peekable();
        while let Some(row) = due.next_if(|_| !self.stopping()) {
            let event = MeterEvent {
                identifier: row.identifier.clone(),
                event_name: row.event_name.clone(),
                customer_id: row.customer_id.clone(),
                value: row.value,
                timestamp: row.ts_s,
            };
            let result = self.provider.send_meter_event(&event).await;
            let stop = matches!(
                result,
                Err(ProviderError::Unavailable(_) | ProviderError::Unauthorized(_))
            );
            if stop {
                let pause = backoff_ms(row.attempts, &row.identifier);
                self.paused_until_ms
                    .store(now_ms() + pause, Ordering::Relaxed);
            }
            outcomes.push((row, result));
            if stop {
                return Sent {
                    outcomes,
                    untried: due.collect(),
                    stopped: true,
                };
            }
        }
        let untried: Vec<MeterRow> = due.collect();
        Sent {
            outcomes,
            stopped: !untried.is_empty(),
            untried,
        }
    }

    #[cfg(feature = "sqlite")]
    fn next_wait(store: &SharedStore) -> Duration {
        let due = store.lock().outbox().next_due().ok().flatten();
        let ms = due.map_or(POLL.as_millis() as i64, |due| {
            (due - now_ms()).clamp(0, POLL.as_millis() as i64)
        });
        Duration::from_millis(ms.unsigned_abs())
    }

    /// Delivers every due event, round by round, each round's outcomes written in one
    /// transaction; stops early while the provider is down or refuses the key, or once the
    /// meter is dropped.
    #[cfg(feature = "sqlite")]
    async fn deliver_due(&self, store: &SharedStore) {
        loop {
            if self.paused() || self.stopping() {
                return;
            }
            let due = match store.lock().outbox().due(now_ms(), ROUND) {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!("cannot read the meter outbox: {error}");
                    return;
                }
            };
            let full_round = due.len() == ROUND;
            let sent = self.send(due).await;
            if let Err(error) = record_outcomes(store, &sent.outcomes) {
                tracing::error!("cannot update the meter outbox: {error}");
                return;
            }
            if sent.stopped || !full_round {
                return;
            }
        }
    }
}

/// What one round of sending did.
struct Sent {
    outcomes: Vec<(MeterRow, Result<(), ProviderError>)>,
    /// Events not tried: the provider was down or refused the key, or the meter was dropped.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    untried: Vec<MeterRow>,
    /// Sending stopped before the last event.
    stopped: bool,
}

/// What a delivery attempt makes of its row: the new state, when to try again, the
/// `payment_events` kind and the error to keep.
fn outcome(
    row: &MeterRow,
    result: &Result<(), ProviderError>,
    now: i64,
) -> (Delivery, i64, PaymentEventKind, Option<String>) {
    match result {
        Ok(()) => (Delivery::Sent, now, PaymentEventKind::MeterEventSent, None),
        Err(error) => {
            let message = error.to_string();
            if now / 1000 - row.ts_s > STRIPE_MAX_AGE_S {
                tracing::error!(identifier = %row.identifier, "usage older than Stripe accepts is given up: {message}");
                (
                    Delivery::Failed,
                    now,
                    PaymentEventKind::MeterEventFailed,
                    Some(message),
                )
            } else {
                if !matches!(error, ProviderError::Unavailable(_)) {
                    // Not a passing outage: someone must act (a rotated or restricted key, a
                    // renamed meter). The usage is kept.
                    tracing::error!(
                        identifier = %row.identifier,
                        event_name = %row.event_name,
                        "Stripe refuses metered usage; it is kept and retried: {message}"
                    );
                }
                let next = now + backoff_ms(row.attempts, &row.identifier);
                (
                    Delivery::Pending,
                    next,
                    PaymentEventKind::MeterEventRetried,
                    Some(message),
                )
            }
        }
    }
}

/// The `payment_events` row of a delivery outcome.
fn event_row<'a>(row: &'a MeterRow, error: Option<&'a str>) -> EventRow<'a> {
    EventRow {
        user_id: row.user_id.as_deref(),
        tool: row.tool.as_deref(),
        reference: Some(&row.identifier),
        detail: error.or(Some(&row.event_name)),
        ..EventRow::default()
    }
}

/// Writes delivery outcomes to the outbox and `payment_events` in one transaction.
#[cfg(feature = "sqlite")]
fn record_outcomes(
    store: &SharedStore,
    outcomes: &[(MeterRow, Result<(), ProviderError>)],
) -> rusqlite::Result<()> {
    let now = now_ms();
    store.lock().transaction(|store| {
        for (row, result) in outcomes {
            let (state, next, kind, error) = outcome(row, result, now);
            store
                .outbox()
                .update(&row.identifier, state, next, error.as_deref())?;
            store
                .events()
                .record(now, kind, &event_row(row, error.as_deref()))?;
        }
        Ok(())
    })
}

/// Writes queued events to the SQLite outbox in one transaction; on a store error they are
/// handed back (with the error) to be tried again.
#[cfg(feature = "sqlite")]
fn enqueue(store: &SharedStore, queued: Vec<Queued>) -> Result<(), (StoreError, Vec<Queued>)> {
    let store = store.lock();
    let written = store.transaction(|store| {
        let mut customers = HashMap::new();
        let rows: Vec<MeterRow> = queued
            .iter()
            .map(|event| outbox_row(store, &mut customers, event))
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        store.outbox().enqueue(&rows, now_ms())
    });
    written.map_err(|error| (error.into(), queued))
}

/// Writes one metered call to a D1 outbox, with the user's customer (one statement; none
/// written for a user without a customer, whose usage is not billable).
#[cfg(feature = "workers")]
async fn d1_enqueue(
    d1: &crate::payments::store::d1::D1Payments,
    event: &Queued,
) -> Result<(), super::store::StoreError> {
    use crate::d1::{Statement, Value};
    let written = d1
        .execute(Statement::new(
            "INSERT OR IGNORE INTO meter_outbox (identifier, event_name, customer_id, user_id, tool, value, ts_s, state, next_attempt_ms)
             SELECT ?1, ?2, customer_id, ?3, ?4, 1, ?5, 'pending', ?6 FROM payment_customers WHERE user_id = ?3",
            vec![
                event.identifier.as_str().into(),
                event.event_name.as_str().into(),
                event.user.as_str().into(),
                event.tool.as_str().into(),
                Value::Int(event.ts_s),
                Value::Int(now_ms()),
            ],
        ))
        .await?;
    if written == 0 {
        tracing::error!(user = %event.user, "metered call by a user without a customer; usage not billable");
    }
    Ok(())
}

fn drain(queue: &SegQueue<Queued>) -> Vec<Queued> {
    std::iter::from_fn(|| queue.pop()).collect()
}

impl Drop for Meter {
    /// The last handle is gone: the sender stops and this waits for it. It lets the request in
    /// flight be answered and records its outcome, sends nothing more (on PostgreSQL it hands
    /// the events it claimed back at once, for any replica to send), writes what is still
    /// queued to the outbox and ends. The wait is bounded by one provider request and
    /// [`STOP_WAIT`]; a sender still running then (a database that does not answer) is left
    /// to finish on its own, and said so.
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::Release);
        self.state.wake.notify_one();
        let sender = self
            .sender
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(sender) = sender else {
            return;
        };
        let bound = self.state.provider.request_timeout() + STOP_WAIT;
        match sender.ended.recv_timeout(bound) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::error!(
                    "the meter sender did not stop within {bound:?}; it is left to end on its own"
                );
            }
            // Nothing is ever sent: the channel only disconnects.
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if sender.handle.join().is_err() {
                    tracing::error!("the meter sender panicked");
                }
            }
        }
    }
}

/// A unique meter event identifier for one call: a random per-process prefix and a counter
/// (assigned once, kept in the outbox for every delivery attempt).
fn identifier() -> String {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        use sha2::Digest;
        let seed = format!(
            "{:?}{}{:?}",
            std::time::SystemTime::now(),
            std::process::id(),
            std::thread::current().id()
        );
        let digest = sha2::Sha256::digest(seed.as_bytes());
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("mcpa_{prefix:016x}{n:012x}")
}

/// The sender thread on SQLite: until the meter is dropped, then writes what is queued.
#[cfg(feature = "sqlite")]
fn run(
    state: &State,
    flushes: &mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
    store: &SharedStore,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("meter sender cannot start: {error}");
            return;
        }
    };
    let mut waiting = Vec::new();
    while !state.stopping() {
        match flushes.recv_timeout(State::next_wait(store)) {
            Ok(done) => waiting.push(done),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        waiting.extend(flushes.try_iter());
        let queued = state.drain();
        if !queued.is_empty()
            && let Err((error, queued)) = enqueue(store, queued)
        {
            tracing::error!(
                "cannot write {} meter events to the outbox (kept queued, tried again): {error}",
                queued.len()
            );
            queued.into_iter().for_each(|event| state.queue.push(event));
        }
        runtime.block_on(state.deliver_due(store));
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
    let queued = state.drain();
    if !queued.is_empty()
        && let Err((error, lost)) = enqueue(store, queued)
    {
        tracing::error!(
            "cannot write {} meter events to the outbox at shutdown; their usage is lost: {error}",
            lost.len()
        );
    }
}

/// The outbox row of one call, `None` (logged) when its user has no customer. `customers`
/// caches lookups across a batch.
#[cfg(feature = "sqlite")]
fn outbox_row(
    store: &PaymentStore,
    customers: &mut HashMap<String, Option<String>>,
    event: &Queued,
) -> rusqlite::Result<Option<MeterRow>> {
    let customer = match customers.get(&event.user) {
        Some(customer) => customer.clone(),
        None => {
            let customer = store.customers().of_user(&event.user)?;
            customers.insert(event.user.clone(), customer.clone());
            customer
        }
    };
    let Some(customer_id) = customer else {
        tracing::error!(user = %event.user, "metered call by a user without a customer; usage not billable");
        return Ok(None);
    };
    Ok(Some(meter_row(event, customer_id)))
}

/// The outbox row of one call by a user whose customer is `customer_id`.
fn meter_row(event: &Queued, customer_id: String) -> MeterRow {
    MeterRow {
        identifier: event.identifier.clone(),
        event_name: event.event_name.clone(),
        customer_id,
        user_id: Some(event.user.clone()),
        tool: Some(event.tool.clone()),
        value: 1,
        ts_s: event.ts_s,
        attempts: 0,
    }
}

/// Exponential backoff with deterministic jitter: 1 s, 2 s, 4 s … up to an hour.
fn backoff_ms(attempts: i64, identifier: &str) -> i64 {
    let base = 1000_i64
        .saturating_mul(1 << attempts.clamp(0, 12))
        .min(MAX_BACKOFF_MS);
    let jitter = identifier
        .bytes()
        .fold(0_i64, |acc, b| (acc * 31 + i64::from(b)) % 1000);
    (base / 2 + base / 2 * jitter / 1000).max(500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_parses_its_two_names() {
        assert_eq!(" Committed".parse(), Ok(MeterDurability::Committed));
        assert_eq!("queued".parse(), Ok(MeterDurability::Queued));
        let unknown = "sometimes".parse::<MeterDurability>().unwrap_err();
        assert_eq!(unknown, UnknownMeterDurability("sometimes".to_owned()));
        assert_eq!(
            unknown.to_string(),
            "`sometimes` is not `committed` or `queued`"
        );
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let first = backoff_ms(0, "a");
        let later = backoff_ms(5, "a");
        assert!((500..=1000).contains(&first), "{first}");
        assert!(later > first * 8, "{later}");
        assert!(backoff_ms(40, "a") <= MAX_BACKOFF_MS);
    }
}
