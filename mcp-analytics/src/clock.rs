//! Time for the call path, from the platform's clock: the OS natively, JavaScript's `Date.now()`
//! on `wasm32` (where `Instant::now` and `SystemTime::now` abort). On Cloudflare Workers the
//! JavaScript clock advances only while a request waits on I/O, so a call that only computes
//! measures zero there.

use std::time::Duration;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

/// Nanoseconds since the Unix epoch (at the clock's resolution).
pub(crate) fn now_ns() -> u64 {
    u64::try_from(since_epoch().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(not(target_arch = "wasm32"))]
fn since_epoch() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(target_arch = "wasm32")]
fn since_epoch() -> Duration {
    Duration::from_secs_f64(js_sys::Date::now().max(0.0) / 1000.0)
}

/// Measures how long something took: a monotonic `Instant` natively, the JavaScript clock on
/// `wasm32`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stopwatch {
    #[cfg(not(target_arch = "wasm32"))]
    started: std::time::Instant,
    #[cfg(target_arch = "wasm32")]
    started_ms: f64,
}

impl Stopwatch {
    /// A stopwatch running from now.
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(not(target_arch = "wasm32"))]
            started: std::time::Instant::now(),
            #[cfg(target_arch = "wasm32")]
            started_ms: js_sys::Date::now(),
        }
    }

    /// The time since [`Stopwatch::start`].
    pub(crate) fn elapsed(&self) -> Duration {
        #[cfg(not(target_arch = "wasm32"))]
        return self.started.elapsed();
        #[cfg(target_arch = "wasm32")]
        return Duration::from_secs_f64((js_sys::Date::now() - self.started_ms).max(0.0) / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_reads_the_same_in_milliseconds_and_nanoseconds() {
        let ms = now_ms();
        let ns = now_ns();
        assert!(ms > 1_700_000_000_000, "{ms}");
        assert!((i64::try_from(ns / 1_000_000).unwrap() - ms).abs() < 1_000);
    }

    #[test]
    fn a_stopwatch_never_runs_backwards() {
        let watch = Stopwatch::start();
        let first = watch.elapsed();
        assert!(watch.elapsed() >= first);
    }
}
