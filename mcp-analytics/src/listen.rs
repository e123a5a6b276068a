//! Listening: binding an address (refusing a keyless service off loopback), serving an axum
//! router until shutdown, and the shutdown signal — shared by the MCP server, the dashboard
//! and the collector.

#[cfg(feature = "http")]
use crate::Error;

/// Resolves when the process receives Ctrl-C or (on Unix) SIGTERM.
#[cfg(any(feature = "stdio", feature = "http"))]
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Binds `addr` for `what`. With `keyless` (nothing protects the service), a non-loopback
/// address is refused: the data would be open to the network.
#[cfg(feature = "http")]
pub(crate) async fn bind(
    addr: std::net::SocketAddr,
    what: &str,
    keyless: bool,
) -> Result<tokio::net::TcpListener, Error> {
    if keyless && !addr.ip().is_loopback() {
        return Err(Error::Serve {
            context: format!("refusing to serve {what} on {addr} without a key"),
            source: "set MCP_ANALYTICS_API_KEY, or listen on 127.0.0.1".into(),
        });
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Serve {
            context: format!("cannot listen on {addr}"),
            source: Box::new(source),
        })
}

/// Serves `router` on `listener` until `shutdown` resolves.
#[cfg(feature = "http")]
#[cfg_attr(
    not(any(feature = "stdio", feature = "dashboard", feature = "export-http")),
    allow(dead_code)
)]
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    what: &str,
) -> Result<(), Error> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| Error::Serve {
            context: format!("{what} failed"),
            source: Box::new(source),
        })
}
