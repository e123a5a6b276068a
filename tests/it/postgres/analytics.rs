//! Two quickstart replicas recording into one PostgreSQL database, the same users calling the
//! same tools on both at once (so both write the same rollup rows): the dashboard (either
//! replica's) shows the sum of both, and every rollup equals the raw rows it summarizes.

use futures::future::join_all;
use mcp_analytics_tests::client::call;
use serde_json::{Value, json};

use super::{
    IdentityProvider, database, overview, replicas, scalar, sql, until_the_dashboard_shows,
};

/// Rollup rows that differ from the raw rows they summarize (0 when they agree), for each
/// rollup of the schema: every count, sum and maximum, under every key.
const DISAGREEMENTS: [(&str, &str); 4] = [
    (
        "tool_calls_1m",
        "SELECT count(*) FROM (
            SELECT ts_ms - ts_ms % 60000 AS minute_ms, server_name, tool, status,
                   count(*) AS calls, sum(duration_us)::BIGINT AS duration_us_sum,
                   max(duration_us) AS duration_us_max
            FROM tool_calls GROUP BY 1, 2, 3, 4
         ) raw FULL JOIN tool_calls_1m r USING (minute_ms, server_name, tool, status)
         WHERE (raw.calls, raw.duration_us_sum, raw.duration_us_max)
               IS DISTINCT FROM (r.calls, r.duration_us_sum, r.duration_us_max)",
    ),
    (
        "tool_calls_15m",
        "SELECT count(*) FROM (
            SELECT ts_ms - ts_ms % 900000 AS quarter_ms, server_name, tool, status,
                   count(*) AS calls, sum(duration_us)::BIGINT AS duration_us_sum,
                   max(duration_us) AS duration_us_max
            FROM tool_calls GROUP BY 1, 2, 3, 4
         ) raw FULL JOIN tool_calls_15m r USING (quarter_ms, server_name, tool, status)
         WHERE (raw.calls, raw.duration_us_sum, raw.duration_us_max)
               IS DISTINCT FROM (r.calls, r.duration_us_sum, r.duration_us_max)",
    ),
    (
        "tool_calls_1h",
        "SELECT count(*) FROM (
            SELECT ts_ms - ts_ms % 3600000 AS hour_ms, server_name, tool, status,
                   coalesce(error_type, '') AS error_type, count(*) AS calls,
                   sum(duration_us)::BIGINT AS duration_us_sum, max(duration_us) AS duration_us_max
            FROM tool_calls GROUP BY 1, 2, 3, 4, 5
         ) raw FULL JOIN tool_calls_1h r USING (hour_ms, server_name, tool, status, error_type)
         WHERE (raw.calls, raw.duration_us_sum, raw.duration_us_max)
               IS DISTINCT FROM (r.calls, r.duration_us_sum, r.duration_us_max)",
    ),
    (
        "user_calls_1h",
        "SELECT count(*) FROM (
            SELECT ts_ms - ts_ms % 3600000 AS hour_ms, user_id, count(*) AS calls,
                   count(*) FILTER (WHERE status NOT IN ('ok', 'input_required', 'payment_required')) AS errors
            FROM tool_calls WHERE user_id IS NOT NULL GROUP BY 1, 2
         ) raw FULL JOIN user_calls_1h r USING (hour_ms, user_id)
         WHERE (raw.calls, raw.errors) IS DISTINCT FROM (r.calls, r.errors)",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_recording_into_one_database_show_their_sum_on_the_dashboard_and_rollups_equal_the_rows()
 {
    let url = database("analytics_two_writers");
    let idp = IdentityProvider::start().await;
    let mut vars = idp.vars();
    vars.push(("MCP_ANALYTICS_DB", url.clone()));
    let mut replicas = replicas(2, "quickstart", &vars);
    let mut clients = Vec::new();
    for replica in &replicas {
        for user in ["alice", "bob"] {
            clients.push((user, replica.client(Some(user)).await));
        }
    }
    // On each replica at once: alice adds 15 times and divides by zero 5 times (tool errors),
    // bob divides 10 times.
    let mut calls = Vec::new();
    for (user, client) in &clients {
        let (add, divide_by_zero, divide) = if *user == "alice" {
            (15, 5, 0)
        } else {
            (0, 0, 10)
        };
        calls.extend((0..add).map(|i| call(client, "add", json!({"a": i, "b": 1}))));
        calls.extend((0..divide_by_zero).map(|i| call(client, "divide", json!({"a": i, "b": 0}))));
        calls.extend((0..divide).map(|i| call(client, "divide", json!({"a": i, "b": 2}))));
    }
    let answers = join_all(calls).await;
    assert_eq!(answers.len(), 60);
    assert!(answers.iter().all(Result::is_ok), "every call answers");

    for replica in &replicas {
        until_the_dashboard_shows(replica, 60).await;
        let overview = overview(replica).await;
        let report = &overview["report"];
        assert_eq!(report["errors"], 10, "{report}");
        assert_eq!(overview["users"], 2, "{overview}");
        let per = |list: &str, name: &str| -> Vec<(String, u64, u64)> {
            let mut rows: Vec<_> = report[list]
                .as_array()
                .unwrap_or_else(|| panic!("no report.{list} in {report}"))
                .iter()
                .map(|row: &Value| {
                    (
                        row[name].as_str().unwrap().to_owned(),
                        row["calls"].as_u64().unwrap(),
                        row["errors"].as_u64().unwrap(),
                    )
                })
                .collect();
            rows.sort();
            rows
        };
        let totals = |rows: &[(&str, u64, u64)]| -> Vec<(String, u64, u64)> {
            rows.iter()
                .map(|(name, calls, errors)| ((*name).to_owned(), *calls, *errors))
                .collect()
        };
        assert_eq!(
            per("tools", "tool"),
            totals(&[("add", 30, 0), ("divide", 30, 10)])
        );
        assert_eq!(
            per("top_users", "user_id"),
            totals(&[("alice", 40, 10), ("bob", 20, 0)])
        );
    }
    for replica in &mut replicas {
        replica.terminate();
    }
    let db = sql(&url).await;
    assert_eq!(scalar(&db, "SELECT count(*) FROM tool_calls").await, 60);
    for (rollup, query) in DISAGREEMENTS {
        assert_eq!(
            scalar(&db, query).await,
            0,
            "{rollup} disagrees with tool_calls"
        );
    }
    let writers: Vec<(i64, i64)> = db
        .query(
            "SELECT written, dropped FROM recorder_stats ORDER BY pid",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    // Each replica wrote its 30 calls and the other requests it answered (its client's
    // `initialize`, `tools/list`), and dropped nothing.
    let stored = scalar(
        &db,
        "SELECT (SELECT count(*) FROM tool_calls) + (SELECT count(*) FROM requests)",
    )
    .await;
    assert_eq!(writers.len(), 2, "one recorder per replica");
    assert!(
        writers
            .iter()
            .all(|&(written, dropped)| written >= 30 && dropped == 0),
        "each replica wrote at least its 30 calls and dropped none: {writers:?}"
    );
    assert_eq!(
        writers.iter().map(|&(written, _)| written).sum::<i64>(),
        stored,
        "the replicas wrote exactly the rows stored"
    );
}
