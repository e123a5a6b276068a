//! Log messages a tool sends its client (`notifications/message`), and which ones the client
//! wants: on legacy protocols the minimum level the connection set with `logging/setLevel`
//! (everything until it does); on MCP 2026-07-28, which has no sessions, the level a request
//! names in its `_meta` (`io.modelcontextprotocol/logLevel`), and nothing when it names none.

#![allow(deprecated)] // rmcp marks logging deprecated (SEP-2577); MCP still defines it.

use std::{
    collections::HashMap,
    fmt,
    str::FromStr,
    sync::{Arc, Mutex, Weak},
};

use rmcp::model::{InitializeRequestParams, LoggingLevel, ProtocolVersion};

use super::ServerRequestContext as RequestContext;

/// The severity of a log message (RFC 5424's levels, as MCP names them), least severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Detailed debugging information.
    Debug,
    /// General information.
    Info,
    /// Normal but significant events.
    Notice,
    /// Warning conditions.
    Warning,
    /// Error conditions.
    Error,
    /// Critical conditions.
    Critical,
    /// Action must be taken immediately.
    Alert,
    /// The system is unusable.
    Emergency,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 8] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Notice,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
        LogLevel::Alert,
        LogLevel::Emergency,
    ];

    /// The level's name on the wire (`"warning"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`LogLevel`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownLogLevel(String);

impl fmt::Display for UnknownLogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a log level; expected one of debug, info, notice, warning, error, \
             critical, alert, emergency",
            self.0
        )
    }
}

impl std::error::Error for UnknownLogLevel {}

impl FromStr for LogLevel {
    type Err = UnknownLogLevel;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        LogLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == text)
            .ok_or_else(|| UnknownLogLevel(text.to_owned()))
    }
}

impl From<LoggingLevel> for LogLevel {
    fn from(level: LoggingLevel) -> Self {
        match level {
            LoggingLevel::Debug => LogLevel::Debug,
            LoggingLevel::Info => LogLevel::Info,
            LoggingLevel::Notice => LogLevel::Notice,
            LoggingLevel::Warning => LogLevel::Warning,
            LoggingLevel::Error => LogLevel::Error,
            LoggingLevel::Critical => LogLevel::Critical,
            LoggingLevel::Alert => LogLevel::Alert,
            LoggingLevel::Emergency => LogLevel::Emergency,
        }
    }
}

impl From<LogLevel> for LoggingLevel {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Debug => LoggingLevel::Debug,
            LogLevel::Info => LoggingLevel::Info,
            LogLevel::Notice => LoggingLevel::Notice,
            LogLevel::Warning => LoggingLevel::Warning,
            LogLevel::Error => LoggingLevel::Error,
            LogLevel::Critical => LoggingLevel::Critical,
            LogLevel::Alert => LoggingLevel::Alert,
            LogLevel::Emergency => LoggingLevel::Emergency,
        }
    }
}

/// The minimum level each legacy connection asked for with `logging/setLevel`. A connection is
/// known by its handshake record (the `Arc` rmcp keeps for the connection's lifetime, as
/// `capture` does); the `Weak` keeps its address from being reused while the entry exists, and
/// entries of closed connections are dropped as new ones are set.
#[derive(Default)]
struct SessionLevels {
    levels: HashMap<usize, (Weak<InitializeRequestParams>, LogLevel)>,
}

fn session_levels() -> &'static Mutex<SessionLevels> {
    static LEVELS: std::sync::OnceLock<Mutex<SessionLevels>> = std::sync::OnceLock::new();
    LEVELS.get_or_init(Mutex::default)
}

fn key(handshake: &Arc<InitializeRequestParams>) -> usize {
    Arc::as_ptr(handshake) as usize
}

/// Remembers `level` as the minimum for the connection `context` arrived on (`logging/setLevel`).
/// A request without a handshake (MCP 2026-07-28, stateless HTTP) has no connection to remember
/// it for: it names its level in each request instead.
pub(crate) fn set_session_level(context: &RequestContext, level: LogLevel) {
    let Some(handshake) = context.peer.peer_info() else {
        return;
    };
    let mut levels = session_levels().lock().unwrap_or_else(|e| e.into_inner());
    levels
        .levels
        .retain(|_, (connection, _)| connection.strong_count() > 0);
    levels
        .levels
        .insert(key(&handshake), (Arc::downgrade(&handshake), level));
}

/// The minimum level the client wants for this request: `None` when it wants no log messages.
pub(crate) fn wanted(context: &RequestContext) -> Option<LogLevel> {
    let modern = context
        .protocol_version()
        .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
    if modern {
        return context.meta.log_level().map(LogLevel::from);
    }
    let Some(handshake) = context.peer.peer_info() else {
        return Some(LogLevel::Debug);
    };
    let levels = session_levels().lock().unwrap_or_else(|e| e.into_inner());
    let level = levels.levels.get(&key(&handshake));
    Some(level.map_or(LogLevel::Debug, |(_, level)| *level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_from_debug_to_emergency_and_round_trip_through_their_names() {
        assert!(LogLevel::ALL.windows(2).all(|pair| pair[0] < pair[1]));
        for level in LogLevel::ALL {
            assert_eq!(level.as_str().parse::<LogLevel>(), Ok(level));
            assert_eq!(LogLevel::from(LoggingLevel::from(level)), level);
            let wire = serde_json::to_value(LoggingLevel::from(level)).unwrap();
            assert_eq!(wire, level.as_str());
        }
        let error = "verbose".parse::<LogLevel>().unwrap_err();
        assert!(error.to_string().contains("`verbose`"), "{error}");
    }
}
