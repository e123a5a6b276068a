//! The meter on PostgreSQL, one outbox for every replica. Each replica's sender claims due
//! events (`FOR UPDATE SKIP LOCKED`, so two senders never take one row) for a lease longer
//! than sending them can take, sends them with their identifier as the idempotency key, and
//! records each outcome only while it still holds the claim. A replica that dies holding
//! claims leaves them to run out; another replica's sender then takes the events over (Stripe
//! drops a repeated identifier, should the dead one have sent some).
//!
//! Leases are in the replicas' clocks: clocks that disagree by much of a lease (25 s with Stripe's
//! default 5 s timeout) could let a replica take over a claim still in use, and Stripe would
//! drop the repeated identifier.
//!
//! The sender runs on its own thread with its own runtime and connection, on which it
//! `LISTEN`s: every replica's enqueue notifies every sender. It also looks again every second
//! (a notification missed while reconnecting, a claim run out).
//!
//! A replica shutting down cleanly (its meter dropped) lets the request in flight be answered
//! and settled, hands the rest of its claim back at once rather than leaving it to its lease,
//! writes its queued usage and ends its thread before the drop returns.

use std::{
    sync::{Arc, atomic::Ordering, mpsc},
    time::Duration,
};

use deadpool_postgres::Pool;
use futures::StreamExt;
use tokio::sync::{Notify, oneshot};
use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::{POLL, Queued, State, drain, outcome};
use crate::{
    database::PostgresUrl,
    payments::{now_ms, store::pg_outbox},
    postgres::PgError,
};

/// Events one claim takes at most.
const CLAIM_BATCH: usize = 4;
/// How often the sender looks at the outbox without being told of new events.
const RECHECK_MS: i64 = 1000;
/// The shortest claim lease.
const MIN_LEASE: Duration = Duration::from_secs(2);
/// How long writing committed usage may hold a call up before it is queued instead.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The meter's side of the shared payment tables.
pub(crate) struct PgMeter {
    url: PostgresUrl,
    /// Connections for the call path ([`super::MeterDurability::Committed`]).
    pool: Pool,
    claims: Claims,
}

/// How this replica claims events.
#[derive(Clone, Debug)]
struct Claims {
    /// This replica's claim id (`claimed_by`).
    replica: String,
    /// How long a claim lasts: longer than sending a whole batch can take.
    lease: Duration,
    /// Events per claim.
    batch: usize,
}

impl PgMeter {
    /// The outbox at `url`; `request_timeout` bounds one delivery request (the claim lease
    /// covers a batch of them). Each `PgMeter` is one replica with its own claim id.
    pub(crate) fn new(url: PostgresUrl, pool: Pool, request_timeout: Duration) -> Self {
        let batch = CLAIM_BATCH;
        Self {
            url,
            pool,
            claims: Claims {
                replica: format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple()),
                lease: claim_lease(request_timeout, batch),
                batch,
            },
        }
    }

    /// Sets the claim id and lease (tests: two replicas in one process, a short lease).
    #[cfg(test)]
    fn with_claims(mut self, replica: &str, lease: Duration) -> Self {
        self.claims.replica = replica.to_owned();
        self.claims.lease = lease;
        self
    }

    /// Writes events to the outbox in one statement on a pooled connection (the call path of
    /// committed usage); on failure, or after [`COMMIT_TIMEOUT`], they are handed back with the
    /// error (to be queued).
    pub(super) async fn enqueue_committed(
        &self,
        queued: Vec<Queued>,
    ) -> Result<(), (String, Vec<Queued>)> {
        let written = async {
            let client = self.pool.get().await?;
            enqueue(&client, &queued).await
        };
        match tokio::time::timeout(COMMIT_TIMEOUT, written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err((error.to_string(), queued)),
            // Written or not, the sender writes it again (a repeated identifier is ignored).
            Err(_) => Err((
                format!("PostgreSQL did not answer within {COMMIT_TIMEOUT:?}"),
                queued,
            )),
        }
    }
}

/// A claim lease covering `batch` requests of up to `timeout` each, and one more for the
/// database round trips around them.
fn claim_lease(timeout: Duration, batch: usize) -> Duration {
    let requests = u32::try_from(batch + 1).unwrap_or(u32::MAX);
    timeout.saturating_mul(requests).max(MIN_LEASE)
}

/// Writes queued events to the outbox in one statement (events of users without a customer
/// are logged and left out: their usage is not billable).
async fn enqueue(client: &Client, queued: &[Queued]) -> Result<(), PgError> {
    let mut calls = pg_outbox::Calls::default();
    for event in queued {
        calls.identifiers.push(event.identifier.clone());
        calls.event_names.push(event.event_name.clone());
        calls.users.push(event.user.clone());
        calls.tools.push(event.tool.clone());
        calls.timestamps.push(event.ts_s);
    }
    for user in pg_outbox::enqueue(client, &calls, now_ms()).await? {
        tracing::error!(%user, "metered call by a user without a customer; usage not billable");
    }
    Ok(())
}

/// The sender thread's state on PostgreSQL.
pub(super) struct Sender {
    url: PostgresUrl,
    claims: Claims,
    /// Woken by notifications on the sender's connection.
    notified: Arc<Notify>,
    client: Option<Client>,
    /// No connection attempt before this (Unix ms).
    connect_after_ms: i64,
    /// When the next event can be sent, as last read.
    next_due_ms: Option<i64>,
    /// When the outbox was last read (Unix ms).
    checked_ms: i64,
}

impl Sender {
    pub(super) fn new(pg: &PgMeter) -> Self {
        Self {
            url: pg.url.clone(),
            claims: pg.claims.clone(),
            notified: Arc::new(Notify::new()),
            client: None,
            connect_after_ms: 0,
            next_due_ms: None,
            checked_ms: 0,
        }
    }

    /// Runs the sender until the meter is dropped, then writes what is still queued.
    pub(super) fn run(mut self, state: &State, flushes: &mpsc::Receiver<oneshot::Sender<()>>) {
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
        runtime.block_on(async {
            self.serve(state, flushes).await;
            let queued = drain(&state.queue);
            if queued.is_empty() {
                return;
            }
            let written = match self.connection().await {
                Some(client) => enqueue(client, &queued).await,
                None => Err("no connection".into()),
            };
            if let Err(error) = written {
                tracing::error!(
                    "cannot write {} meter events to the outbox at shutdown; their usage is lost: {error}",
                    queued.len()
                );
            }
        });
    }

    /// Rounds until the meter is dropped.
    async fn serve(&mut self, state: &State, flushes: &mpsc::Receiver<oneshot::Sender<()>>) {
        let mut waiting = Vec::new();
        while !state.stopping() {
            let now = now_ms();
            let until_due = self
                .next_due_ms
                .map_or(i64::MAX, |due| due.saturating_sub(now))
                .clamp(0, POLL.as_millis() as i64);
            let mut told = false;
            tokio::select! {
                () = state.wake.notified() => {}
                () = self.notified.notified() => told = true,
                () = tokio::time::sleep(Duration::from_millis(until_due.unsigned_abs())) => {}
            }
            loop {
                match flushes.try_recv() {
                    Ok(done) => waiting.push(done),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
            if state.stopping() {
                return;
            }
            let queued = drain(&state.queue);
            let now = now_ms();
            // While the provider is down or refuses the key, only new usage is written.
            let due = !state.paused()
                && (self.next_due_ms.is_some_and(|due| due <= now)
                    || now >= self.checked_ms + RECHECK_MS);
            if queued.is_empty() && waiting.is_empty() && !told && !due {
                continue;
            }
            self.round(state, queued).await;
            for done in waiting.drain(..) {
                let _ = done.send(());
            }
        }
    }

    /// Writes `queued` to the outbox, delivers what is due and reads the outbox's state.
    async fn round(&mut self, state: &State, queued: Vec<Queued>) {
        let claims = self.claims.clone();
        let Some(client) = self.connection().await else {
            queued.into_iter().for_each(|event| state.queue.push(event));
            return;
        };
        if !queued.is_empty()
            && let Err(error) = enqueue(client, &queued).await
        {
            tracing::error!(
                "cannot write {} meter events to the outbox (kept queued, tried again): {error}",
                queued.len()
            );
            queued.into_iter().for_each(|event| state.queue.push(event));
            self.client = None;
            return;
        }
        if let Err(error) = deliver(state, client, &claims).await {
            tracing::error!("cannot deliver from the meter outbox: {error}");
            self.client = None;
            return;
        }
        match pg_outbox::standing(&*client).await {
            Ok((pending, next_due)) => {
                state
                    .pending
                    .store(pending.max(0).unsigned_abs(), Ordering::Relaxed);
                self.next_due_ms = next_due;
                self.checked_ms = now_ms();
            }
            Err(error) => {
                tracing::error!("cannot read the meter outbox: {error}");
                self.client = None;
            }
        }
    }

    /// The sender's connection, `LISTEN`ing to enqueues; made again after a failure (at most
    /// once a second).
    async fn connection(&mut self) -> Option<&mut Client> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            if now_ms() < self.connect_after_ms {
                return None;
            }
            self.connect_after_ms = now_ms() + RECHECK_MS;
            match listen(&self.url, self.notified.clone()).await {
                Ok(client) => self.client = Some(client),
                Err(error) => {
                    tracing::error!("the meter sender cannot reach PostgreSQL: {error}");
                    return None;
                }
            }
        }
        self.client.as_mut()
    }
}

/// Connects to `url` and listens to the outbox channel, waking `notified` on each
/// notification.
async fn listen(url: &PostgresUrl, notified: Arc<Notify>) -> Result<Client, PgError> {
    let mut config = crate::postgres::config(url)?;
    config.connect_timeout(CONNECT_TIMEOUT);
    let (client, mut connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => notified.notify_one(),
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!("the meter sender's connection ended: {error}");
                    return;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", pg_outbox::CHANNEL))
        .await?;
    Ok(client)
}

/// Claims and sends due events batch by batch until none is due, the provider is down or
/// refuses the key, or the meter is dropped; each batch's outcomes are written in one
/// transaction, for the events this replica still holds, and the events it did not try are
/// handed back.
async fn deliver(state: &State, client: &mut Client, claims: &Claims) -> Result<(), PgError> {
    let lease_ms = i64::try_from(claims.lease.as_millis()).unwrap_or(i64::MAX);
    loop {
        if state.paused() || state.stopping() {
            return Ok(());
        }
        let now = now_ms();
        let claimed = pg_outbox::claim(
            &*client,
            &claims.replica,
            now,
            now.saturating_add(lease_ms),
            claims.batch,
        )
        .await?;
        let full = claimed.len() == claims.batch;
        if claimed.is_empty() {
            return Ok(());
        }
        let sent = state.send(claimed).await;
        let now = now_ms();
        let outcomes: Vec<_> = sent
            .outcomes
            .iter()
            .map(|(row, result)| (row, outcome(row, result, now)))
            .collect();
        let outcomes: Vec<_> = outcomes
            .iter()
            .map(|(row, (state, next, kind, error))| pg_outbox::Outcome {
                identifier: &row.identifier,
                state: *state,
                next_attempt_ms: *next,
                error: error.as_deref(),
                kind: *kind,
            })
            .collect();
        let settled = pg_outbox::settle(&*client, &claims.replica, &outcomes, now).await?;
        if settled.len() < outcomes.len() {
            tracing::warn!(
                taken = outcomes.len() - settled.len(),
                "another replica took meter events over (their claim ran out while sending)"
            );
        }
        let untried: Vec<String> = sent
            .untried
            .iter()
            .map(|row| row.identifier.clone())
            .collect();
        pg_outbox::release(&*client, &claims.replica, &untried).await?;
        if sent.stopped || !full {
            return Ok(());
        }
    }
}

#[cfg(all(test, feature = "stripe"))]
mod tests;
