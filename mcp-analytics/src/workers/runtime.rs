//! The tokio context rmcp needs, on a thread the JavaScript event loop drives.
//!
//! rmcp spawns its service loop and handlers as local tasks (its `local` feature, on `wasm32`)
//! and the responses it sends as tokio tasks. [`drive`] runs a future on a fresh `LocalSet`,
//! polled by the Worker's own executor (so tools may await `fetch`, D1 and timers of
//! JavaScript), and runs the tokio tasks that became ready after each poll on a
//! `current_thread` runtime without drivers. Nothing here may use tokio's clock: it has none.

use std::{future::Future, pin::pin, sync::OnceLock, task::Poll};

use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The runtime, entered for good on first use (the Worker has one thread).
fn runtime() -> &'static Runtime {
    let mut first = false;
    let runtime = RUNTIME.get_or_init(|| {
        first = true;
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current_thread runtime without drivers builds")
    });
    if first {
        std::mem::forget(runtime.enter());
    }
    runtime
}

/// Runs `future` to completion with rmcp's tasks, then drops what is left of them unpolled
/// (so rmcp's loop never reaches the timer it sets when its transport closes).
pub(super) async fn drive<F: Future>(future: F) -> F::Output {
    let runtime = runtime();
    let local = tokio::task::LocalSet::new();
    let mut run = pin!(local.run_until(future));
    std::future::poll_fn(|cx| {
        // Tokio tasks rmcp spawned (sends into in-memory channels) finish when run; their
        // effects wake the local tasks, which wake this future.
        for _ in 0..2 {
            if let Poll::Ready(output) = run.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            if runtime.metrics().num_alive_tasks() == 0 {
                break;
            }
            runtime.block_on(tokio::task::yield_now());
        }
        Poll::Pending
    })
    .await
}
