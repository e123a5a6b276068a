//! The analytics on PostgreSQL through real HTTP: the dashboard's API answers over PostgreSQL
//! what it answers over SQLite for the same calls, and two collectors sharing one PostgreSQL
//! database store a batch delivered to both once, behind a dashboard that shows it.

use std::net::SocketAddr;

use mcp_analytics::{
    Database, Status, ToolCallEvent, Transport,
    collector::{Collector, INGEST_PATH},
    dashboard::Dashboard,
    store::{PgStore, SqliteStore},
};
use mcp_analytics_tests::postgres::Cluster;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const KEY: &str = "pg-analytics-key";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `count` calls over the last 5 hours: 4 tools on 2 servers, 1 in 6 an error, 9 users, 5
/// sessions; ids start with `prefix`.
fn events(prefix: &str, count: usize) -> Vec<ToolCallEvent> {
    let start_ms = now_ms() - 5 * 3_600_000;
    (0..count)
        .map(|index| {
            let status = match index % 6 {
                0 => Status::ToolError,
                3 if index % 4 == 1 => Status::Panic,
                _ => Status::Ok,
            };
            ToolCallEvent {
                id: format!("{prefix}-{index:05}"),
                ts_ms: start_ms + (index as i64 * 104_729) % (5 * 3_600_000),
                server_name: format!("server-{}", index % 2),
                server_version: "1".into(),
                tool: format!("tool_{}", index % 4),
                user_id: Some(format!("user-{}", index % 9)),
                user_email: None,
                user_name: None,
                session_id: Some(format!("session-{}", index % 5)),
                client_name: None,
                client_version: None,
                protocol_version: None,
                transport: Transport::Http,
                request_id: Some(index.to_string()),
                duration_us: 500 + (index as u64 * 7_919) % 900_000,
                status,
                error_type: status.is_error().then(|| "kind".to_owned()),
                error_message: status.is_error().then(|| "failed".to_owned()),
                params: Some("{}".into()),
                result: None,
                ts_ns: None,
                traceparent: None,
                tracestate: None,
            }
        })
        .collect()
}

fn pg_url(url: &str) -> mcp_analytics::PostgresUrl {
    match Database::from(url) {
        Database::Postgres(url) => url,
        _ => unreachable!("a postgres URL"),
    }
}

/// Serves `router` on a free loopback port until the returned sender fires or drops.
async fn serve(router: axum::Router) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop)
}

async fn get(addr: SocketAddr, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// The overview without what depends on the moment it was asked (the range's ends and the
/// empty buckets around the calls).
fn comparable(mut overview: Value) -> Value {
    let Some(object) = overview
        .as_object_mut()
        .filter(|object| object.contains_key("report"))
    else {
        return overview;
    };
    object.remove("since_ms");
    object.remove("until_ms");
    object["report"].as_object_mut().unwrap().remove("since_ms");
    if let Some(Value::Array(series)) = object.get_mut("series") {
        series.retain(|point| point["calls"] != 0);
    }
    overview
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_api_over_postgres_answers_what_it_answers_over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("dashboard.db");
    let url = Cluster::shared().create_database("pg_dashboard_api");
    let calls = events("dash", 3_000);
    let (sqlite_path, postgres) = (sqlite.clone(), pg_url(&url));
    tokio::task::spawn_blocking(move || {
        SqliteStore::open(&sqlite_path)
            .unwrap()
            .append(&calls)
            .unwrap();
        PgStore::open(&postgres).unwrap().append(&calls).unwrap();
    })
    .await
    .unwrap();
    let (from_sqlite, stop_sqlite) =
        serve(Dashboard::new(&sqlite).api_key(Some(KEY.into())).router()).await;
    let (from_postgres, stop_postgres) =
        serve(Dashboard::new(&url).api_key(Some(KEY.into())).router()).await;

    // Asked again if the range's start passed a call between the two requests.
    let same = async |path: &str| {
        for attempt in 1..=3 {
            let (left, right) = (
                comparable(get(from_postgres, path).await),
                comparable(get(from_sqlite, path).await),
            );
            if left == right || attempt == 3 {
                assert_eq!(left, right, "{path}");
            }
            if left == right {
                break;
            }
        }
    };
    for range in ["1h", "24h", "7d", "30d"] {
        for server in ["", "&server=server-1"] {
            same(&format!("/api/overview?range={range}{server}")).await;
        }
        same(&format!("/api/errors?range={range}")).await;
        same(&format!("/api/payments?range={range}")).await;
    }
    let session = get(from_postgres, "/api/session?id=session-2").await;
    assert_eq!(
        session["timeline"].as_array().map(Vec::len),
        Some(200),
        "capped at 200 rows"
    );
    assert_eq!(
        session["calls"], 600,
        "every call of the session is counted"
    );
    assert_eq!(session, get(from_sqlite, "/api/session?id=session-2").await);
    let overview = get(from_postgres, "/api/overview?range=24h").await;
    assert_eq!(overview["report"]["calls"], 3_000);
    assert_eq!(overview["users"], 9);
    let _ = (stop_sqlite.send(()), stop_postgres.send(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_on_one_postgres_database_store_a_batch_sent_to_both_once() {
    let url = Cluster::shared().create_database("pg_two_collectors");
    let collector = || {
        Collector::new(&url)
            .api_key(Some(KEY.into()))
            .router()
            .unwrap()
    };
    // Opened inside the runtime, as `Collector::serve` does.
    let (first, stop_first) = serve(collector()).await;
    let (second, stop_second) = serve(collector()).await;
    let post = |addr: SocketAddr, events: Vec<ToolCallEvent>| async move {
        let response = reqwest::Client::new()
            .post(format!("http://{addr}{INGEST_PATH}"))
            .bearer_auth(KEY)
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    let shared = events("shared", 400);
    // The same batch to both at once, and one batch of its own to each.
    let (a, b, c, d) = tokio::join!(
        post(first, shared.clone()),
        post(second, shared.clone()),
        post(first, events("first", 300)),
        post(second, events("second", 200)),
    );
    assert_eq!(
        a["accepted"].as_u64().unwrap() + b["accepted"].as_u64().unwrap(),
        400,
        "{a} {b}"
    );
    assert_eq!(
        a["duplicates"].as_u64().unwrap() + b["duplicates"].as_u64().unwrap(),
        400
    );
    assert_eq!(
        (c["accepted"].as_u64(), d["accepted"].as_u64()),
        (Some(300), Some(200))
    );
    for addr in [first, second] {
        let overview = get(addr, "/api/overview?range=24h").await;
        assert_eq!(overview["report"]["calls"], 900, "{overview}");
    }
    let _ = (stop_first.send(()), stop_second.send(()));
}
