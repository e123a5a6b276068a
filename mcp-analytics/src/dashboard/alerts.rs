//! The alerts as the dashboard shows them, read from `alert_state` (written by the evaluators
//! of [`crate::alerts`]): firing first, then those resolved recently.

use serde::Serialize;

use crate::store::source::{Param, Source};

/// An alert's state, for the dashboard's panel.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct AlertView {
    /// The rule's id, e.g. `error_rate>5%/15m/20`.
    pub(crate) rule: String,
    /// `error_rate`, `p95`, `dead_man` or `runaway_loop`.
    pub(crate) kind: String,
    /// `firing` or `resolved`.
    pub(crate) status: &'static str,
    /// The server whose calls it watches.
    pub(crate) server: String,
    /// The tool, for rules on tools.
    pub(crate) tool: Option<String>,
    /// The session, for runaway loops.
    pub(crate) session: Option<String>,
    /// The rule's measure at the last evaluation (firing) or at resolution.
    pub(crate) value: f64,
    /// What was seen, as a sentence.
    pub(crate) summary: String,
    /// When it started firing, or resolved (unix ms).
    pub(crate) since_ms: i64,
    /// When its latest notification was accepted by a webhook.
    pub(crate) notified_ms: Option<i64>,
    /// Why its latest notification was not delivered yet (a webhook shown without its path).
    pub(crate) last_error: Option<String>,
}

/// The alerts firing, then those resolved at or after `resolved_since_ms`, newest first (200
/// at most), from a SQLite or PostgreSQL database.
pub(crate) fn recent<S: Source>(
    db: &S,
    resolved_since_ms: i64,
) -> Result<Vec<AlertView>, S::Error> {
    db.rows(
        "SELECT rule, kind, status, server_name, tool, session_id, value, summary, since_ms, notified_ms, last_error FROM alert_state \
         WHERE status = 'firing' OR since_ms >= ?1 ORDER BY status = 'firing' DESC, since_ms DESC LIMIT 200",
        &[Param::Int(resolved_since_ms)],
        |row| {
            Ok(AlertView {
                rule: row.string(0)?,
                kind: row.string(1)?,
                status: if row.string(2)? == "firing" {
                    "firing"
                } else {
                    "resolved"
                },
                server: row.string(3)?,
                tool: row.text(4)?,
                session: row.text(5)?,
                value: row.float(6)?,
                summary: row.string(7)?,
                since_ms: row.int(8)?,
                notified_ms: row.nullable_int(9)?,
                last_error: row.text(10)?,
            })
        },
    )
}
