//! Who subscribed to which resource ([`Subscriptions`], one per server type, kept in its
//! `Catalog`), and [`resource_updated`], which tells them. A subscriber is a connection: the
//! peer of one legacy (MCP ≤ 2025-11-25) session, recognised by its `initialize` handshake;
//! closed connections are dropped when next looked at.

use std::{collections::BTreeSet, sync::Arc};

use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{InitializeRequestParams, ResourceUpdatedNotificationParam},
};

use super::{RequestContext, Server, catalog::Catalog};
use crate::ClientText;

/// The resource subscriptions of one server type, per connection.
#[derive(Default)]
pub(crate) struct Subscriptions {
    subscribers: std::sync::Mutex<Vec<Subscriber>>,
}

/// One connection and the URIs it subscribed to.
struct Subscriber {
    connection: Connection,
    peer: Peer<RoleServer>,
    uris: BTreeSet<String>,
}

/// A connection, by the handshake record rmcp keeps for it (shared by every request of the
/// connection, and held here so it cannot be reused by another one).
struct Connection(Arc<InitializeRequestParams>);

impl Connection {
    /// The connection a request came on; `None` without a handshake (MCP 2026-07-28, whose
    /// clients subscribe with `subscriptions/listen` instead).
    fn of(context: &RequestContext) -> Option<Self> {
        context.peer.peer_info().map(Connection)
    }

    fn is(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Subscriptions {
    /// Subscribes the connection of `context` to `uri` (again: no change).
    pub(crate) fn subscribe(&self, context: &RequestContext, uri: &str) -> Result<(), ErrorData> {
        let Some(connection) = Connection::of(context) else {
            return Err(ErrorData::invalid_request(
                "resources/subscribe needs a session (MCP 2025-11-25 or earlier); on 2026-07-28 use subscriptions/listen",
                None,
            ));
        };
        let mut subscribers = self.lock();
        subscribers.retain(|subscriber| !subscriber.peer.is_transport_closed());
        match subscribers
            .iter_mut()
            .find(|subscriber| subscriber.connection.is(&connection))
        {
            Some(subscriber) => {
                subscriber.uris.insert(uri.to_owned());
            }
            None => subscribers.push(Subscriber {
                connection,
                peer: context.peer.clone(),
                uris: BTreeSet::from([uri.to_owned()]),
            }),
        }
        Ok(())
    }

    /// Ends the subscription of the connection of `context` to `uri`, if it had one.
    pub(crate) fn unsubscribe(&self, context: &RequestContext, uri: &str) {
        let Some(connection) = Connection::of(context) else {
            return;
        };
        let mut subscribers = self.lock();
        for subscriber in subscribers.iter_mut() {
            if subscriber.connection.is(&connection) {
                subscriber.uris.remove(uri);
            }
        }
        subscribers.retain(|subscriber| {
            !subscriber.uris.is_empty() && !subscriber.peer.is_transport_closed()
        });
    }

    /// The open connections subscribed to `uri`.
    fn subscribers(&self, uri: &str) -> Vec<Peer<RoleServer>> {
        let mut subscribers = self.lock();
        subscribers.retain(|subscriber| !subscriber.peer.is_transport_closed());
        subscribers
            .iter()
            .filter(|subscriber| subscriber.uris.contains(uri))
            .map(|subscriber| subscriber.peer.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Tells every client subscribed to the resource `uri` of the server type `S` that it changed
/// (`notifications/resources/updated`); returns how many were told. Call it wherever the
/// resource changes: in a tool, or in a background task.
///
/// ```
/// # use mcp_analytics::{mcp_server, resource, tool};
/// struct Notes;
///
/// #[mcp_server]
/// impl Notes {
///     #[resource(uri = "notes://today", subscribe)]
///     async fn today(&self) -> String {
///         "…".into()
///     }
///
///     #[tool]
///     async fn add_note(&self) -> String {
///         let told = mcp_analytics::resource_updated::<Self>("notes://today").await;
///         format!("{told} subscribers told")
///     }
/// }
/// ```
pub async fn resource_updated<S: Server>(uri: &str) -> usize {
    let peers = Catalog::of::<S>().subscriptions.subscribers(uri);
    let mut told = 0;
    for peer in peers {
        let update = ResourceUpdatedNotificationParam::new(uri);
        match peer.notify_resource_updated(update).await {
            Ok(()) => told += 1,
            Err(error) => tracing::debug!(
                uri = %ClientText::new(uri),
                "a subscriber could not be told about an update: {error}"
            ),
        }
    }
    told
}
