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

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock, Weak,
        atomic::{AtomicI64, AtomicU64, Ordering},
        mpsc,
    },
    time::Duration,
};

use crossbeam_queue::SegQueue;

use super::{
    now_ms,
    provider::{MeterEvent, Provider, ProviderError},
    store::{
        Delivery, EventRow, MeterRow, PaymentDb, PaymentEventKind, PaymentStore, SharedStore,
        StoreError,
    },
};
use crate::Error;

/// The longest wait between delivery attempts of one event.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// Events delivered per round.
const ROUND: usize = 1000;
/// Stripe takes meter events up to 35 days old; older usage is given up.
const STRIPE_MAX_AGE_S: i64 = 35 * 24 * 3600;

/// How often the sender thread looks for newly queued events (the call path never wakes it).
const POLL: Duration = Duration::from_millis(50);

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
    /// the call path): no crash after a result was sent can lose its usage.
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

/// Metered usage: the queue the call path pushes to, the outbox, and the sender thread that
/// delivers it (it ends when the `Meter` is dropped, writing what is still queued first).
pub(crate) struct Meter {
    durability: MeterDurability,
    queue: SegQueue<Queued>,
    flush: mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
    store: SharedStore,
    /// Until when (Unix ms) the sender does not deliver: Stripe is down or refuses the key.
    paused_until_ms: AtomicI64,
    /// The sender thread's own provider: pooled connections belong to the runtime that
    /// opened them.
    provider: Provider,
}

impl Meter {
    /// Starts the sender thread.
    pub(crate) fn start(
        db: PaymentDb,
        provider: Provider,
        durability: MeterDurability,
    ) -> Result<Arc<Self>, Error> {
        let store = outbox_store(db)?;
        let (flush, flushes) = mpsc::channel();
        let meter = Arc::new(Meter {
            durability,
            queue: SegQueue::new(),
            flush,
            store,
            paused_until_ms: AtomicI64::new(0),
            provider,
        });
        let weak = Arc::downgrade(&meter);
        std::thread::Builder::new()
            .name("mcp-analytics-meter".into())
            .spawn(move || run(weak, flushes))
            .map_err(Error::Writer)?;
        Ok(meter)
    }

    /// Records the usage of one successful metered call, durably or queued (see
    /// [`MeterDurability`]); never fails the call.
    pub(crate) fn record(&self, user: &str, tool: &str, event_name: &str) {
        let event = Queued {
            identifier: identifier(),
            event_name: event_name.to_owned(),
            user: user.to_owned(),
            tool: tool.to_owned(),
            ts_s: now_ms() / 1000,
        };
        if self.durability == MeterDurability::Committed {
            match self.enqueue(vec![event]) {
                Ok(()) => return,
                Err((error, back)) => {
                    tracing::error!("cannot write a meter event to the outbox, queued: {error}");
                    back.into_iter().for_each(|event| self.queue.push(event));
                    return;
                }
            }
        }
        self.queue.push(event);
    }

    /// Resolves once everything queued before is in the outbox and a delivery round ran.
    pub(crate) async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.flush.send(done).is_ok() {
            let _ = wait.await;
        }
    }

    /// Meter events waiting in the outbox.
    pub(crate) fn pending(&self) -> u64 {
        self.store
            .lock()
            .outbox()
            .pending()
            .unwrap_or(0)
            .max(0)
            .unsigned_abs()
    }

    fn drain(&self) -> Vec<Queued> {
        std::iter::from_fn(|| self.queue.pop()).collect()
    }

    /// Writes queued events to the outbox in one transaction; on a store error they are
    /// handed back (with the error) to be tried again.
    fn enqueue(&self, queued: Vec<Queued>) -> Result<(), (StoreError, Vec<Queued>)> {
        let store = self.store.lock();
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

    fn next_wait(&self) -> Duration {
        let due = self.store.lock().outbox().next_due().ok().flatten();
        let ms = due.map_or(POLL.as_millis() as i64, |due| {
            (due - now_ms()).clamp(0, POLL.as_millis() as i64)
        });
        Duration::from_millis(ms.unsigned_abs())
    }

    /// Delivers every due event, round by round, each round's outcomes written in one
    /// transaction; stops early while the provider is down or refuses the key.
    async fn deliver_due(&self) {
        if now_ms() < self.paused_until_ms.load(Ordering::Relaxed) {
            return;
        }
        loop {
            let due = match self.store.lock().outbox().due(now_ms(), ROUND) {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!("cannot read the meter outbox: {error}");
                    return;
                }
            };
            let full_round = due.len() == ROUND;
            let mut outcomes = Vec::with_capacity(due.len());
            let mut stop = false;
            for row in due {
                let event = MeterEvent {
                    identifier: row.identifier.clone(),
                    event_name: row.event_name.clone(),
                    customer_id: row.customer_id.clone(),
                    value: row.value,
                    timestamp: row.ts_s,
                };
                let result = self.provider.send_meter_event(&event).await;
                stop = matches!(
                    result,
                    Err(ProviderError::Unavailable(_) | ProviderError::Unauthorized(_))
                );
                if stop {
                    // Every event would fail alike: the sender pauses as long as this event
                    // backs off, instead of trying the next one at once.
                    let pause = backoff_ms(row.attempts, &row.identifier);
                    self.paused_until_ms
                        .store(now_ms() + pause, Ordering::Relaxed);
                    outcomes.push((row, result));
                    break;
                }
                outcomes.push((row, result));
            }
            if let Err(error) = self.record_outcomes(&outcomes) {
                tracing::error!("cannot update the meter outbox: {error}");
                return;
            }
            if stop || !full_round {
                return;
            }
        }
    }

    /// Writes delivery outcomes to the outbox and `payment_events` in one transaction.
    fn record_outcomes(
        &self,
        outcomes: &[(MeterRow, Result<(), ProviderError>)],
    ) -> rusqlite::Result<()> {
        let now = now_ms();
        self.store.lock().transaction(|store| {
            for (row, result) in outcomes {
                let (state, next, kind, error) = match result {
                    Ok(()) => (Delivery::Sent, now, PaymentEventKind::MeterEventSent, None),
                    Err(error) => {
                        let message = error.to_string();
                        if now / 1000 - row.ts_s > STRIPE_MAX_AGE_S {
                            tracing::error!(identifier = %row.identifier, "usage older than Stripe accepts is given up: {message}");
                            (Delivery::Failed, now, PaymentEventKind::MeterEventFailed, Some(message))
                        } else {
                            if !matches!(error, ProviderError::Unavailable(_)) {
                                // Not a passing outage: someone must act (a rotated or
                                // restricted key, a renamed meter). The usage is kept.
                                tracing::error!(
                                    identifier = %row.identifier,
                                    event_name = %row.event_name,
                                    "Stripe refuses metered usage; it is kept and retried: {message}"
                                );
                            }
                            let next = now + backoff_ms(row.attempts, &row.identifier);
                            (Delivery::Pending, next, PaymentEventKind::MeterEventRetried, Some(message))
                        }
                    }
                };
                store.outbox().update(&row.identifier, state, next, error.as_deref())?;
                store.events().record(
                    now,
                    kind,
                    &EventRow {
                        user_id: row.user_id.as_deref(),
                        tool: row.tool.as_deref(),
                        reference: Some(&row.identifier),
                        detail: error.as_deref().or(Some(&row.event_name)),
                        ..EventRow::default()
                    },
                )?;
            }
            Ok(())
        })
    }
}

impl Drop for Meter {
    /// The last handle is gone: what is still queued goes to the outbox now.
    fn drop(&mut self) {
        let queued = self.drain();
        if !queued.is_empty()
            && let Err((error, lost)) = self.enqueue(queued)
        {
            tracing::error!(
                "cannot write {} meter events to the outbox at shutdown; their usage is lost: {error}",
                lost.len()
            );
        }
    }
}

/// A unique meter event identifier for one call: a random per-process prefix and a counter
/// (assigned once, kept in the outbox for every delivery attempt).
/// Where the outbox is kept.
fn outbox_store(db: PaymentDb) -> Result<SharedStore, Error> {
    match db {
        PaymentDb::Sqlite(store) => Ok(store),
        // The outbox on PostgreSQL is not written yet: until it is, usage goes to a
        // throwaway in-memory table (and is lost), loudly.
        #[cfg(feature = "postgres")]
        PaymentDb::Postgres(_) => {
            tracing::error!("the meter outbox is not on PostgreSQL yet: metered usage is lost");
            let memory = std::path::Path::new(":memory:");
            let store = PaymentStore::open(memory).map_err(|error| Error::Database {
                database: crate::Database::Sqlite(memory.to_owned()),
                reason: error.to_string(),
            })?;
            Ok(SharedStore::new(store))
        }
    }
}

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

fn run(meter: Weak<Meter>, flushes: mpsc::Receiver<tokio::sync::oneshot::Sender<()>>) {
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
    loop {
        let wait = match meter.upgrade() {
            Some(meter) => meter.next_wait(),
            None => return,
        };
        match flushes.recv_timeout(wait) {
            Ok(done) => waiting.push(done),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        waiting.extend(flushes.try_iter());
        let Some(meter) = meter.upgrade() else { return };
        let queued = meter.drain();
        if !queued.is_empty()
            && let Err((error, queued)) = meter.enqueue(queued)
        {
            tracing::error!(
                "cannot write {} meter events to the outbox (kept queued, tried again): {error}",
                queued.len()
            );
            queued.into_iter().for_each(|event| meter.queue.push(event));
        }
        runtime.block_on(meter.deliver_due());
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// The outbox row of one call, `None` (logged) when its user has no customer. `customers`
/// caches lookups across a batch.
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
    Ok(Some(MeterRow {
        identifier: event.identifier.clone(),
        event_name: event.event_name.clone(),
        customer_id,
        user_id: Some(event.user.clone()),
        tool: Some(event.tool.clone()),
        value: 1,
        ts_s: event.ts_s,
        attempts: 0,
    }))
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
