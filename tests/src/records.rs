//! What the tests read back: analytics on a SQLite file and a memory sink, the events of one
//! tool, the stored `tool_calls` rows.

use std::path::Path;

use mcp_analytics::{Analytics, MemorySink, ToolCallEvent};

/// Analytics writing into `sink` and the SQLite file `db`.
pub fn analytics(sink: &MemorySink, db: &Path) -> Analytics {
    Analytics::builder()
        .database(db)
        .sink(sink.clone())
        .build()
        .expect("analytics builds")
}

/// The one event recorded for `tool` (panics if there is not exactly one).
pub fn only<'a>(events: &'a [ToolCallEvent], tool: &str) -> &'a ToolCallEvent {
    let found: Vec<&ToolCallEvent> = events.iter().filter(|event| event.tool == tool).collect();
    assert_eq!(found.len(), 1, "expected one `{tool}` event in {events:#?}");
    found[0]
}

/// One stored `tool_calls` row: (tool, status, session_id, user_id, params, result).
pub type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Rows of `tool_calls` in call order.
pub fn stored_rows(db: &Path) -> Vec<Row> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut statement = connection
        .prepare("SELECT tool, status, session_id, user_id, params, result FROM tool_calls ORDER BY ts_ms, id")
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
