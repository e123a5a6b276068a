//! Unknown tool names in the rollups. They show what agents looked for, but clients choose them:
//! per server and hour the first [`UNKNOWN_TOOLS_PER_HOUR`] distinct names keep their own rollup
//! rows, later ones are counted under [`OTHER_UNKNOWN_TOOLS`]. Raw `tool_calls` rows keep every
//! name. Which names an hour admitted is read back from the per-minute rollup (written with the
//! rows), so a restart or a rebuild admits the same ones.

use std::collections::{HashMap, HashSet};

use super::source::{Param, Source};
use crate::{Status, ToolCallEvent};

/// The rollup row of unknown-tool calls past the per-hour limit. MCP tool names use letters,
/// digits, `_`, `-` and `.` only, so no conforming tool is called this.
pub const OTHER_UNKNOWN_TOOLS: &str = "(other unknown tools)";

/// Distinct unknown tool names a server's rollups keep per hour.
pub const UNKNOWN_TOOLS_PER_HOUR: usize = 100;

const HOUR_MS: i64 = 3_600_000;

/// Hours (per server) kept in memory; older ones are read back from the rollup when needed.
const CACHED_HOURS: usize = 48;

/// Reads the unknown names a server's hour admitted: `(hour, server)` to names.
pub(super) type Lookup<'l, E> = dyn FnMut(i64, &str) -> Result<HashSet<String>, E> + 'l;

/// The unknown names admitted per hour and server.
#[derive(Default)]
pub(super) struct UnknownTools {
    admitted: HashMap<i64, HashMap<String, HashSet<String>>>,
}

impl UnknownTools {
    /// The tool name `event` is rolled up under: its own, unless it is an unknown tool past the
    /// hour's allowance.
    /// `stored(hour, server)` reads the names the rollup already has (see [`stored`]).
    pub(super) fn rollup_name<'e, E>(
        &mut self,
        event: &'e ToolCallEvent,
        stored: &mut Lookup<'_, E>,
    ) -> Result<&'e str, E> {
        if event.status != Status::UnknownTool {
            return Ok(&event.tool);
        }
        if event.tool == OTHER_UNKNOWN_TOOLS {
            return Ok(OTHER_UNKNOWN_TOOLS);
        }
        let hour = hour_of(event);
        if !self.admitted.contains_key(&hour) && self.admitted.len() >= CACHED_HOURS {
            self.admitted.clear();
        }
        let servers = self.admitted.entry(hour).or_default();
        if !servers.contains_key(&event.server_name) {
            let names = stored(hour, &event.server_name)?;
            servers.insert(event.server_name.clone(), names);
        }
        let names = servers
            .get_mut(&event.server_name)
            .expect("read just above");
        if names.contains(&event.tool) {
            return Ok(&event.tool);
        }
        if names.len() < UNKNOWN_TOOLS_PER_HOUR {
            names.insert(event.tool.clone());
            return Ok(&event.tool);
        }
        Ok(OTHER_UNKNOWN_TOOLS)
    }

    /// Replaces what is known of `server`'s `hour` by `names` (read again by a writer that
    /// shares the database with others).
    #[cfg(feature = "postgres")]
    pub(super) fn reload(&mut self, hour: i64, server: &str, names: HashSet<String>) {
        if !self.admitted.contains_key(&hour) && self.admitted.len() >= CACHED_HOURS {
            self.admitted.clear();
        }
        self.admitted
            .entry(hour)
            .or_default()
            .insert(server.to_owned(), names);
    }

    /// Forgets what is in memory (after a transaction that admitted names was rolled back).
    pub(super) fn forget(&mut self) {
        self.admitted.clear();
    }
}

/// The `(hour, server)` whose allowance an unknown tool's call uses, if it is one.
#[cfg(feature = "postgres")]
pub(super) fn allowance_of(event: &ToolCallEvent) -> Option<(i64, &str)> {
    (event.status == Status::UnknownTool && event.tool != OTHER_UNKNOWN_TOOLS)
        .then(|| (hour_of(event), event.server_name.as_str()))
}

fn hour_of(event: &ToolCallEvent) -> i64 {
    event.ts_ms - event.ts_ms.rem_euclid(HOUR_MS)
}

/// The unknown names `server`'s rollup already has in `hour`.
pub(super) fn stored<S: Source>(
    source: &S,
    hour: i64,
    server: &str,
) -> Result<HashSet<String>, S::Error> {
    Ok(source
        .rows(
            STORED_SQL,
            &[
                Param::Int(hour),
                Param::Text(Some(server)),
                Param::Text(Some(OTHER_UNKNOWN_TOOLS)),
            ],
            |row| row.string(0),
        )?
        .into_iter()
        .collect())
}

/// The unknown names of a server's hour in the per-minute rollup (`?1` hour, `?2` server,
/// `?3` [`OTHER_UNKNOWN_TOOLS`]).
pub(super) const STORED_SQL: &str = "SELECT DISTINCT tool FROM tool_calls_1m WHERE minute_ms >= ?1 AND minute_ms < ?1 + 3600000 AND server_name = ?2 AND status = 'unknown_tool' AND tool != ?3";
