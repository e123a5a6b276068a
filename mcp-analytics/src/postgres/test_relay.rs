//! A TCP relay on 127.0.0.1 in front of the test cluster that tests can silence: a server or a
//! network gone without a word (no FIN, no RST), which no error announces.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
};

/// Forwards each connection it accepts to `target` while it forwards; silenced, it keeps every
/// connection open and passes nothing either way, for good. Stops when dropped.
pub(crate) struct Relay {
    addr: SocketAddr,
    forwarding: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Relay {
    /// A relay to `target`, forwarding, on a free loopback port (its tasks run on the current
    /// runtime).
    pub(crate) async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let (forwarding, _) = watch::channel(true);
        let watched = forwarding.subscribe();
        let accepting = tokio::spawn(async move {
            // Dropped with this task: every connection closes.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(relay(client, target, watched.clone()));
            }
        });
        Relay {
            addr,
            forwarding,
            accepting,
        }
    }

    /// Where to connect instead of the target.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on nothing passes: open connections stay open and silent for good, and new
    /// ones are accepted and never answered.
    pub(crate) fn silence(&self) {
        self.forwarding.send_replace(false);
    }

    /// New connections are forwarded again (the silenced ones stay silent).
    pub(crate) fn resume(&self) {
        self.forwarding.send_replace(true);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// One connection: forwarded until the relay is silenced, then held open, silent.
async fn relay(mut client: TcpStream, target: SocketAddr, mut forwarding: watch::Receiver<bool>) {
    let forwarded = *forwarding.borrow_and_update();
    if !forwarded {
        std::future::pending::<()>().await;
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let silenced = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
        _ = forwarding.wait_for(|forwarding| !forwarding) => true,
    };
    if silenced {
        // Both sockets stay open until the relay stops.
        std::future::pending::<()>().await;
    }
}
