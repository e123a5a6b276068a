//! Latency histograms for the per-minute rollup: log-scale buckets (8 per doubling, so any
//! percentile is within ~4.5 % of the truth), stored sparsely as a BLOB and merged in SQL.

use std::collections::BTreeMap;

/// Buckets per doubling of latency.
const PER_OCTAVE: f64 = 8.0;

/// A histogram of call durations in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: BTreeMap<u16, u64>,
}

impl LatencyHistogram {
    /// Counts one duration.
    pub fn record(&mut self, duration_us: u64) {
        *self.counts.entry(bucket_of(duration_us)).or_default() += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (bucket, count) in &other.counts {
            *self.counts.entry(*bucket).or_default() += count;
        }
    }

    /// How many durations were counted.
    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The `q` quantile (0.0–1.0) in microseconds: the middle of the bucket holding it.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in &self.counts {
            seen += count;
            if seen >= rank {
                return Some(bucket_middle(*bucket));
            }
        }
        None
    }

    /// The sparse BLOB form: `(u16 bucket, u64 count)` little-endian pairs.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.counts.len() * 10);
        for (bucket, count) in &self.counts {
            out.extend_from_slice(&bucket.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out
    }

    /// Reads the BLOB form; `None` when it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(10) {
            return None;
        }
        let mut histogram = Self::default();
        for pair in bytes.chunks_exact(10) {
            let bucket = u16::from_le_bytes([pair[0], pair[1]]);
            let count = u64::from_le_bytes(pair[2..10].try_into().ok()?);
            *histogram.counts.entry(bucket).or_default() += count;
        }
        Some(histogram)
    }
}

fn bucket_of(duration_us: u64) -> u16 {
    if duration_us == 0 {
        return 0;
    }
    1 + ((duration_us as f64).log2() * PER_OCTAVE).floor() as u16
}

fn bucket_middle(bucket: u16) -> f64 {
    if bucket == 0 {
        return 0.0;
    }
    2f64.powf((f64::from(bucket) - 0.5) / PER_OCTAVE)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn quantiles_are_close() {
        let mut histogram = LatencyHistogram::default();
        for us in 1..=10_000 {
            histogram.record(us);
        }
        let p50 = histogram.quantile(0.5).unwrap();
        let p99 = histogram.quantile(0.99).unwrap();
        assert!((p50 - 5_000.0).abs() / 5_000.0 < 0.05, "p50 {p50}");
        assert!((p99 - 9_900.0).abs() / 9_900.0 < 0.05, "p99 {p99}");
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
    }

    proptest! {
        #[test]
        fn encoding_round_trips_and_merging_adds(a in prop::collection::vec(0u64..10_000_000, 0..50), b in prop::collection::vec(0u64..10_000_000, 0..50)) {
            let mut left = LatencyHistogram::default();
            a.iter().for_each(|us| left.record(*us));
            let mut right = LatencyHistogram::default();
            b.iter().for_each(|us| right.record(*us));
            prop_assert_eq!(LatencyHistogram::decode(&left.encode()), Some(left.clone()));
            left.merge(&right);
            prop_assert_eq!(left.count(), (a.len() + b.len()) as u64);
        }

        #[test]
        fn bucket_middle_is_within_five_percent(us in 1u64..u64::MAX / 2) {
            let middle = bucket_middle(bucket_of(us));
            prop_assert!((middle - us as f64).abs() / (us as f64) < 0.05);
        }
    }
}
