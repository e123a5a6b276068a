//! `MCP_ANALYTICS_ALERT_*`: the alert rules, webhooks and interval from the environment.

use super::{Alerts, DeadMan, ErrorRate, P95, Percent, RunawayLoop, Webhook};
use crate::{Error, env::parse_duration};

const WEBHOOK: &str = "MCP_ANALYTICS_ALERT_WEBHOOK";
const ERROR_RATE: &str = "MCP_ANALYTICS_ALERT_ERROR_RATE";
const P95_VAR: &str = "MCP_ANALYTICS_ALERT_P95";
const DEAD_MAN: &str = "MCP_ANALYTICS_ALERT_DEAD_MAN";
const LOOP: &str = "MCP_ANALYTICS_ALERT_LOOP";
const INTERVAL: &str = "MCP_ANALYTICS_ALERT_INTERVAL";

pub(super) fn from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<Alerts>, Error> {
    let read = |var: &str| lookup(var).filter(|value| !value.trim().is_empty());
    let vars = [WEBHOOK, ERROR_RATE, P95_VAR, DEAD_MAN, LOOP, INTERVAL];
    if vars.iter().all(|var| read(var).is_none()) {
        return Ok(None);
    }
    let mut alerts = Alerts::new();
    if let Some(value) = read(WEBHOOK) {
        for url in value
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
        {
            alerts = alerts.webhook(Webhook::parse(url)?);
        }
    }
    if let Some(value) = read(ERROR_RATE) {
        let expected =
            "a percentage and a window such as `5%/15m`, or `5%/15m/20` with a minimum of 20 calls";
        let invalid = invalid(ERROR_RATE, &value, expected);
        let (threshold, window, min_calls) = threshold_window_calls(&value, &invalid)?;
        let threshold = percent(threshold).ok_or_else(|| invalid("the percentage".into()))?;
        let rule = ErrorRate::new(threshold, window);
        let rule = match min_calls {
            Some(calls) => rule.min_calls(calls),
            None => rule,
        };
        alerts = alerts.error_rate(rule);
    }
    if let Some(value) = read(P95_VAR) {
        let expected =
            "a latency and a window such as `2s/15m`, or `2s/15m/20` with a minimum of 20 calls";
        let invalid = invalid(P95_VAR, &value, expected);
        let (threshold, window, min_calls) = threshold_window_calls(&value, &invalid)?;
        let rule = P95::new(parse_duration(threshold).map_err(&invalid)?, window);
        let rule = match min_calls {
            Some(calls) => rule.min_calls(calls),
            None => rule,
        };
        alerts = alerts.p95(rule);
    }
    if let Some(value) = read(DEAD_MAN) {
        let expected = "a silence such as `30m`, or `10m/tool_name` for one tool (comma-separated)";
        let invalid = invalid(DEAD_MAN, &value, expected);
        for item in value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let rule = match item.split_once('/') {
                None => DeadMan::server(parse_duration(item).map_err(&invalid)?),
                Some((silence, tool)) if !tool.trim().is_empty() => {
                    DeadMan::tool(tool.trim(), parse_duration(silence).map_err(&invalid)?)
                }
                Some(_) => return Err(invalid(format!("`{item}` names no tool"))),
            };
            alerts = alerts.dead_man(rule);
        }
    }
    if let Some(value) = read(LOOP) {
        let expected = "a number of identical calls per minute such as `20/1m`";
        let invalid = invalid(LOOP, &value, expected);
        let (calls, window) = value
            .split_once('/')
            .map_or((value.trim(), None), |(calls, window)| {
                (calls.trim(), Some(window))
            });
        let calls: u64 = calls
            .parse()
            .map_err(|_| invalid(format!("`{calls}` is not a whole number of calls")))?;
        let mut rule = RunawayLoop::new(calls);
        if let Some(window) = window {
            rule = rule.window(parse_duration(window).map_err(&invalid)?);
        }
        alerts = alerts.runaway_loop(rule);
    }
    if let Some(value) = read(INTERVAL) {
        let interval = parse_duration(&value).map_err(invalid(
            INTERVAL,
            &value,
            "a duration such as `30s` or `1m`",
        ))?;
        alerts = alerts.interval(interval);
    }
    Ok(Some(alerts))
}

/// `5%` (or `5`, `0.5%`) as a [`Percent`].
/// `threshold/window[/min_calls]`: the threshold's text, the window and the minimum number of
/// calls when given.
fn threshold_window_calls<'v>(
    value: &'v str,
    invalid: &impl Fn(String) -> Error,
) -> Result<(&'v str, std::time::Duration, Option<u64>), Error> {
    let parts: Vec<&str> = value.split('/').map(str::trim).collect();
    let [threshold, window, rest @ ..] = parts.as_slice() else {
        return Err(invalid("it has not two or three parts".into()));
    };
    let min_calls = match rest {
        [] => None,
        [calls] => Some(
            calls
                .parse()
                .map_err(|_| invalid(format!("`{calls}` is not a whole number of calls")))?,
        ),
        _ => return Err(invalid("it has not two or three parts".into())),
    };
    Ok((
        threshold,
        parse_duration(window).map_err(invalid)?,
        min_calls,
    ))
}

fn percent(text: &str) -> Option<Percent> {
    let value: f64 = text.trim().trim_end_matches('%').trim().parse().ok()?;
    (0.0..=100.0).contains(&value).then(|| Percent::new(value))
}

/// The error for `var`'s `value`, given why it was refused.
fn invalid<'a>(
    var: &'static str,
    value: &'a str,
    expected: &'static str,
) -> impl Fn(String) -> Error + 'a {
    move |reason| Error::InvalidConfig {
        var,
        value: value.to_owned(),
        expected: format!("{expected} ({reason})").into(),
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, time::Duration};

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Option<Alerts>, Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn no_alert_variable_means_no_alerts() {
        assert_eq!(parse(&[]).unwrap(), None);
    }

    #[test]
    fn every_variable_is_read_into_typed_rules() {
        let alerts = parse(&[
            (WEBHOOK, "https://hooks.example.com/a, http://127.0.0.1:9/b"),
            (ERROR_RATE, "5%/15m"),
            (P95_VAR, "2s/15m/50"),
            (DEAD_MAN, "30m, 10m/divide"),
            (LOOP, "20/1m"),
            (INTERVAL, "10s"),
        ])
        .unwrap()
        .unwrap();
        let expected = Alerts::new()
            .webhook(Webhook::parse("https://hooks.example.com/a").unwrap())
            .webhook(Webhook::parse("http://127.0.0.1:9/b").unwrap())
            .error_rate(ErrorRate::new(Percent::new(5.0), Duration::from_secs(900)))
            .p95(P95::new(Duration::from_secs(2), Duration::from_secs(900)).min_calls(50))
            .dead_man(DeadMan::server(Duration::from_secs(1800)))
            .dead_man(DeadMan::tool("divide", Duration::from_secs(600)))
            .runaway_loop(RunawayLoop::new(20).window(Duration::from_secs(60)))
            .interval(Duration::from_secs(10));
        assert_eq!(alerts, expected);
        let minimum = parse(&[(ERROR_RATE, "12.5/1h/3")]).unwrap().unwrap();
        assert_eq!(
            minimum.rules,
            [super::super::Rule::ErrorRate(
                ErrorRate::new(Percent::new(12.5), Duration::from_secs(3600)).min_calls(3)
            )]
        );
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_accepted_form() {
        for (var, value, form) in [
            (ERROR_RATE, "five percent", "`5%/15m`"),
            (ERROR_RATE, "150%/15m", "`5%/15m`"),
            (ERROR_RATE, "5%/15m/many", "`5%/15m`"),
            (P95_VAR, "2 seconds", "`2s/15m`"),
            (DEAD_MAN, "30", "`30m`"),
            (DEAD_MAN, "10m/", "`30m`"),
            (LOOP, "lots/1m", "`20/1m`"),
            (INTERVAL, "often", "`30s`"),
            (WEBHOOK, "hooks.example.com", "http"),
        ] {
            let error = parse(&[(var, value)]).unwrap_err().to_string();
            assert!(
                error.contains(var) && error.contains(form),
                "{var}={value}: {error}"
            );
        }
    }

    #[test]
    fn a_bad_webhook_url_is_reported_without_its_secret_path() {
        let error = parse(&[(WEBHOOK, "ftp://hooks.slack.com/services/T0/B0/SECRETTOKEN")])
            .unwrap_err()
            .to_string();
        assert!(error.contains(WEBHOOK), "{error}");
        assert!(!error.contains("SECRETTOKEN"), "{error}");
    }
}
