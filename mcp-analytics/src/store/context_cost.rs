//! The servers' tool catalogues in `tool_catalog` (see [`crate::catalog`]): one row per server
//! version, replaced at every start; the report reads each server's latest.

use super::source::{Param, Source};
use crate::catalog::ToolCatalog;

/// Inserts or replaces a catalogue (`?1` server, `?2` version, `?3` recorded, `?4` list bytes,
/// `?5` list tokens, `?6` tools as JSON).
pub(crate) const UPSERT: &str = "INSERT INTO tool_catalog (server_name, server_version, recorded_ms, list_bytes, list_tokens, tools) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (server_name, server_version) DO UPDATE SET recorded_ms = excluded.recorded_ms, list_bytes = excluded.list_bytes, list_tokens = excluded.list_tokens, tools = excluded.tools";

/// The values of [`UPSERT`].
pub(crate) struct Upsert<'c> {
    pub server_name: &'c str,
    pub server_version: &'c str,
    pub recorded_ms: i64,
    pub list_bytes: i64,
    pub list_tokens: i64,
    pub tools: String,
}

impl<'c> Upsert<'c> {
    pub(crate) fn of(catalog: &'c ToolCatalog) -> Self {
        let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        Self {
            server_name: &catalog.server_name,
            server_version: &catalog.server_version,
            recorded_ms: catalog.recorded_ms,
            list_bytes: count(catalog.list_bytes),
            list_tokens: count(catalog.list_tokens),
            tools: serde_json::to_string(&catalog.tools).unwrap_or_else(|_| "[]".into()),
        }
    }
}

/// Each server's latest catalogue (of `server` only, when given), by server name; with `tool`,
/// only that tool's entry.
pub(super) fn read<S: Source>(
    source: &S,
    server: Option<&str>,
    tool: Option<&str>,
) -> Result<Vec<ToolCatalog>, S::Error> {
    let mut latest: Vec<ToolCatalog> = Vec::new();
    source.each(
        "SELECT server_name, server_version, recorded_ms, list_bytes, list_tokens, tools FROM tool_catalog WHERE CAST(?1 AS TEXT) IS NULL OR server_name = ?1 ORDER BY server_name, recorded_ms DESC, server_version",
        &[Param::Text(server)],
        &mut |row| {
            let server_name = row.string(0)?;
            if latest
                .last()
                .is_some_and(|newer| newer.server_name == server_name)
            {
                return Ok(());
            }
            let count = |value: i64| u64::try_from(value).unwrap_or(0);
            let catalog = ToolCatalog {
                server_name,
                server_version: row.string(1)?,
                recorded_ms: row.int(2)?,
                list_bytes: count(row.int(3)?),
                list_tokens: count(row.int(4)?),
                // Written by this module; another version's shape reads as no tools.
                tools: serde_json::from_str(&row.string(5)?).unwrap_or_default(),
            };
            latest.push(match tool {
                Some(tool) => catalog.only(tool),
                None => catalog,
            });
            Ok(())
        },
    )?;
    Ok(latest)
}
