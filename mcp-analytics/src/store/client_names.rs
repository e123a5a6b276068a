//! Clients in the rollups. Clients choose their `clientInfo` name and version and, on stateless
//! protocols, the protocol version each request carries: per server and hour the first
//! [`CLIENTS_PER_HOUR`] distinct (name, version, protocol version) keep their own
//! `client_calls_1h` rows, later ones are counted under [`OTHER_CLIENTS`] (see `allowance`), so a
//! caller inventing a name per request cannot grow the rollup — and the dashboard reading it —
//! without bound. Raw `tool_calls` rows keep every name.

use std::collections::HashSet;

use super::{
    allowance::{Allowance, hour_of},
    source::{Param, Source},
};
use crate::ToolCallEvent;

/// The client name of the rollup rows of clients past the per-hour limit. `clientInfo` names
/// are free text, but a client that calls itself this is counted with them, which is harmless.
pub const OTHER_CLIENTS: &str = "(other clients)";

/// Distinct clients (name, version, protocol version) a server's rollups keep per hour.
pub const CLIENTS_PER_HOUR: usize = 100;

/// The allowance's kind for clients.
const KIND: &str = "client";

/// The `(name, version, protocol version)` a call is rolled up under, `""` for what it lacked.
pub(crate) type RolledClient<'e> = (&'e str, &'e str, &'e str);

/// The rolled-up client of the calls past the limit.
const OTHER: RolledClient<'static> = (OTHER_CLIENTS, "", "");

/// Reads the clients a server's hour admitted: `(hour, server)` to their keys (see [`key`]).
pub(crate) type Lookup<'l, E> = dyn FnMut(i64, &str) -> Result<HashSet<String>, E> + 'l;

/// The clients admitted per hour and server.
pub(crate) struct ClientNames {
    allowance: Allowance,
    /// The last call's hour, server and client, and whether it was admitted: batches come mostly
    /// from few clients, and this answers them without building the allowance's key.
    last: Option<(i64, String, [String; 3], bool)>,
}

impl Default for ClientNames {
    fn default() -> Self {
        Self::with_limit(CLIENTS_PER_HOUR)
    }
}

impl ClientNames {
    fn with_limit(limit: usize) -> Self {
        Self {
            allowance: Allowance::new(limit),
            last: None,
        }
    }

    /// The client `event` is rolled up under: its own, unless it is new past the hour's
    /// allowance. `stored(hour, server)` reads the clients the rollup already has (see
    /// [`stored`]).
    pub(crate) fn rollup_client<'e, E>(
        &mut self,
        event: &'e ToolCallEvent,
        stored: &mut Lookup<'_, E>,
    ) -> Result<RolledClient<'e>, E> {
        let client = (
            event.client_name.as_deref().unwrap_or(""),
            event.client_version.as_deref().unwrap_or(""),
            event.protocol_version.as_deref().unwrap_or(""),
        );
        if client.0 == OTHER_CLIENTS {
            return Ok(OTHER);
        }
        let hour = hour_of(event.ts_ms);
        let server = event.server_name.as_str();
        let admitted = match &self.last {
            Some((last_hour, last_server, [name, version, protocol], admitted))
                if (*last_hour, last_server.as_str()) == (hour, server)
                    && (name.as_str(), version.as_str(), protocol.as_str()) == client =>
            {
                *admitted
            }
            _ => {
                let admitted = self
                    .allowance
                    .admits(hour, server, KIND, &key(client), || stored(hour, server))?;
                let parts = [client.0, client.1, client.2].map(str::to_owned);
                self.last = Some((hour, server.to_owned(), parts, admitted));
                admitted
            }
        };
        Ok(if admitted { client } else { OTHER })
    }

    /// Replaces what is known of `server`'s `hour` by `clients` (read again by a writer that
    /// shares the database with others).
    #[cfg(feature = "postgres")]
    pub(super) fn reload(&mut self, hour: i64, server: &str, clients: HashSet<String>) {
        self.last = None;
        self.allowance.insert(hour, server, KIND, clients);
    }

    /// Forgets what is in memory (after a transaction that admitted clients was rolled back).
    #[cfg(feature = "postgres")]
    pub(super) fn forget(&mut self) {
        self.last = None;
        self.allowance.forget();
    }
}

/// A client's name in the allowance: its three parts, which have no control characters (see
/// [`ClientText`](crate::ClientText)), joined by a line feed.
pub(crate) fn key((name, version, protocol): RolledClient<'_>) -> String {
    format!("{name}\n{version}\n{protocol}")
}

/// The `(hour, server)` whose allowance a call uses.
#[cfg(feature = "postgres")]
pub(super) fn allowance_of(event: &ToolCallEvent) -> (i64, &str) {
    (hour_of(event.ts_ms), event.server_name.as_str())
}

/// The clients `server`'s rollup already has in `hour`.
pub(crate) fn stored<S: Source>(
    source: &S,
    hour: i64,
    server: &str,
) -> Result<HashSet<String>, S::Error> {
    source
        .rows(
            STORED_SQL,
            &[
                Param::Int(hour),
                Param::Text(Some(server)),
                Param::Text(Some(OTHER_CLIENTS)),
            ],
            |row| Ok(key((&row.string(0)?, &row.string(1)?, &row.string(2)?))),
        )
        .map(|keys| keys.into_iter().collect())
}

/// The clients of a server's hour in the hourly client rollup (`?1` hour, `?2` server, `?3`
/// [`OTHER_CLIENTS`]).
pub(crate) const STORED_SQL: &str = "SELECT DISTINCT client_name, client_version, protocol_version FROM client_calls_1h WHERE hour_ms = ?1 AND server_name = ?2 AND client_name != ?3";

#[cfg(test)]
mod tests {
    use super::*;

    fn call(ts_ms: i64, name: &str) -> ToolCallEvent {
        ToolCallEvent {
            id: String::new(),
            ts_ms,
            server_name: "s".into(),
            server_version: "1".into(),
            tool: "search".into(),
            user_id: None,
            user_email: None,
            user_name: None,
            session_id: None,
            client_name: Some(name.into()),
            client_version: Some("1.0".into()),
            protocol_version: Some("2026-07-28".into()),
            transport: crate::event::Transport::Stdio,
            request_id: None,
            duration_us: 0,
            status: crate::event::Status::Ok,
            error_type: None,
            error_message: None,
            params: None,
            result: None,
            ts_ns: None,
            traceparent: None,
            tracestate: None,
        }
    }

    fn none() -> Result<HashSet<String>, ()> {
        Ok(HashSet::new())
    }

    #[test]
    fn an_hour_keeps_its_first_clients_and_counts_later_ones_as_other() {
        let mut clients = ClientNames::default();
        let calls: Vec<_> = (0..=CLIENTS_PER_HOUR)
            .map(|n| call(0, &format!("client-{n}")))
            .collect();
        for call in &calls[..CLIENTS_PER_HOUR] {
            let rolled = clients.rollup_client(call, &mut |_, _| none());
            assert_eq!(
                rolled,
                Ok((call.client_name.as_deref().unwrap(), "1.0", "2026-07-28"))
            );
        }
        let late = &calls[CLIENTS_PER_HOUR];
        assert_eq!(clients.rollup_client(late, &mut |_, _| none()), Ok(OTHER));
        // A client admitted earlier keeps its rows; the next hour starts afresh.
        assert_eq!(
            clients
                .rollup_client(&calls[0], &mut |_, _| none())
                .map(|c| c.0),
            Ok("client-0")
        );
        let next_hour = call(3_600_000, "late");
        assert_eq!(
            clients
                .rollup_client(&next_hour, &mut |_, _| none())
                .map(|c| c.0),
            Ok("late")
        );
    }

    #[test]
    fn an_hour_not_in_memory_starts_from_the_clients_the_rollup_has() {
        let mut clients = ClientNames::with_limit(1);
        let stored =
            |_: i64, _: &str| Ok::<_, ()>(HashSet::from([key(("known", "1.0", "2026-07-28"))]));
        assert_eq!(
            clients.rollup_client(&call(0, "new"), &mut { stored }),
            Ok(OTHER)
        );
        assert_eq!(
            clients
                .rollup_client(&call(0, "known"), &mut |_, _| none())
                .map(|c| c.0),
            Ok("known")
        );
    }
}
