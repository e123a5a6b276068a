//! Latency histograms for the per-minute rollup: log-scale buckets (8 per doubling, so any
//! percentile is within ~4.5 % of the truth), stored sparsely as a BLOB and merged in SQL.

/// Buckets per doubling of latency.
const PER_OCTAVE: f64 = 8.0;

/// A histogram of call durations in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Count per bucket, dense (grown on demand; at most ~520 buckets).
    counts: Vec<u64>,
}

impl LatencyHistogram {
    /// Counts one duration.
    pub fn record(&mut self, duration_us: u64) {
        self.add(bucket_of(duration_us), 1);
    }

    fn add(&mut self, bucket: u16, count: u64) {
        let index = usize::from(bucket);
        if index >= self.counts.len() {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] += count;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    /// Adds the counts of a histogram in its BLOB form; `false` (adding nothing) when malformed.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> bool {
        if !bytes.len().is_multiple_of(10) {
            return false;
        }
        for pair in bytes.chunks_exact(10) {
            let bucket = u16::from_le_bytes([pair[0], pair[1]]);
            let count = u64::from_le_bytes(pair[2..10].try_into().expect("8 bytes"));
            self.add(bucket, count);
        }
        true
    }

    /// The BLOB of `stored` (a BLOB) with `batch` (another) added: how the rollups merge
    /// histograms, in SQL natively and in Rust on PostgreSQL and D1.
    pub(crate) fn merge_blobs(stored: &[u8], batch: &[u8]) -> Vec<u8> {
        let mut merged = Self::decode(stored).unwrap_or_default();
        merged.merge_encoded(batch);
        merged.encode()
    }

    /// How many durations were counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0.0–1.0) in microseconds: the middle of the bucket holding it.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(bucket_middle(bucket as u16));
            }
        }
        None
    }

    /// The sparse BLOB form: `(u16 bucket, u64 count)` little-endian pairs.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (bucket, count) in self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
        {
            out.extend_from_slice(&(bucket as u16).to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out
    }

    /// Reads the BLOB form; `None` when it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut histogram = Self::default();
        histogram.merge_encoded(bytes).then_some(histogram)
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
