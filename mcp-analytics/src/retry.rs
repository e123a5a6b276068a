//! Retrying: exponential backoff with full jitter (the exporters' deliveries, the ledger's
//! credit uses) and the `Retry-After` a server asks for (the collector and OTLP exporters).

use std::time::Duration;

/// The `Retry-After` of a response, in seconds (the HTTP-date form is not used by collectors).
#[cfg(any(feature = "export-http", feature = "otlp"))]
pub(crate) fn retry_after(response: &reqwest::blocking::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Exponential backoff with full jitter: uniform in [0, min(max, min · 2^attempts)], at least
/// 10 ms.
pub(crate) fn backoff(min: Duration, max: Duration, attempts: u32) -> Duration {
    let ceiling = min.saturating_mul(1 << attempts.min(16)).min(max);
    let jitter = u32::try_from(crate::clock::now_ns() % 1000).unwrap_or(500);
    ceiling
        .mul_f64(f64::from(jitter) / 1000.0)
        .max(Duration::from_millis(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_never_zero() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(1));
        for attempts in [0, 1, 5, 40] {
            let delay = backoff(min, max, attempts);
            assert!(delay >= Duration::from_millis(10), "{delay:?}");
            assert!(delay <= max, "{delay:?}");
        }
        assert!(backoff(min, max, 0) <= min);
    }
}
