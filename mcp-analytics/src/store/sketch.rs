//! Distinct counts that merge: a HyperLogLog sketch (1,024 one-byte registers, about 3 %
//! standard error; exact-looking for small counts thanks to linear counting), stored as a BLOB
//! in the hourly rollup and merged in SQL by `hll_merge`.

/// Registers (2^10).
const REGISTERS: usize = 1 << BITS;
const BITS: u32 = 10;

/// A distinct-count sketch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistinctSketch {
    registers: Vec<u8>,
}

impl Default for DistinctSketch {
    fn default() -> Self {
        Self {
            registers: vec![0; REGISTERS],
        }
    }
}

impl DistinctSketch {
    /// Counts `value` (counting the same value again changes nothing).
    pub fn insert(&mut self, value: &str) {
        let hash = hash(value.as_bytes());
        let index = (hash >> (64 - BITS)) as usize;
        let rank = ((hash << BITS) | (1 << (BITS - 1))).leading_zeros() as u8 + 1;
        self.registers[index] = self.registers[index].max(rank);
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &DistinctSketch) {
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Adds a sketch in its BLOB form; `false` (adding nothing) when malformed.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() != REGISTERS {
            return false;
        }
        for (mine, theirs) in self.registers.iter_mut().zip(bytes) {
            *mine = (*mine).max(*theirs);
        }
        true
    }

    /// The estimated number of distinct values.
    pub fn estimate(&self) -> u64 {
        let m = REGISTERS as f64;
        let zeros = self
            .registers
            .iter()
            .filter(|register| **register == 0)
            .count();
        if zeros == REGISTERS {
            return 0;
        }
        let harmonic: f64 = self
            .registers
            .iter()
            .map(|register| 2f64.powi(-i32::from(*register)))
            .sum();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / harmonic;
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// The BLOB form.
    pub fn encode(&self) -> Vec<u8> {
        self.registers.clone()
    }

    /// Reads the BLOB form (`None` when malformed).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == REGISTERS).then(|| Self {
            registers: bytes.to_vec(),
        })
    }

    /// The BLOB of `stored` (a BLOB) merged with `batch` (another): how the rollups merge
    /// sketches, in SQL natively and in Rust on PostgreSQL and D1.
    pub(crate) fn merge_blobs(stored: &[u8], batch: &[u8]) -> Vec<u8> {
        let mut merged = Self::decode(stored).unwrap_or_default();
        merged.merge_encoded(batch);
        merged.encode()
    }
}

/// FNV-1a, then the SplitMix64 finaliser to spread the bits.
fn hash(bytes: &[u8]) -> u64 {
    let mut x = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_are_exact_and_large_ones_close() {
        let mut sketch = DistinctSketch::default();
        assert_eq!(sketch.estimate(), 0);
        for user in ["ann", "bob", "cid", "ann"] {
            sketch.insert(user);
        }
        assert_eq!(sketch.estimate(), 3);
        let mut large = DistinctSketch::default();
        for index in 0..100_000 {
            large.insert(&format!("user-{index}"));
        }
        let estimate = large.estimate() as f64;
        assert!((estimate - 100_000.0).abs() / 100_000.0 < 0.1, "{estimate}");
    }

    #[test]
    fn merging_is_a_union() {
        let (mut left, mut right) = (DistinctSketch::default(), DistinctSketch::default());
        (0..600).for_each(|index| left.insert(&index.to_string()));
        (300..900).for_each(|index| right.insert(&index.to_string()));
        left.merge(&right);
        let estimate = left.estimate() as f64;
        assert!((estimate - 900.0).abs() / 900.0 < 0.1, "{estimate}");
        assert_eq!(DistinctSketch::decode(&left.encode()), Some(left));
    }
}
