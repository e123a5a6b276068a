//! What each rule sees in the rollups now: one [`Observation`] per subject (a tool, a server,
//! a session's tool and arguments), breaching or not. Windows are read by the minute
//! (`tool_calls_1m`, `tool_loops_1m`) from the start of the minute the window begins in. The
//! queries are written once for SQLite and PostgreSQL, over [`Source`].

use std::collections::BTreeMap;

use super::{DeadMan, ErrorRate, Kind, P95, Rule, RunawayLoop, human};
use crate::{
    schema::IS_ERROR,
    store::{
        LatencyHistogram,
        source::{Param, Source},
    },
};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// A rule's view of one subject.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Observation {
    /// The subject's key in `alert_state` (server, tool, session, arguments).
    pub subject: String,
    pub server: String,
    pub tool: Option<String>,
    pub session: Option<String>,
    pub value: f64,
    pub breaching: bool,
    /// What was seen, as a sentence (`error rate of `divide` is 42% (21/50 calls) over 15m,
    /// threshold 5%`).
    pub sentence: String,
}

/// The rule's observations at `now_ms`.
pub(crate) fn observe<S: Source>(
    db: &S,
    rule: &Rule,
    now_ms: i64,
) -> Result<Vec<Observation>, S::Error> {
    match rule {
        Rule::ErrorRate(rule) => error_rate(db, rule, now_ms),
        Rule::P95(rule) => p95(db, rule, now_ms),
        Rule::DeadMan(rule) => dead_man(db, rule, now_ms),
        Rule::RunawayLoop(rule) => runaway_loop(db, rule, now_ms),
    }
}

fn floor(ts_ms: i64, unit: i64) -> i64 {
    ts_ms - ts_ms.rem_euclid(unit)
}

/// The first minute of a window of `window_ms` ending now.
fn window_start(now_ms: i64, window: std::time::Duration) -> i64 {
    floor(now_ms - window.as_millis() as i64, MINUTE_MS)
}

fn error_rate<S: Source>(
    db: &S,
    rule: &ErrorRate,
    now_ms: i64,
) -> Result<Vec<Observation>, S::Error> {
    let sql = format!(
        "SELECT server_name, tool, CAST(sum(calls) AS BIGINT), CAST(sum(CASE WHEN {IS_ERROR} THEN calls ELSE 0 END) AS BIGINT) FROM tool_calls_1m WHERE minute_ms >= ?1 AND status <> 'unknown_tool' GROUP BY server_name, tool ORDER BY server_name, tool"
    );
    let rows = db.rows(
        &sql,
        &[Param::Int(window_start(now_ms, rule.window))],
        |row| Ok((row.string(0)?, row.string(1)?, row.int(2)?, row.int(3)?)),
    )?;
    let mut observations = Vec::new();
    for (server, tool, calls, errors) in rows {
        let rate = if calls > 0 {
            errors as f64 * 100.0 / calls as f64
        } else {
            0.0
        };
        observations.push(Observation {
            subject: format!("{server}/{tool}"),
            breaching: calls as u64 >= rule.min_calls && rate > rule.threshold.value(),
            sentence: format!(
                "error rate of `{tool}` is {} ({errors}/{calls} calls) over {}, threshold {}",
                percent(rate),
                human(rule.window),
                rule.threshold
            ),
            server,
            tool: Some(tool),
            session: None,
            value: rate,
        });
    }
    Ok(observations)
}

/// A percentage rounded to what a reader needs: `42%`, `4.7%`, `0.12%`.
fn percent(value: f64) -> String {
    let digits = if value >= 10.0 {
        0
    } else if value >= 1.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}%")
}

/// Milliseconds as `850ms`, `2.4s` or `2s`.
fn latency(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        let seconds = format!("{:.1}", ms / 1000.0);
        format!("{}s", seconds.trim_end_matches(".0"))
    }
}

fn p95<S: Source>(db: &S, rule: &P95, now_ms: i64) -> Result<Vec<Observation>, S::Error> {
    let mut tools: BTreeMap<(String, String), (u64, LatencyHistogram)> = BTreeMap::new();
    db.each(
        "SELECT server_name, tool, calls, latency_hist FROM tool_calls_1m WHERE minute_ms >= ?1 AND status <> 'unknown_tool'",
        &[Param::Int(window_start(now_ms, rule.window))],
        &mut |row| {
            let entry = tools
                .entry((row.string(0)?, row.string(1)?))
                .or_insert_with(|| (0, LatencyHistogram::default()));
            entry.0 += u64::try_from(row.int(2)?).unwrap_or(0);
            entry.1.merge_encoded(row.blob(3)?);
            Ok(())
        },
    )?;
    let threshold_ms = rule.threshold.as_secs_f64() * 1000.0;
    Ok(tools
        .into_iter()
        .map(|((server, tool), (calls, histogram))| {
            let p95_ms = histogram.quantile(0.95).unwrap_or(0.0) / 1000.0;
            Observation {
                subject: format!("{server}/{tool}"),
                breaching: calls >= rule.min_calls && p95_ms > threshold_ms,
                sentence: format!(
                    "p95 latency of `{tool}` is {} ({calls} calls) over {}, threshold {}",
                    latency(p95_ms),
                    human(rule.window),
                    latency(threshold_ms)
                ),
                server,
                tool: Some(tool),
                session: None,
                value: p95_ms,
            }
        })
        .collect())
}

/// The single integer `sql` answers (NULL when it has no rows to aggregate).
fn one<S: Source>(db: &S, sql: &str, params: &[Param<'_>]) -> Result<Option<i64>, S::Error> {
    Ok(db
        .rows(sql, params, |row| row.nullable_int(0))?
        .into_iter()
        .next()
        .flatten())
}

/// Every server (or the rule's tool on every server) that ever had calls, and how long it has
/// been silent: its latest hour from `tool_calls_1h`, its latest minute from `tool_calls_1m`
/// since then (the hourly rollup may lag), and, only when that minute began before the
/// silence would, its last call from that minute's rows.
fn dead_man<S: Source>(db: &S, rule: &DeadMan, now_ms: i64) -> Result<Vec<Observation>, S::Error> {
    let tool = rule.tool.as_deref();
    let hours = db.rows(
        "SELECT server_name, max(hour_ms) FROM tool_calls_1h WHERE (?1 IS NULL OR tool = ?1) GROUP BY server_name",
        &[Param::Text(tool)],
        |row| Ok((row.string(0)?, row.int(1)?)),
    )?;
    // Servers whose calls are not in the hourly rollup yet, from the minutes since the start
    // of the previous hour.
    let recent_from = floor(now_ms, HOUR_MS) - HOUR_MS;
    let recent = db.rows(
        "SELECT server_name, max(minute_ms) FROM tool_calls_1m WHERE minute_ms >= ?1 AND (?2 IS NULL OR tool = ?2) GROUP BY server_name",
        &[Param::Int(recent_from), Param::Text(tool)],
        |row| Ok((row.string(0)?, row.int(1)?)),
    )?;
    let mut servers: BTreeMap<String, i64> = BTreeMap::new();
    for (server, hour) in hours {
        servers.insert(server, hour);
    }
    for (server, minute) in recent {
        servers.entry(server).or_insert(minute);
    }
    let silence_ms = rule.silence.as_millis() as i64;
    let mut observations = Vec::new();
    for (server, since) in servers {
        let minute = one(
            db,
            "SELECT max(minute_ms) FROM tool_calls_1m WHERE minute_ms >= ?1 AND server_name = ?2 AND (?3 IS NULL OR tool = ?3)",
            &[
                Param::Int(since),
                Param::Text(Some(&server)),
                Param::Text(tool),
            ],
        )?;
        let last_ms = match minute {
            None => since,
            Some(minute) if minute > now_ms - silence_ms => minute,
            Some(minute) => one(
                db,
                "SELECT max(ts_ms) FROM tool_calls WHERE ts_ms >= ?1 AND ts_ms < ?1 + 60000 AND server_name = ?2 AND (?3 IS NULL OR tool = ?3)",
                &[Param::Int(minute), Param::Text(Some(&server)), Param::Text(tool)],
            )?
            .unwrap_or(minute),
        };
        let quiet_ms = (now_ms - last_ms).max(0);
        let target = match tool {
            None => format!("`{server}`"),
            Some(tool) => format!("`{tool}` of `{server}`"),
        };
        let quiet = human(std::time::Duration::from_secs((quiet_ms / 1000) as u64));
        observations.push(Observation {
            subject: match tool {
                None => server.clone(),
                Some(tool) => format!("{server}/{tool}"),
            },
            breaching: quiet_ms >= silence_ms,
            sentence: format!(
                "no calls to {target} for {quiet}, threshold {}",
                human(rule.silence)
            ),
            server,
            tool: tool.map(str::to_owned),
            session: None,
            value: quiet_ms as f64 / 1000.0,
        });
    }
    Ok(observations)
}

/// Sessions calling one tool with the same arguments more than the rule's count in a minute
/// of the window, from the start of the minute it begins in (only those: the others are not
/// breaching, and a firing one no longer seen resolves).
fn runaway_loop<S: Source>(
    db: &S,
    rule: &RunawayLoop,
    now_ms: i64,
) -> Result<Vec<Observation>, S::Error> {
    let from = window_start(now_ms, rule.window);
    let rows = db.rows(
        "SELECT server_name, session_id, tool, args_fp, max(calls) FROM tool_loops_1m WHERE minute_ms >= ?1 GROUP BY server_name, session_id, tool, args_fp HAVING max(calls) > ?2 ORDER BY server_name, session_id, tool, args_fp",
        &[
            Param::Int(from),
            Param::Int(i64::try_from(rule.calls).unwrap_or(i64::MAX)),
        ],
        |row| {
            Ok((
                row.string(0)?,
                row.string(1)?,
                row.string(2)?,
                row.int(3)?,
                row.int(4)?,
            ))
        },
    )?;
    let mut observations = Vec::new();
    for (server, session, tool, fingerprint, calls) in rows {
        observations.push(Observation {
            subject: format!("{server}/{session}/{tool}/{fingerprint:016x}"),
            breaching: true,
            sentence: format!(
                "session `{session}` called `{tool}` {calls} times in a minute with the same arguments, threshold {}",
                rule.calls
            ),
            server,
            tool: Some(tool),
            session: Some(session),
            value: calls as f64,
        });
    }
    Ok(observations)
}

impl Kind {
    /// The sentence of a firing alert that resolved without being seen again.
    pub(crate) fn gone(self) -> &'static str {
        match self {
            Kind::ErrorRate | Kind::P95 => "no calls left in the window",
            Kind::DeadMan => "no longer watched",
            Kind::RunawayLoop => "the loop stopped",
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Status, ToolCallEvent, Transport, alerts::Percent};

    fn call(
        index: usize,
        ts_ms: i64,
        tool: &str,
        status: Status,
        duration_us: u64,
    ) -> ToolCallEvent {
        ToolCallEvent {
            id: format!("0190a5c2-0000-7000-8000-{index:012x}"),
            ts_ms,
            server_name: "demo".into(),
            server_version: "1".into(),
            tool: tool.into(),
            user_id: None,
            user_email: None,
            user_name: None,
            session_id: Some("s-1".into()),
            client_name: None,
            client_version: None,
            protocol_version: None,
            transport: Transport::Stdio,
            request_id: None,
            duration_us,
            status,
            error_type: None,
            error_message: None,
            params: None,
            result: None,
            ts_ns: None,
            traceparent: None,
            tracestate: None,
        }
    }

    #[test]
    fn percentages_keep_the_digits_a_reader_needs() {
        assert_eq!(percent(42.0), "42%");
        assert_eq!(percent(4.7), "4.7%");
        assert_eq!(percent(0.126), "0.13%");
        assert_eq!(percent(5.0), "5%");
        assert_eq!(latency(850.0), "850ms");
        assert_eq!(latency(2400.0), "2.4s");
        assert_eq!(latency(2000.0), "2s");
    }

    fn store(calls: &[ToolCallEvent]) -> (tempfile::TempDir, crate::store::SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::SqliteStore::open(dir.path().join("a.db")).unwrap();
        store.append(calls).unwrap();
        (dir, store)
    }

    #[test]
    fn one_failure_in_two_calls_stays_quiet_below_the_minimum_and_a_busy_failing_tool_breaches() {
        let now = 1_764_000_000_000;
        let mut calls = vec![
            call(0, now - 1000, "night", Status::ToolError, 100),
            call(1, now - 900, "night", Status::Ok, 100),
        ];
        calls.extend((2..22).map(|i| {
            let status = if i % 10 == 0 {
                Status::ToolError
            } else {
                Status::Ok
            };
            call(i, now - 500, "busy", status, 100)
        }));
        let (_dir, store) = store(&calls);
        let rule = ErrorRate::new(Percent::new(5.0), Duration::from_secs(900));
        let seen = error_rate(store.connection(), &rule, now).unwrap();
        let night = seen
            .iter()
            .find(|seen| seen.subject == "demo/night")
            .unwrap();
        assert!(!night.breaching, "{night:?}");
        let busy = seen
            .iter()
            .find(|seen| seen.subject == "demo/busy")
            .unwrap();
        assert!(busy.breaching, "{busy:?}");
        assert_eq!(
            busy.sentence,
            "error rate of `busy` is 10% (2/20 calls) over 15m, threshold 5%"
        );
    }

    #[test]
    fn p95_breaches_for_the_slow_tool_only() {
        let now = 1_764_000_000_000;
        let calls: Vec<ToolCallEvent> = (0..40)
            .map(|i| {
                let (tool, us) = if i % 2 == 0 {
                    ("search", 3_000_000)
                } else {
                    ("fast", 10_000)
                };
                call(i, now - 2000, tool, Status::Ok, us)
            })
            .collect();
        let (_dir, store) = store(&calls);
        let rule = P95::new(Duration::from_secs(2), Duration::from_secs(900));
        let seen = p95(store.connection(), &rule, now).unwrap();
        let search = seen
            .iter()
            .find(|seen| seen.subject == "demo/search")
            .unwrap();
        assert!(search.breaching && search.value > 2000.0, "{search:?}");
        // The histogram's buckets are a few percent wide.
        let sentence = &search.sentence;
        assert!(
            sentence.starts_with("p95 latency of `search` is 3")
                && sentence.ends_with("s (20 calls) over 15m, threshold 2s"),
            "{sentence}"
        );
        let fast = seen
            .iter()
            .find(|seen| seen.subject == "demo/fast")
            .unwrap();
        assert!(!fast.breaching, "{fast:?}");
    }

    #[test]
    fn a_loop_in_the_minute_that_just_ended_still_fires_after_the_minute_turns() {
        let minute = 1_764_000_060_000;
        let calls: Vec<ToolCallEvent> = (0..6)
            .map(|i| call(i, minute - 1000, "add", Status::Ok, 100))
            .collect();
        let (_dir, store) = store(&calls);
        let seen = runaway_loop(store.connection(), &RunawayLoop::new(5), minute + 500).unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            seen[0].sentence,
            "session `s-1` called `add` 6 times in a minute with the same arguments, threshold 5"
        );
    }

    /// The rule queries are written once for both backends: over the same calls, PostgreSQL
    /// observes what SQLite does, for every rule.
    #[cfg(feature = "postgres")]
    #[test]
    fn every_rule_observes_the_same_on_postgres_as_on_sqlite() {
        use crate::{Database, alerts::DeadMan, postgres::test_cluster::Cluster, store::PgStore};

        let now = 1_764_000_030_000;
        let mut calls: Vec<ToolCallEvent> = (0..30)
            .map(|i| {
                let (tool, status, us) = match i % 3 {
                    0 => ("divide", Status::ToolError, 1_000),
                    1 => ("search", Status::Ok, 3_000_000),
                    _ => ("add", Status::Ok, 100),
                };
                call(i, now - 20_000 - i as i64 * 1_000, tool, status, us)
            })
            .collect();
        calls.push(call(30, now - 2 * HOUR_MS, "night", Status::Ok, 100));
        calls.push(call(31, now - 50 * MINUTE_MS, "night", Status::Ok, 100));
        let (_dir, sqlite) = store(&calls);
        let Database::Postgres(url) =
            Database::from(Cluster::shared().create_database("alerts_observe"))
        else {
            unreachable!("a postgres URL")
        };
        let mut postgres = PgStore::open(&url).unwrap();
        postgres.append(&calls).unwrap();
        let window = Duration::from_secs(900);
        let rules = [
            Rule::ErrorRate(ErrorRate::new(Percent::new(5.0), window).min_calls(5)),
            Rule::P95(P95::new(Duration::from_secs(2), window).min_calls(5)),
            Rule::DeadMan(DeadMan::server(Duration::from_secs(600))),
            Rule::DeadMan(DeadMan::tool("night", Duration::from_secs(600))),
            Rule::DeadMan(DeadMan::tool("never", Duration::from_secs(600))),
            Rule::RunawayLoop(RunawayLoop::new(5).window(Duration::from_secs(120))),
        ];
        let mut breaching = 0;
        for rule in &rules {
            let seen = observe(sqlite.connection(), rule, now).unwrap();
            assert_eq!(observe(&postgres, rule, now).unwrap(), seen, "{rule:?}");
            breaching += seen.iter().filter(|seen| seen.breaching).count();
        }
        // divide's error rate, search's p95, night's silence, and the loops of divide, search
        // and add (ten calls each within two minutes).
        assert_eq!(breaching, 6);
    }
}
