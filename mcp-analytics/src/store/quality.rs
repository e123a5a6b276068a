//! Tool quality: for calls whose arguments did not deserialize, which field failed and how, per
//! tool. Read from the raw rows of status `invalid_params` (a partial index keeps them cheap to
//! find); their recorded messages name the field and the problem, never the value (see
//! `outcome::invalid_params`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::source::{Param, Source};
use crate::outcome::{ParamProblem, classify_invalid_params};

/// How often one field of a tool's arguments failed one way.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamFailure {
    /// The tool called.
    pub tool: String,
    /// The field's path (`query`, `filters.limit`, `tags[]`), if the message names one.
    pub field: Option<String>,
    /// What was wrong with it.
    pub problem: ParamProblem,
    /// How many calls.
    pub calls: u64,
}

/// The failures of calls since `since_ms` (of `tool` and `server`, when given), most frequent
/// first.
pub(super) fn read<S: Source>(
    source: &S,
    since_ms: i64,
    tool: Option<&str>,
    server: Option<&str>,
) -> Result<Vec<ParamFailure>, S::Error> {
    let mut counts: BTreeMap<(String, Option<String>, ParamProblem), u64> = BTreeMap::new();
    source.each(
        "SELECT tool, error_message, CAST(count(*) AS BIGINT) FROM tool_calls WHERE status = 'invalid_params' AND ts_ms >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR tool = ?2) AND (CAST(?3 AS TEXT) IS NULL OR server_name = ?3) GROUP BY tool, error_message",
        &[Param::Int(since_ms), Param::Text(tool), Param::Text(server)],
        &mut |row| {
            let (field, problem) = classify_invalid_params(&row.string(1)?);
            *counts.entry((row.string(0)?, field, problem)).or_default() +=
                u64::try_from(row.int(2)?).unwrap_or(0);
            Ok(())
        },
    )?;
    let mut failures: Vec<ParamFailure> = counts
        .into_iter()
        .map(|((tool, field, problem), calls)| ParamFailure {
            tool,
            field,
            problem,
            calls,
        })
        .collect();
    failures.sort_by_key(|failure| std::cmp::Reverse(failure.calls));
    Ok(failures)
}
