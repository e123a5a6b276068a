//! The ledger's link to the other replicas on PostgreSQL: a thread with a connection of its own
//! that `LISTEN`s for their announced changes and forgets the named user's cached holdings
//! (the next call loads them again), and renews the leases of this replica's credit
//! reservations. Without that connection nothing cached can be trusted: on losing it
//! everything is forgotten, again each time a reconnection fails, and once more when listening
//! again (changes may have been missed meanwhile).
//!
//! A connection can also go silent — the server or the network gone without a word — and a
//! silent connection announces nothing. The lease renewal is its heartbeat: it must answer
//! within [`ANSWER_WITHIN`], as must connecting and `LISTEN`, or the connection counts as
//! lost. TCP keepalives and `tcp_user_timeout` close a connection whose peer stopped
//! acknowledging meanwhile.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use tokio_postgres::{AsyncMessage, NoTls};

use super::{
    Ledger,
    pg::{CHANNEL, PgLedger},
};
use crate::database::PostgresUrl;

/// How often this replica's leases are renewed (well within `pg::LEASE_MS`), which shows the
/// connection still answers.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How long the database may take to answer the listening connection before it counts as
/// lost (connecting and `LISTEN` included).
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// TCP keepalives on the listening connection: probes after this long idle, …
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// … every this long, …
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// … this many unanswered before the connection is closed.
const KEEPALIVE_RETRIES: u32 = 3;
/// How long data sent may stay unacknowledged before the connection is closed.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
/// The listening connection's `application_name`.
pub(super) const APPLICATION_NAME: &str = "mcp-analytics-ledger-listener";
/// How often the thread checks that its ledger still exists.
const TICK: Duration = Duration::from_secs(1);

/// Starts the thread; it ends once the ledger is dropped.
pub(super) fn start(
    ledger: Weak<Ledger>,
    store: Arc<PgLedger>,
    url: PostgresUrl,
) -> Result<(), crate::Error> {
    let mut config = crate::postgres::config(&url)?;
    // Told apart from the pool's connections (`pg_stat_activity`).
    config
        .application_name(APPLICATION_NAME)
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES)
        .tcp_user_timeout(TCP_USER_TIMEOUT);
    std::thread::Builder::new()
        .name("mcp-analytics-ledger".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!("the ledger's listener cannot start: {error}");
                    return;
                }
            };
            runtime.block_on(run(ledger, store, config));
        })
        .map_err(crate::Error::Writer)?;
    Ok(())
}

async fn run(ledger: Weak<Ledger>, store: Arc<PgLedger>, config: tokio_postgres::Config) {
    loop {
        match listen(&ledger, &store, &config).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!("the ledger's listener lost its connection: {error}");
            }
        }
        let Some(ledger) = ledger.upgrade() else {
            return;
        };
        ledger.set_listening(false);
        ledger.invalidate_all();
        drop(ledger);
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

type ListenError = Box<dyn std::error::Error + Send + Sync>;

/// `step`, unless the database takes longer than [`ANSWER_WITHIN`] to answer.
async fn answered<T, E: Into<ListenError>>(
    step: &str,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, ListenError> {
    match tokio::time::timeout(ANSWER_WITHIN, future).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => {
            Err(format!("the database did not answer {step} within {ANSWER_WITHIN:?}").into())
        }
    }
}

/// Listens until the connection fails or stops answering (`Err`) or the ledger is gone
/// (`Ok`).
async fn listen(
    ledger: &Weak<Ledger>,
    store: &PgLedger,
    config: &tokio_postgres::Config,
) -> Result<(), ListenError> {
    let (client, mut connection) = answered("connecting", config.connect(NoTls)).await?;
    let (sender, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    let connection = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(notification))) => {
                    if sender.send(notification.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::debug!("the ledger's listening connection failed: {error}");
                    return;
                }
                None => return,
            }
        }
    });
    let _abort = AbortOnDrop(connection);
    answered("LISTEN", client.batch_execute(&format!("LISTEN {CHANNEL}"))).await?;
    // Changes made before now were not heard.
    match ledger.upgrade() {
        Some(ledger) => {
            ledger.invalidate_all();
            ledger.set_listening(true);
        }
        None => return Ok(()),
    }
    let mut renew = tokio::time::interval(RENEW_EVERY);
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            payload = notifications.recv() => {
                let Some(payload) = payload else {
                    return Err("the connection closed".into());
                };
                let Some(ledger) = ledger.upgrade() else {
                    return Ok(());
                };
                apply(&ledger, store.replica(), &payload);
            }
            _ = renew.tick() => {
                answered("the lease renewal", store.renew_leases_on(&client)).await?;
            }
            _ = tick.tick() => {
                if ledger.strong_count() == 0 {
                    return Ok(());
                }
            }
        }
    }
}

/// Applies one announcement `"{replica} u:{user}"` (or `"{replica} *"`: everyone); this
/// replica's own are already in its memory.
fn apply(ledger: &Ledger, replica: &str, payload: &str) {
    let Some((from, what)) = payload.split_once(' ') else {
        ledger.invalidate_all();
        return;
    };
    if from == replica {
        return;
    }
    match what.strip_prefix("u:") {
        Some(user) => ledger.invalidate_user(user),
        None => ledger.invalidate_all(),
    }
}

/// Stops the connection's task when listening ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
