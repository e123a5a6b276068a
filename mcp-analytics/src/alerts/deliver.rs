//! Notifications: the JSON posted to each webhook (a Slack-compatible `text` and structured
//! fields), retried with backoff like the exporter's deliveries.

use std::time::Duration;

use serde::Serialize;

/// A webhook URL. Such URLs often carry a token in their path (Slack's do), so it is shown
/// only as its scheme and host (`https://hooks.slack.com/…`), in logs, errors and `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook(url::Url);

impl Webhook {
    /// Parses an `http://` or `https://` URL; the error names `MCP_ANALYTICS_ALERT_WEBHOOK`
    /// and shows the value without its path.
    pub fn parse(url: &str) -> Result<Self, crate::Error> {
        match url::Url::parse(url.trim()) {
            Ok(parsed)
                if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() =>
            {
                Ok(Self(parsed))
            }
            _ => Err(crate::Error::InvalidConfig {
                var: "MCP_ANALYTICS_ALERT_WEBHOOK",
                value: shown(url),
                expected: "http:// or https:// URLs, comma-separated".into(),
            }),
        }
    }

    pub(super) fn url(&self) -> &url::Url {
        &self.0
    }
}

/// `url` up to its host, the rest elided.
fn shown(url: &str) -> String {
    let url = url.trim();
    let start = url.find("://").map_or(0, |at| at + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| start + at);
    let host = url[start..end].rsplit('@').next().unwrap_or_default();
    let elided = if end < url.len() { "/…" } else { "" };
    format!("{}{host}{elided}", &url[..start])
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({})", shown(self.0.as_str()))
    }
}

impl std::fmt::Display for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shown(self.0.as_str()))
    }
}

/// What is posted: a Slack-compatible `text` and the alert's fields.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Notification {
    pub text: String,
    pub rule: String,
    pub kind: &'static str,
    /// `firing` or `resolved`.
    pub status: &'static str,
    pub server: String,
    pub tool: Option<String>,
    pub session: Option<String>,
    pub value: f64,
    pub threshold: f64,
    /// The rule's window, e.g. `15m`.
    pub window: String,
    /// When the alert started firing (RFC 3339, UTC).
    pub started_at: String,
}

/// How many times one webhook is tried per evaluation, and the backoff between tries.
const ATTEMPTS: u32 = 3;
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Poster {
    client: reqwest::blocking::Client,
}

impl Poster {
    pub(super) fn new() -> Self {
        let client = reqwest::blocking::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::blocking::Client::new());
        Self { client }
    }

    /// Posts `notification` to `webhook`, retried with backoff; the last error if every
    /// attempt failed (a 2xx answer is a success).
    pub(super) fn post(
        &self,
        webhook: &Webhook,
        notification: &Notification,
    ) -> Result<(), String> {
        let body = serde_json::to_vec(notification).map_err(|error| error.to_string())?;
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(crate::retry::backoff(MIN_BACKOFF, MAX_BACKOFF, attempt - 1));
            }
            match self
                .client
                .post(webhook.url().clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
            {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => last = format!("{webhook} answered HTTP {}", response.status()),
                // reqwest's errors name the URL: keep only what failed.
                Err(error) => last = format!("{webhook}: {}", describe(&error)),
            }
        }
        Err(last)
    }
}

fn describe(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
}

/// `ms` since the Unix epoch as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_shown_without_its_path_or_credentials() {
        let webhook =
            Webhook::parse("https://user:pw@hooks.slack.com/services/T0/B0/SECRETTOKEN").unwrap();
        for shown in [format!("{webhook}"), format!("{webhook:?}")] {
            assert!(
                !shown.contains("SECRETTOKEN") && !shown.contains("pw"),
                "{shown}"
            );
            assert!(shown.contains("https://hooks.slack.com/…"), "{shown}");
        }
    }

    #[test]
    fn timestamps_are_written_in_rfc_3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_892_800_000), "2025-12-05T00:00:00Z");
        assert_eq!(rfc3339(951_827_696_000), "2000-02-29T12:34:56Z");
    }
}
