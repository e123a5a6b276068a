//! Alerts: rules evaluated every few seconds on the rollups by a background thread of the
//! [`Analytics`](crate::Analytics) handle (never per call), their state kept in the database,
//! and a JSON notification (with a Slack-compatible `text`) posted to webhooks once per
//! transition.
//!
//! | rule | breaches when |
//! |---|---|
//! | [`ErrorRate`] | a tool's failed calls exceed a share of its calls over a window (with a minimum call count) |
//! | [`P95`] | a tool's 95th-percentile latency over a window exceeds a threshold |
//! | [`DeadMan`] | a server (or one tool) received no call for a while |
//! | [`RunawayLoop`] | one session called one tool with the same (redacted) arguments more than N times in a minute |
//!
//! Each rule's state per subject (a tool, a server, a session's tool and arguments) is a row
//! of `alert_state`: `ok` → `firing` notifies once, `firing` → `ok` resolves once, and the
//! transition is a compare-and-set in SQL, so of several replicas evaluating one database only
//! the one that made it notifies. A notification no webhook accepted after its retries stays
//! pending in the row and is retried at the next evaluation.
//!
//! ```no_run
//! use std::time::Duration;
//! use mcp_analytics::{Analytics, alerts::{Alerts, DeadMan, ErrorRate, P95, Percent, RunawayLoop, Webhook}};
//!
//! # fn main() -> Result<(), mcp_analytics::Error> {
//! let alerts = Alerts::new()
//!     .webhook(Webhook::parse("https://hooks.slack.com/services/T000/B000/XXXX")?)
//!     .error_rate(ErrorRate::new(Percent::new(5.0), Duration::from_secs(15 * 60)).min_calls(20))
//!     .p95(P95::new(Duration::from_secs(2), Duration::from_secs(15 * 60)))
//!     .dead_man(DeadMan::server(Duration::from_secs(30 * 60)))
//!     .runaway_loop(RunawayLoop::new(20));
//! let analytics = Analytics::builder().database("./mcp-analytics.db").alerts(alerts).build()?;
//! # Ok(()) }
//! ```
//!
//! From the environment (see [`Config`](crate::Config)): `MCP_ANALYTICS_ALERT_WEBHOOK`
//! (comma-separated URLs), `MCP_ANALYTICS_ALERT_ERROR_RATE` (`5%/15m`, or `5%/15m/20` with a
//! minimum of 20 calls), `MCP_ANALYTICS_ALERT_P95` (`2s/15m`), `MCP_ANALYTICS_ALERT_DEAD_MAN`
//! (`30m`, or `10m/tool` for one tool; comma-separated), `MCP_ANALYTICS_ALERT_LOOP` (`20/1m`)
//! and `MCP_ANALYTICS_ALERT_INTERVAL` (`30s`).
//!
//! Alerts need a database ([`AnalyticsBuilder::database`](crate::AnalyticsBuilder::database)):
//! a SQLite file or a PostgreSQL database (feature `postgres`), whose rollups the rules read
//! and where their state is kept. Each evaluator has a connection of its own; the queries and
//! transitions are written once for both (over `store::source::Source`).

// Without `sqlite` or `postgres` no evaluator can start: the rules' queries wait for another
// `Source`.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

mod deliver;
mod env;
mod evaluate;
#[cfg(all(test, feature = "sqlite"))]
mod model_tests;
mod state;
mod task;

use std::time::Duration;

pub use deliver::Webhook;
pub(crate) use task::Evaluator;

/// A percentage, kept to a hundredth of a percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Percent(u32);

impl Percent {
    /// `value` percent.
    ///
    /// # Panics
    /// When `value` is not between 0 and 100.
    pub fn new(value: f64) -> Self {
        assert!(
            (0.0..=100.0).contains(&value),
            "a percentage is between 0 and 100, not {value}"
        );
        Self((value * 100.0).round() as u32)
    }

    /// The percentage, e.g. `5.0`.
    pub fn value(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.value())
    }
}

/// A tool's error rate above `threshold` over `window`, once it had at least `min_calls`
/// calls in it (calls of unknown tools are not counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorRate {
    threshold: Percent,
    window: Duration,
    min_calls: u64,
}

impl ErrorRate {
    /// The minimum number of calls in the window unless [`min_calls`](Self::min_calls) says
    /// otherwise, so that one failure in two calls at 3 a.m. does not page.
    pub const DEFAULT_MIN_CALLS: u64 = 20;

    /// Errors above `threshold` of the calls over `window` (read by the minute).
    pub fn new(threshold: Percent, window: Duration) -> Self {
        Self {
            threshold,
            window,
            min_calls: Self::DEFAULT_MIN_CALLS,
        }
    }

    /// Only tools with at least `calls` calls in the window can breach.
    pub fn min_calls(mut self, calls: u64) -> Self {
        self.min_calls = calls;
        self
    }
}

/// A tool's 95th-percentile latency above `threshold` over `window`, once it had at least
/// `min_calls` calls in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct P95 {
    threshold: Duration,
    window: Duration,
    min_calls: u64,
}

impl P95 {
    /// The minimum number of calls in the window unless [`min_calls`](Self::min_calls) says
    /// otherwise.
    pub const DEFAULT_MIN_CALLS: u64 = 20;

    /// p95 latency above `threshold` over `window` (read by the minute).
    pub fn new(threshold: Duration, window: Duration) -> Self {
        Self {
            threshold,
            window,
            min_calls: Self::DEFAULT_MIN_CALLS,
        }
    }

    /// Only tools with at least `calls` calls in the window can breach.
    pub fn min_calls(mut self, calls: u64) -> Self {
        self.min_calls = calls;
        self
    }
}

/// No calls for `silence`: to a server (every server that ever had calls), or to one tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadMan {
    silence: Duration,
    tool: Option<String>,
}

impl DeadMan {
    /// No calls to the server for `silence`.
    pub fn server(silence: Duration) -> Self {
        Self {
            silence,
            tool: None,
        }
    }

    /// No calls to `tool` for `silence`.
    pub fn tool(tool: impl Into<String>, silence: Duration) -> Self {
        Self {
            silence,
            tool: Some(tool.into()),
        }
    }
}

/// One session calling one tool with the same (redacted) arguments more than `calls` times in
/// a minute; it stays firing while a minute overlapping the last `window` (default one minute,
/// so the current and the previous minute) had that many.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunawayLoop {
    calls: u64,
    window: Duration,
}

impl RunawayLoop {
    /// More than `calls` identical calls of one session in a minute.
    pub fn new(calls: u64) -> Self {
        Self {
            calls,
            window: Duration::from_secs(60),
        }
    }

    /// How far back minutes are looked at (default one minute; the per-minute counts are
    /// kept for a day).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }
}

/// A rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    ErrorRate(ErrorRate),
    P95(P95),
    DeadMan(DeadMan),
    RunawayLoop(RunawayLoop),
}

/// What a rule watches, as stored and sent (`kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    ErrorRate,
    P95,
    DeadMan,
    RunawayLoop,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::ErrorRate => "error_rate",
            Kind::P95 => "p95",
            Kind::DeadMan => "dead_man",
            Kind::RunawayLoop => "runaway_loop",
        }
    }
}

impl Rule {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Rule::ErrorRate(_) => Kind::ErrorRate,
            Rule::P95(_) => Kind::P95,
            Rule::DeadMan(_) => Kind::DeadMan,
            Rule::RunawayLoop(_) => Kind::RunawayLoop,
        }
    }

    /// The rule's id in `alert_state` and notifications: its kind and settings, so a changed
    /// rule starts afresh.
    pub(crate) fn id(&self) -> String {
        match self {
            Rule::ErrorRate(rule) => format!(
                "error_rate>{}/{}/{}",
                rule.threshold,
                human(rule.window),
                rule.min_calls
            ),
            Rule::P95(rule) => format!(
                "p95>{}/{}/{}",
                human(rule.threshold),
                human(rule.window),
                rule.min_calls
            ),
            Rule::DeadMan(rule) => match &rule.tool {
                None => format!("dead_man/{}", human(rule.silence)),
                Some(tool) => format!("dead_man/{}/{tool}", human(rule.silence)),
            },
            Rule::RunawayLoop(rule) => format!("loop>{}/{}", rule.calls, human(rule.window)),
        }
    }

    /// The threshold as sent (`value` compares to it): a percentage, milliseconds, seconds of
    /// silence, or calls.
    pub(crate) fn threshold(&self) -> f64 {
        match self {
            Rule::ErrorRate(rule) => rule.threshold.value(),
            Rule::P95(rule) => rule.threshold.as_secs_f64() * 1000.0,
            Rule::DeadMan(rule) => rule.silence.as_secs_f64(),
            Rule::RunawayLoop(rule) => rule.calls as f64,
        }
    }

    /// The window the rule looks at.
    pub(crate) fn window(&self) -> Duration {
        match self {
            Rule::ErrorRate(rule) => rule.window,
            Rule::P95(rule) => rule.window,
            Rule::DeadMan(rule) => rule.silence,
            Rule::RunawayLoop(rule) => rule.window,
        }
    }
}

/// Alert rules, webhooks and how often they are evaluated; hand it to
/// [`AnalyticsBuilder::alerts`](crate::AnalyticsBuilder::alerts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alerts {
    pub(crate) rules: Vec<Rule>,
    pub(crate) webhooks: Vec<Webhook>,
    pub(crate) interval: Duration,
}

impl Default for Alerts {
    fn default() -> Self {
        Self::new()
    }
}

impl Alerts {
    /// How often rules are evaluated unless [`interval`](Self::interval) says otherwise.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

    /// No rules, no webhooks, evaluated every [`Self::DEFAULT_INTERVAL`].
    pub fn new() -> Self {
        Self {
            rules: Vec::new(),
            webhooks: Vec::new(),
            interval: Self::DEFAULT_INTERVAL,
        }
    }

    /// Posts notifications to `webhook` too.
    pub fn webhook(mut self, webhook: Webhook) -> Self {
        self.webhooks.push(webhook);
        self
    }

    /// Adds an error-rate rule.
    pub fn error_rate(self, rule: ErrorRate) -> Self {
        self.rule(Rule::ErrorRate(rule))
    }

    /// Adds a p95-latency rule.
    pub fn p95(self, rule: P95) -> Self {
        self.rule(Rule::P95(rule))
    }

    /// Adds a dead-man rule.
    pub fn dead_man(self, rule: DeadMan) -> Self {
        self.rule(Rule::DeadMan(rule))
    }

    /// Adds a runaway-loop rule.
    pub fn runaway_loop(self, rule: RunawayLoop) -> Self {
        self.rule(Rule::RunawayLoop(rule))
    }

    /// How often the rules are evaluated (default [`Self::DEFAULT_INTERVAL`]).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The rules and webhooks set by `MCP_ANALYTICS_ALERT_*`, if any is set.
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, crate::Error> {
        env::from_lookup(lookup)
    }
}

/// `duration` the way it is written in the settings: `500ms`, `90s`, `15m`, `2h`, `1d`.
pub(crate) fn human(duration: Duration) -> String {
    let ms = duration.as_millis();
    for (unit, name) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ] {
        if ms >= unit && ms.is_multiple_of(unit) {
            return format!("{}{name}", ms / unit);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_in_their_largest_whole_unit() {
        assert_eq!(human(Duration::from_secs(900)), "15m");
        assert_eq!(human(Duration::from_secs(90)), "90s");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
        assert_eq!(human(Duration::from_secs(7200)), "2h");
    }

    #[test]
    fn rule_ids_carry_their_settings() {
        let rule = Rule::ErrorRate(ErrorRate::new(Percent::new(5.0), Duration::from_secs(900)));
        assert_eq!(rule.id(), "error_rate>5%/15m/20");
        let rule = Rule::DeadMan(DeadMan::tool("divide", Duration::from_secs(600)));
        assert_eq!(rule.id(), "dead_man/10m/divide");
        assert_eq!(Percent::new(12.5).to_string(), "12.5%");
    }
}
