//! W3C Trace Context: parsing the `traceparent` a client sent (SEP-414 `params._meta`), and the
//! random ids of new traces and spans. An invalid `traceparent` means "no parent", never an error.

use std::hash::{BuildHasher, RandomState};

/// The client's span, parsed from a valid `traceparent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Parent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
}

impl Parent {
    /// Parses `{version}-{trace-id}-{parent-id}-{flags}` (lowercase hex). Version `00` must be
    /// exactly 55 characters; later versions may append `-…` fields, which are ignored. Version
    /// `ff`, all-zero ids and anything malformed give `None`.
    pub(super) fn parse(traceparent: &str) -> Option<Self> {
        let value = traceparent.trim_matches([' ', '\t']).as_bytes();
        let version = value.get(..2).and_then(hex::<1>)?[0];
        let fits = match version {
            0xff => false,
            0x00 => value.len() == 55,
            _ => value.len() == 55 || (value.len() > 55 && value[55] == b'-'),
        };
        if !fits || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let trace_id = hex::<16>(&value[3..35])?;
        let span_id = hex::<8>(&value[36..52])?;
        let flags = hex::<1>(&value[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Parent {
            trace_id,
            span_id,
            flags,
        })
    }

    /// Whether the client sampled its trace (a parent-based sampler records only those).
    pub(super) fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }
}

/// Decodes exactly `2 * N` lowercase hex digits.
fn hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *slot = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Random trace and span ids: SplitMix64 seeded once per exporter from the std hasher's random
/// keys and the clock (ids need to be unique, not secret).
pub(super) struct IdGenerator {
    state: u64,
}

impl IdGenerator {
    pub(super) fn new() -> Self {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64);
        Self {
            state: RandomState::new().hash_one(clock),
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A non-zero span id.
    pub(super) fn span_id(&mut self) -> [u8; 8] {
        loop {
            let id = self.next_u64();
            if id != 0 {
                return id.to_be_bytes();
            }
        }
    }

    /// A non-zero trace id.
    pub(super) fn trace_id(&mut self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.span_id());
        id[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn parses_a_valid_traceparent() {
        let parent = Parent::parse(VALID).unwrap();
        assert_eq!(parent.trace_id[0], 0x0a);
        assert_eq!(parent.trace_id[15], 0x9c);
        assert_eq!(
            parent.span_id,
            [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]
        );
        assert!(parent.sampled());
        assert!(
            !Parent::parse(&VALID.replace("-01", "-00"))
                .unwrap()
                .sampled()
        );
        assert!(Parent::parse(&format!(" {VALID}\t")).is_some());
        // A later version may carry more fields.
        assert!(Parent::parse(&format!("01{}-future", &VALID[2..])).is_some());
    }

    #[test]
    fn rejects_invalid_traceparents() {
        for bad in [
            "",
            "garbage",
            &VALID.to_uppercase(),
            &VALID.replace("00-0af7", "ff-0af7"),
            &format!("{VALID}-extra"),
            &VALID[..54],
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319cXb7ad6b7169203331-01",
            "0é-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
        ] {
            assert_eq!(Parent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_non_zero_and_distinct() {
        let mut ids = IdGenerator::new();
        let spans: std::collections::HashSet<[u8; 8]> = (0..1000).map(|_| ids.span_id()).collect();
        assert_eq!(spans.len(), 1000);
        assert!(!spans.contains(&[0; 8]));
        assert_ne!(ids.trace_id(), ids.trace_id());
    }
}
