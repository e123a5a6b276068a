//! What the tests read back: analytics on a SQLite file and a memory sink, the events of one
//! tool or method, the stored `tool_calls` and `requests` rows.

use std::path::Path;

use mcp_analytics::{Analytics, MemorySink, Method, RequestEvent, ToolCallEvent};

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

/// One stored `requests` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRow {
    /// `initialize`, `tools/list`, …
    pub method: String,
    /// The prompt name, resource URI or level, redacted.
    pub target: Option<String>,
    /// `ok`, `invalid_params`, …
    pub status: String,
    /// The JSON-RPC code or payment answer, for errors.
    pub error_type: Option<String>,
    /// The session.
    pub session_id: Option<String>,
    /// The user.
    pub user_id: Option<String>,
    /// The client's name.
    pub client_name: Option<String>,
    /// The protocol version.
    pub protocol_version: Option<String>,
    /// `stdio` or `http`.
    pub transport: String,
    /// The client's declared capabilities (JSON text).
    pub client_capabilities: Option<String>,
}

/// Rows of `requests` in arrival order.
pub fn stored_requests(db: &Path) -> Vec<RequestRow> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut statement = connection
        .prepare("SELECT method, target, status, error_type, session_id, user_id, client_name, protocol_version, transport, client_capabilities FROM requests ORDER BY ts_ms, id")
        .unwrap();
    statement
        .query_map([], |row| {
            Ok(RequestRow {
                method: row.get(0)?,
                target: row.get(1)?,
                status: row.get(2)?,
                error_type: row.get(3)?,
                session_id: row.get(4)?,
                user_id: row.get(5)?,
                client_name: row.get(6)?,
                protocol_version: row.get(7)?,
                transport: row.get(8)?,
                client_capabilities: row.get(9)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The one recorded request of `method` (panics if there is not exactly one).
pub fn only_request(requests: &[RequestEvent], method: Method) -> &RequestEvent {
    let found: Vec<&RequestEvent> = requests
        .iter()
        .filter(|request| request.method == method)
        .collect();
    assert_eq!(found.len(), 1, "expected one `{method}` in {requests:#?}");
    found[0]
}
