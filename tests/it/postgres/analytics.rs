//! Two quickstart replicas recording into one PostgreSQL database: the dashboard (either
//! replica's) counts the calls of both, and every rollup agrees with the raw rows.

use futures::future::join_all;
use mcp_analytics_tests::client::call;
use serde_json::json;

use super::{database, replicas, scalar, sql, until_the_dashboard_shows};

/// Rollup rows whose counts differ from the raw rows they summarize (0 when they agree), for
/// each rollup of the schema.
const DISAGREEMENTS: [(&str, &str); 4] = [
    (
        "tool_calls_1m",
        "SELECT count(*) FROM (
            SELECT ts_ms - ts_ms % 60000 AS minute_ms, server_name, tool, status, count(*) AS calls
            FROM tool_calls GROUP BY 1, 2, 3, 4
         ) raw FULL JOIN tool_calls_1m r USING (minute_ms, server_name, tool, status)
         WHERE raw.calls IS DISTINCT FROM r.calls",
    ),
    (
        "tool_calls_15m",
        "SELECT count(*) FROM (
            SELECT ts_ms - ts_ms % 900000 AS quarter_ms, server_name, tool, status, count(*) AS calls
            FROM tool_calls GROUP BY 1, 2, 3, 4
         ) raw FULL JOIN tool_calls_15m r USING (quarter_ms, server_name, tool, status)
         WHERE raw.calls IS DISTINCT FROM r.calls",
    ),
    (
        "tool_calls_1h",
        "SELECT count(*) FROM (
            SELECT ts_ms - ts_ms % 3600000 AS hour_ms, server_name, tool, status, count(*) AS calls
            FROM tool_calls GROUP BY 1, 2, 3, 4
         ) raw FULL JOIN (
            SELECT hour_ms, server_name, tool, status, sum(calls)::BIGINT AS calls
            FROM tool_calls_1h GROUP BY 1, 2, 3, 4
         ) r USING (hour_ms, server_name, tool, status)
         WHERE raw.calls IS DISTINCT FROM r.calls",
    ),
    (
        "user_calls_1h",
        "SELECT count(*) FROM (
            SELECT ts_ms - ts_ms % 3600000 AS hour_ms, user_id, count(*) AS calls
            FROM tool_calls WHERE user_id IS NOT NULL GROUP BY 1, 2
         ) raw FULL JOIN user_calls_1h r USING (hour_ms, user_id)
         WHERE raw.calls IS DISTINCT FROM r.calls",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_recording_into_one_database_show_their_sum_on_the_dashboard_and_rollups_equal_the_rows()
 {
    let url = database("analytics_two_writers");
    let mut replicas = replicas(2, "quickstart", &[("MCP_ANALYTICS_DB", url.clone())]);
    let (first, second) = (
        replicas[0].client(None).await,
        replicas[1].client(None).await,
    );
    // 30 calls on one replica, 20 on the other, 10 of them errors; concurrently.
    let first_calls = (0..30).map(|i| call(&first, "add", json!({"a": i, "b": 1})));
    let second_calls = (0..20).map(|i| {
        let divisor = if i % 2 == 0 { 0 } else { 2 };
        call(&second, "divide", json!({"a": i, "b": divisor}))
    });
    let (ones, twos) = tokio::join!(join_all(first_calls), join_all(second_calls));
    assert!(
        ones.iter().chain(&twos).all(Result::is_ok),
        "every call answers"
    );

    for replica in &replicas {
        until_the_dashboard_shows(replica, 50).await;
    }
    for replica in &mut replicas {
        replica.terminate();
    }
    let db = sql(&url).await;
    assert_eq!(scalar(&db, "SELECT count(*) FROM tool_calls").await, 50);
    let errors = "SELECT count(*) FROM tool_calls WHERE status <> 'ok'";
    assert_eq!(scalar(&db, errors).await, 10);
    for (rollup, query) in DISAGREEMENTS {
        assert_eq!(
            scalar(&db, query).await,
            0,
            "{rollup} disagrees with tool_calls"
        );
    }
}
