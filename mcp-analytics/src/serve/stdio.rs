//! [`stdio`]: serving over stdin/stdout, with the local test provider's checkout pages on a
//! loopback port when paid tools need them.

use rmcp::{ServerHandler, ServiceExt};

use super::{shutdown_signal, startup_analytics, startup_payments};
use crate::{Error, server::Server};

/// Serves `server` over stdin/stdout until the client disconnects or the process is asked to
/// stop, then flushes analytics. Messages go to stderr: stdout carries the protocol.
pub async fn stdio<S: Server + ServerHandler>(server: S) -> Result<(), Error> {
    let analytics = startup_analytics(&server)?;
    let payments = startup_payments(&server).await?;
    eprintln!(
        "{} {}: MCP over stdio; analytics: {}",
        S::INFO.name,
        S::INFO.version,
        analytics.description()
    );
    #[cfg(feature = "http")]
    let _pages = match &payments {
        Some(payments) => payments_pages(payments).await?,
        None => None,
    };
    let running = server
        // Non-blocking pipes (how MCP clients launch servers) let the runtime shut down on a
        // signal even while the client still holds stdin open.
        .serve(rmcp::transport::io::stdio_pipes())
        .await
        .map_err(|source| Error::Serve {
            context: "MCP handshake over stdio failed".into(),
            source: Box::new(source),
        })?;
    let stop = running.cancellation_token();
    tokio::select! {
        _ = running.waiting() => {}
        () = shutdown_signal() => stop.cancel(),
    }
    analytics.shutdown().await;
    if let Some(payments) = payments {
        payments.flush().await;
    }
    Ok(())
}

/// Over stdio the local test provider still needs its checkout pages: serve them on an
/// ephemeral loopback port (Stripe needs nothing from this process).
#[cfg(feature = "http")]
async fn payments_pages(
    payments: &crate::Payments,
) -> Result<Option<tokio_util::sync::DropGuard>, Error> {
    if !payments.is_local() {
        return Ok(None);
    }
    let listener = crate::listen::bind(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        "payments",
        true,
    )
    .await?;
    let local = listener.local_addr().map_err(|source| Error::Serve {
        context: "the payments listener has no address".into(),
        source: Box::new(source),
    })?;
    payments.default_public_url(&format!("http://{local}"));
    eprintln!("payments: test checkout pages at http://{local}/pay/…");
    let stop = tokio_util::sync::CancellationToken::new();
    let guard = stop.clone().drop_guard();
    let router = payments.router();
    tokio::spawn(async move {
        let _ = crate::listen::run(
            listener,
            router,
            async move { stop.cancelled().await },
            "payments pages",
        )
        .await;
    });
    Ok(Some(guard))
}
