//! The recording pipeline under failure: broken sinks never fail or slow a call, a full queue
//! drops and counts instead of blocking.

use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

use mcp_analytics::{Analytics, MemorySink, Sink, SinkError, Stats, ToolCallEvent};
use mcp_analytics_tests::client::{call, connect_demo};
use serde_json::json;

struct FailingSink;

impl Sink for FailingSink {
    fn name(&self) -> &str {
        "failing"
    }
    fn write(&mut self, _: &[ToolCallEvent]) -> Result<(), SinkError> {
        Err("the disk is on fire".into())
    }
}

struct PanickingSink;

impl Sink for PanickingSink {
    fn name(&self) -> &str {
        "panicking"
    }
    fn write(&mut self, _: &[ToolCallEvent]) -> Result<(), SinkError> {
        panic!("sink bug")
    }
    fn flush(&mut self, _: &Stats) -> Result<(), SinkError> {
        panic!("sink bug on flush")
    }
}

/// How long the stuck sink and the test wait for each other before giving up (a test that
/// fails must not hang).
const GATE_DEADLINE: Duration = Duration::from_secs(30);

/// Blocks its first write until released (or the test is gone), so the queue backs up; tells
/// the test when it got stuck.
struct StuckSink(Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>);

impl Sink for StuckSink {
    fn name(&self) -> &str {
        "stuck"
    }
    fn write(&mut self, _: &[ToolCallEvent]) -> Result<(), SinkError> {
        if let Some((stuck, release)) = self.0.take() {
            let _ = stuck.send(());
            let _ = release.recv_timeout(GATE_DEADLINE);
        }
        Ok(())
    }
}

#[tokio::test]
async fn failing_and_panicking_sinks_do_not_fail_the_call() {
    let memory = MemorySink::new();
    let analytics = Analytics::builder()
        .sink(FailingSink)
        .sink(PanickingSink)
        .sink(memory.clone())
        .build()
        .unwrap();
    let client = connect_demo(analytics.clone()).await;
    for i in 0..5 {
        let sum = call(&client, "add", json!({"a": i, "b": 1})).await.unwrap();
        assert_eq!(sum.structured_content, Some(json!({"sum": i + 1})));
    }
    analytics.flush().await;
    assert_eq!(
        memory.events().len(),
        5,
        "healthy sinks still get every event"
    );
    assert_eq!(memory.requests().len(), 1, "and the initialize");
    let stats = analytics.stats();
    assert_eq!((stats.recorded, stats.written, stats.dropped), (6, 6, 0));
    assert!(
        stats.sink_errors >= 3,
        "write failures, write panics and flush panics are counted: {stats:?}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let (stuck_tx, stuck) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let analytics = Analytics::builder()
        .sink(StuckSink(Some((stuck_tx, release_rx))))
        .queue_capacity(4)
        .build()
        .unwrap();
    let client = connect_demo(analytics.clone()).await;
    let started = Instant::now();
    for i in 0..50 {
        call(&client, "add", json!({"a": i, "b": 0})).await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "calls never wait for the stuck sink"
    );
    let stats = analytics.stats();
    assert_eq!(
        stats.recorded + stats.dropped,
        51,
        "the calls and the initialize"
    );
    assert!(
        stats.dropped >= 40,
        "most events were dropped while the sink was stuck: {stats:?}"
    );
    stuck
        .recv_timeout(GATE_DEADLINE)
        .expect("the stuck sink got its first write");
    release
        .send(())
        .expect("the stuck sink waits for its release");
    analytics.flush().await;
    assert_eq!(analytics.stats().written, stats.recorded);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn dropped_counts_reach_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stats.db");
    let analytics = Analytics::builder().database(&db).build().unwrap();
    let client = connect_demo(analytics.clone()).await;
    call(&client, "add", json!({"a": 1, "b": 1})).await.unwrap();
    analytics.shutdown().await;
    call(&client, "add", json!({"a": 1, "b": 1})).await.unwrap();
    assert_eq!(
        analytics.stats().dropped,
        1,
        "after shutdown events are dropped, and counted"
    );
    let connection = rusqlite::Connection::open(&db).unwrap();
    let (recorded, written): (i64, i64) = connection
        .query_row("SELECT recorded, written FROM recorder_stats", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!((recorded, written), (2, 2), "the initialize and the call");
    client.cancel().await.unwrap();
}
