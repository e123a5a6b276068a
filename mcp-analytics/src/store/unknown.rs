//! Unknown tool names in the rollups. They show what agents looked for, but clients choose them:
//! per server and hour the first [`UNKNOWN_TOOLS_PER_HOUR`] distinct names keep their own rollup
//! rows, later ones are counted under [`OTHER_UNKNOWN_TOOLS`] (see `allowance`). Raw
//! `tool_calls` rows keep every name.

use std::collections::HashSet;

use super::{
    allowance::{Allowance, hour_of},
    source::{Param, Source},
};
use crate::{Status, ToolCallEvent};

/// The rollup row of unknown-tool calls past the per-hour limit. MCP tool names use letters,
/// digits, `_`, `-` and `.` only, so no conforming tool is called this.
pub const OTHER_UNKNOWN_TOOLS: &str = "(other unknown tools)";

/// Distinct unknown tool names a server's rollups keep per hour.
pub const UNKNOWN_TOOLS_PER_HOUR: usize = 100;

/// The allowance's kind for unknown tool names.
const KIND: &str = "unknown_tool";

/// Reads the unknown names a server's hour admitted: `(hour, server)` to names.
pub(crate) type Lookup<'l, E> = dyn FnMut(i64, &str) -> Result<HashSet<String>, E> + 'l;

/// The unknown names admitted per hour and server.
pub(crate) struct UnknownTools(Allowance);

impl Default for UnknownTools {
    fn default() -> Self {
        Self(Allowance::new(UNKNOWN_TOOLS_PER_HOUR))
    }
}

impl UnknownTools {
    /// The tool name `event` is rolled up under: its own, unless it is an unknown tool past the
    /// hour's allowance.
    /// `stored(hour, server)` reads the names the rollup already has (see [`stored`]).
    pub(crate) fn rollup_name<'e, E>(
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
        let hour = hour_of(event.ts_ms);
        let server = &event.server_name;
        let admitted = self
            .0
            .admits(hour, server, KIND, &event.tool, || stored(hour, server))?;
        Ok(if admitted {
            &event.tool
        } else {
            OTHER_UNKNOWN_TOOLS
        })
    }

    /// Replaces what is known of `server`'s `hour` by `names` (read again by a writer that
    /// shares the database with others).
    #[cfg(feature = "postgres")]
    pub(super) fn reload(&mut self, hour: i64, server: &str, names: HashSet<String>) {
        self.0.insert(hour, server, KIND, names);
    }

    /// Forgets what is in memory (after a transaction that admitted names was rolled back).
    pub(super) fn forget(&mut self) {
        self.0.forget();
    }
}

/// The `(hour, server)` whose allowance an unknown tool's call uses, if it is one.
#[cfg(feature = "postgres")]
pub(super) fn allowance_of(event: &ToolCallEvent) -> Option<(i64, &str)> {
    (event.status == Status::UnknownTool && event.tool != OTHER_UNKNOWN_TOOLS)
        .then(|| (hour_of(event.ts_ms), event.server_name.as_str()))
}

/// The unknown names `server`'s rollup already has in `hour`.
pub(crate) fn stored<S: Source>(
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
pub(crate) const STORED_SQL: &str = "SELECT DISTINCT tool FROM tool_calls_1m WHERE minute_ms >= ?1 AND minute_ms < ?1 + 3600000 AND server_name = ?2 AND status = 'unknown_tool' AND tool != ?3";
