//! Alerts through a real server: the demo server records into a SQLite file, an rmcp client
//! calls it, the alert evaluator (every 100 ms here) reads the rollups and posts to a webhook
//! receiver on 127.0.0.1 (axum). Each transition arrives exactly once however many evaluations
//! follow, also with two evaluators (replicas) on one database; a receiver answering 500 gets
//! the notification again until it accepts it. The same on a PostgreSQL database of the
//! throwaway cluster, the backend of many replicas.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use mcp_analytics::{
    Analytics, Database,
    alerts::{Alerts, DeadMan, ErrorRate, Percent, RunawayLoop, Webhook},
};
use mcp_analytics_tests::{
    client::{call, connect_demo},
    postgres::Cluster,
};
use serde_json::{Value, json};

/// What the receiver was sent, and how many more requests it answers with 500.
#[derive(Clone, Default)]
struct Inbox {
    accepted: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<usize>>,
    refuse: Arc<Mutex<usize>>,
}

impl Inbox {
    fn accepted(&self) -> Vec<Value> {
        self.accepted.lock().unwrap().clone()
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

async fn receive(State(inbox): State<Inbox>, Json(body): Json<Value>) -> StatusCode {
    *inbox.requests.lock().unwrap() += 1;
    let mut refuse = inbox.refuse.lock().unwrap();
    if *refuse > 0 {
        *refuse -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    inbox.accepted.lock().unwrap().push(body);
    StatusCode::OK
}

/// A webhook receiver on 127.0.0.1 (its URL has a Slack-like token path) that answers the
/// first `refuse` requests with 500.
async fn receiver(refuse: usize) -> (Webhook, Inbox) {
    let inbox = Inbox::default();
    *inbox.refuse.lock().unwrap() = refuse;
    let router = Router::new()
        .route("/services/T0/B0/SECRETTOKEN", post(receive))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let url = format!("http://{addr}/services/T0/B0/SECRETTOKEN");
    (Webhook::parse(&url).unwrap(), inbox)
}

/// Polls `check` every 50 ms until it answers (at most a minute).
async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1200 {
        if let Some(found) = check() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}

/// An analytics database the tests read `alert_state` of.
enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(String, tokio_postgres::Client),
}

impl Db {
    /// A database of the throwaway PostgreSQL cluster, and a client of it.
    async fn postgres(name: &str) -> Db {
        let url = Cluster::shared().create_database(name);
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        Db::Postgres(url, client)
    }

    fn database(&self) -> Database {
        match self {
            Db::Sqlite(path) => Database::from(path),
            Db::Postgres(url, _) => Database::from(url),
        }
    }

    /// When the alerts of `kind` were last evaluated (one value per row).
    async fn evaluated(&self, kind: &str) -> Vec<i64> {
        let sql = "SELECT evaluated_ms FROM alert_state WHERE kind = $1 ORDER BY subject";
        match self {
            Db::Sqlite(path) => {
                let connection = rusqlite::Connection::open(path).unwrap();
                let mut statement = connection.prepare(sql).unwrap();
                statement
                    .query_map([kind], |row| row.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            // Empty until the server made the table.
            Db::Postgres(_, client) => client.query(sql, &[&kind]).await.map_or_else(
                |_| Vec::new(),
                |rows| rows.iter().map(|row| row.get(0)).collect(),
            ),
        }
    }
}

/// Waits until the evaluators evaluated `kind`'s rows `times` more times.
async fn evaluations(db: &Db, kind: &str, times: usize) {
    let mut seen = vec![db.evaluated(kind).await];
    for _ in 0..1200 {
        let now = db.evaluated(kind).await;
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        if seen.len() > times {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for more evaluations");
}

fn analytics(db: impl Into<Database>, alerts: Alerts) -> Analytics {
    Analytics::builder()
        .database(db)
        .alerts(alerts.interval(Duration::from_millis(100)))
        .build()
        .unwrap()
}

fn error_rate_over_half() -> ErrorRate {
    ErrorRate::new(Percent::new(50.0), Duration::from_secs(15 * 60)).min_calls(4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_tool_fires_once_across_evaluations_and_resolves_once_after_successes() {
    let dir = tempfile::tempdir().unwrap();
    fires_once_and_resolves_once(Db::Sqlite(dir.path().join("alerts.db"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_failing_tool_fires_once_and_resolves_once_and_the_dashboard_lists_it() {
    fires_once_and_resolves_once(Db::postgres("alerts_fire_resolve").await).await;
}

/// Four failed calls fire the error rate once, eight successes resolve it once (the
/// dashboard's API lists it firing meanwhile).
async fn fires_once_and_resolves_once(db: Db) {
    let (webhook, inbox) = receiver(0).await;
    let analytics = analytics(
        db.database(),
        Alerts::new()
            .webhook(webhook)
            .error_rate(error_rate_over_half()),
    );
    let client = connect_demo(analytics.clone()).await;

    for _ in 0..4 {
        call(&client, "divide", json!({"a": 1, "b": 0}))
            .await
            .unwrap();
    }
    analytics.flush().await;
    let fired = until("the firing notification", || {
        inbox.accepted().first().cloned()
    })
    .await;
    evaluations(&db, "error_rate", 3).await;
    assert_eq!(inbox.accepted().len(), 1, "{:?}", inbox.accepted());
    assert_eq!(
        fired["text"],
        "🔥 FIRING: error rate of `divide` is 100% (4/4 calls) over 15m, threshold 50%"
    );
    assert_eq!(fired["status"], "firing");
    assert_eq!(fired["kind"], "error_rate");
    assert_eq!(fired["rule"], "error_rate>50%/15m/4");
    assert_eq!(fired["tool"], "divide");
    assert_eq!(fired["server"], "demo");
    assert_eq!(fired["value"], 100.0);
    assert_eq!(fired["threshold"], 50.0);
    assert_eq!(fired["window"], "15m");
    assert!(
        fired["started_at"].as_str().unwrap().ends_with('Z'),
        "{fired}"
    );
    let listed = dashboard_alerts(db.database()).await;
    assert_eq!(listed[0]["status"], "firing", "{listed}");
    assert_eq!(listed[0]["tool"], "divide", "{listed}");

    for _ in 0..8 {
        call(&client, "divide", json!({"a": 4, "b": 2}))
            .await
            .unwrap();
    }
    analytics.flush().await;
    let resolved = until("the resolved notification", || {
        inbox.accepted().get(1).cloned()
    })
    .await;
    evaluations(&db, "error_rate", 3).await;
    assert_eq!(inbox.accepted().len(), 2, "{:?}", inbox.accepted());
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(
        resolved["text"],
        "✅ RESOLVED: error rate of `divide` is 33% (4/12 calls) over 15m, threshold 50%"
    );
    assert_eq!(resolved["started_at"], fired["started_at"]);
    client.cancel().await.unwrap();
}

/// What the dashboard's `api/alerts` answers over `database`.
async fn dashboard_alerts(database: Database) -> Value {
    let dashboard = mcp_analytics::dashboard::Dashboard::new(database);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(dashboard.serve_on(listener, async move {
        let _ = stopped.await;
    }));
    let listed = reqwest::get(format!("http://{addr}/api/alerts?range=1h"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = stop.send(());
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_evaluating_one_database_notify_each_transition_once() {
    let dir = tempfile::tempdir().unwrap();
    replicas_notify_once(Db::Sqlite(dir.path().join("replicas.db"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_database_notify_each_transition_once() {
    replicas_notify_once(Db::postgres("alerts_replicas").await).await;
}

/// Two servers on one database, both evaluating: the firing and the resolution each arrive
/// once.
async fn replicas_notify_once(db: Db) {
    let (webhook, inbox) = receiver(0).await;
    let rules = Alerts::new()
        .webhook(webhook)
        .error_rate(error_rate_over_half());
    let first = analytics(db.database(), rules.clone());
    let second = analytics(db.database(), rules);
    let client = connect_demo(first.clone()).await;

    for _ in 0..5 {
        call(&client, "divide", json!({"a": 1, "b": 0}))
            .await
            .unwrap();
    }
    first.flush().await;
    until("the firing notification", || {
        inbox.accepted().first().cloned()
    })
    .await;
    evaluations(&db, "error_rate", 6).await;
    assert_eq!(inbox.accepted().len(), 1, "{:?}", inbox.accepted());
    assert_eq!(inbox.requests(), 1);

    for _ in 0..10 {
        call(&client, "divide", json!({"a": 4, "b": 2}))
            .await
            .unwrap();
    }
    first.flush().await;
    let resolved = until("the resolved notification", || {
        inbox.accepted().get(1).cloned()
    })
    .await;
    evaluations(&db, "error_rate", 6).await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(inbox.accepted().len(), 2, "{:?}", inbox.accepted());
    assert_eq!(inbox.requests(), 2);
    drop((client, first, second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_answering_500_gets_the_notification_again_until_it_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("retry.db");
    // Three tries per evaluation: the first evaluation's all fail, the next one's second
    // succeeds.
    let (webhook, inbox) = receiver(4).await;
    let analytics = analytics(
        &db,
        Alerts::new()
            .webhook(webhook)
            .error_rate(error_rate_over_half()),
    );
    let client = connect_demo(analytics.clone()).await;

    for _ in 0..4 {
        call(&client, "divide", json!({"a": 1, "b": 0}))
            .await
            .unwrap();
    }
    analytics.flush().await;
    until("the accepted notification", || {
        inbox.accepted().first().cloned()
    })
    .await;
    evaluations(&Db::Sqlite(db.clone()), "error_rate", 3).await;
    assert_eq!(inbox.accepted().len(), 1);
    assert_eq!(inbox.requests(), 5);
    let connection = rusqlite::Connection::open(&db).unwrap();
    let (attempts, error, notified): (i64, Option<String>, Option<i64>) = connection
        .query_row(
            "SELECT attempts, last_error, notified_ms FROM alert_state",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        attempts, 2,
        "one failed delivery round, then one that succeeded"
    );
    assert_eq!(error, None);
    assert!(notified.is_some());
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_fires_the_dead_man_and_its_next_call_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dead-man.db");
    let (webhook, inbox) = receiver(0).await;
    let analytics = analytics(
        &db,
        Alerts::new()
            .webhook(webhook)
            .dead_man(DeadMan::server(Duration::from_secs(1))),
    );
    let client = connect_demo(analytics.clone()).await;

    call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    analytics.flush().await;
    let fired = until("the dead man firing", || inbox.accepted().first().cloned()).await;
    assert_eq!(fired["kind"], "dead_man");
    assert_eq!(fired["status"], "firing");
    assert_eq!(fired["server"], "demo");
    assert!(
        fired["text"]
            .as_str()
            .unwrap()
            .starts_with("🔥 FIRING: no calls to `demo` for "),
        "{fired}"
    );

    call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    analytics.flush().await;
    let resolved = until("the dead man resolved", || inbox.accepted().get(1).cloned()).await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["kind"], "dead_man");
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_repeating_one_call_fires_the_runaway_loop_once_and_varied_calls_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loop.db");
    let (webhook, inbox) = receiver(0).await;
    let analytics = analytics(
        &db,
        Alerts::new()
            .webhook(webhook)
            .runaway_loop(RunawayLoop::new(5)),
    );
    let looping = connect_demo(analytics.clone()).await;
    let varied = connect_demo(analytics.clone()).await;

    // Twelve identical calls: more than five fall in one minute wherever a minute ends.
    for _ in 0..12 {
        call(&looping, "add", json!({"a": 1, "b": 2}))
            .await
            .unwrap();
    }
    for a in 0..12 {
        call(&varied, "add", json!({"a": a, "b": 2})).await.unwrap();
    }
    analytics.flush().await;
    let fired = until("the loop firing", || inbox.accepted().first().cloned()).await;
    evaluations(&Db::Sqlite(db.clone()), "runaway_loop", 3).await;
    assert_eq!(inbox.accepted().len(), 1, "{:?}", inbox.accepted());
    assert_eq!(fired["kind"], "runaway_loop");
    assert_eq!(fired["tool"], "add");
    let session = fired["session"].as_str().unwrap();
    assert!(
        fired["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("🔥 FIRING: session `{session}` called `add` ")),
        "{fired}"
    );
    assert!(fired["value"].as_f64().unwrap() > 5.0, "{fired}");
    looping.cancel().await.unwrap();
    varied.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_api_lists_a_firing_alert_and_never_shows_the_webhook_url() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("panel.db");
    let (webhook, inbox) = receiver(usize::MAX).await;
    let analytics = analytics(
        &db,
        Alerts::new()
            .webhook(webhook)
            .error_rate(error_rate_over_half()),
    );
    let client = connect_demo(analytics.clone()).await;
    for _ in 0..4 {
        call(&client, "divide", json!({"a": 1, "b": 0}))
            .await
            .unwrap();
    }
    analytics.flush().await;
    until("a refused delivery", || {
        (inbox.requests() >= 3).then_some(())
    })
    .await;
    let dashboard = mcp_analytics::dashboard::Dashboard::new(&db);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(dashboard.serve_on(listener, std::future::pending()));
    until("the alert's delivery error", || {
        let connection = rusqlite::Connection::open(&db).ok()?;
        connection
            .query_row("SELECT last_error FROM alert_state", [], |row| {
                row.get::<_, Option<String>>(0)
            })
            .ok()
            .flatten()
    })
    .await;
    let listed: Value = reqwest::get(format!("http://{addr}/api/alerts?range=1h"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let firing = &listed[0];
    assert_eq!(firing["status"], "firing", "{listed}");
    assert_eq!(firing["tool"], "divide");
    assert_eq!(firing["kind"], "error_rate");
    let shown = listed.to_string();
    assert!(shown.contains("answered HTTP 500"), "{shown}");
    assert!(!shown.contains("SECRETTOKEN"), "{shown}");
    client.cancel().await.unwrap();
}
