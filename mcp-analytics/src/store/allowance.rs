//! How many distinct client-chosen names the rollups keep: per hour, server and kind (unknown
//! tool names; the targets of one request method) the first ones keep their own rollup rows,
//! later ones are counted under one "other" row. Raw rows keep every name. Which names an hour
//! admitted is read back from the per-minute rollup (written with the rows) the first time the
//! hour is needed, so a restart admits the same ones.

use std::collections::{HashMap, HashSet};

/// Hours kept in memory; older ones are read back from the rollup when needed.
const CACHED_HOURS: usize = 48;

const HOUR_MS: i64 = 3_600_000;

/// The start of the hour of `ts_ms`.
pub(crate) fn hour_of(ts_ms: i64) -> i64 {
    ts_ms - ts_ms.rem_euclid(HOUR_MS)
}

/// The names admitted per hour, server and kind, up to `limit` each.
pub(crate) struct Allowance {
    limit: usize,
    /// Hour → server → kind → names.
    admitted: HashMap<i64, HashMap<String, HashMap<&'static str, HashSet<String>>>>,
}

impl Allowance {
    /// At most `limit` names per hour, server and kind.
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            admitted: HashMap::new(),
        }
    }

    /// Whether `name` keeps its own rollup rows in the `kind` names of `server`'s `hour`.
    /// `stored` reads the names the rollup already has, when the hour is not in memory.
    pub(super) fn admits<E>(
        &mut self,
        hour: i64,
        server: &str,
        kind: &'static str,
        name: &str,
        stored: impl FnOnce() -> Result<HashSet<String>, E>,
    ) -> Result<bool, E> {
        if self.names(hour, server, kind).is_none() {
            self.insert(hour, server, kind, stored()?);
        }
        let limit = self.limit;
        let names = self.names(hour, server, kind).expect("read just above");
        if names.contains(name) {
            return Ok(true);
        }
        if names.len() < limit {
            names.insert(name.to_owned());
            return Ok(true);
        }
        Ok(false)
    }

    fn names(
        &mut self,
        hour: i64,
        server: &str,
        kind: &'static str,
    ) -> Option<&mut HashSet<String>> {
        self.admitted.get_mut(&hour)?.get_mut(server)?.get_mut(kind)
    }

    /// Replaces what is known of `server`'s `kind` names in `hour` by `names`.
    pub(super) fn insert(
        &mut self,
        hour: i64,
        server: &str,
        kind: &'static str,
        names: HashSet<String>,
    ) {
        if !self.admitted.contains_key(&hour) && self.admitted.len() >= CACHED_HOURS {
            self.admitted.clear();
        }
        self.admitted
            .entry(hour)
            .or_default()
            .entry(server.to_owned())
            .or_default()
            .insert(kind, names);
    }

    /// Forgets what is in memory (after a transaction that admitted names was rolled back).
    pub(super) fn forget(&mut self) {
        self.admitted.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Result<HashSet<String>, ()> {
        Ok(HashSet::new())
    }

    #[test]
    fn each_hour_server_and_kind_admits_its_own_first_names() {
        let mut allowance = Allowance::new(2);
        for name in ["a", "b", "a"] {
            assert_eq!(allowance.admits(0, "s", "k", name, none), Ok(true));
        }
        assert_eq!(allowance.admits(0, "s", "k", "c", none), Ok(false));
        assert_eq!(allowance.admits(0, "s", "other kind", "c", none), Ok(true));
        assert_eq!(allowance.admits(0, "t", "k", "c", none), Ok(true));
        assert_eq!(allowance.admits(HOUR_MS, "s", "k", "c", none), Ok(true));
    }

    #[test]
    fn an_hour_not_in_memory_starts_from_the_names_the_rollup_has() {
        let mut allowance = Allowance::new(2);
        let stored = || Ok::<_, ()>(HashSet::from(["x".to_owned(), "y".to_owned()]));
        assert_eq!(allowance.admits(0, "s", "k", "x", stored), Ok(true));
        assert_eq!(allowance.admits(0, "s", "k", "z", none), Ok(false));
        allowance.forget();
        assert_eq!(allowance.admits(0, "s", "k", "z", none), Ok(true));
    }
}
