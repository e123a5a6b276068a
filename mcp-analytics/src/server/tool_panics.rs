//! A tool that panics becomes a tool error and a recorded `panic` call (see `call.rs`); a prompt,
//! resource or completion that panics, an internal error. A panic message may quote the caller's
//! arguments — secrets included — so while one of them is being polled std's panic hook does not
//! print it: a chained hook logs where the tool panicked instead
//! (`tracing` error, target `mcp_analytics::panic`, with a backtrace when `RUST_BACKTRACE` asks
//! for one). The message itself is recorded with the call, sanitized with the tool's own
//! `redact` keys, which this hook does not know. Panics anywhere else go to the previous hook.

use std::{
    cell::Cell,
    future::Future,
    panic::PanicHookInfo,
    pin::Pin,
    sync::{
        Once,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

thread_local! {
    /// Whether this thread is polling a tool right now.
    static IN_TOOL: Cell<bool> = const { Cell::new(false) };
}

pin_project_lite::pin_project! {
    /// A tool's future (its panics already caught), polled with the quiet hook in charge.
    pub(super) struct AsTool<F> {
        #[pin]
        future: F,
    }
}

/// Wraps `future` so that a panic while it is polled does not print its message.
pub(super) fn as_tool<F: Future>(future: F) -> AsTool<F> {
    install();
    AsTool { future }
}

impl<F: Future> Future for AsTool<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let outer = IN_TOOL.replace(true);
        let poll = self.project().future.poll(cx);
        IN_TOOL.set(outer);
        poll
    }
}

/// Chains the hook in front of whatever hook the process has, once. (A relaxed load on the
/// call path; `Once`'s check measured ~60 ns per call here.)
fn install() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if !INSTALLED.load(Ordering::Relaxed) {
        install_once();
    }

    #[cold]
    fn install_once() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if IN_TOOL.get() {
                    log(info);
                } else {
                    previous(info);
                }
            }));
            INSTALLED.store(true, Ordering::Relaxed);
        });
    }
}

fn log(info: &PanicHookInfo<'_>) {
    let location = info.location().map(ToString::to_string).unwrap_or_default();
    let backtrace = std::backtrace::Backtrace::capture();
    tracing::error!(
        target: "mcp_analytics::panic",
        location = %location,
        "a tool, prompt, resource or completion panicked at {location}; the caller gets an \
         error (a tool call is recorded with the panic's message, sanitized)\n{backtrace}",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_set_only_while_the_tool_is_polled_and_nests() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(!IN_TOOL.get());
            let seen = as_tool(async {
                let inner = as_tool(async { IN_TOOL.get() }).await;
                (inner, IN_TOOL.get())
            })
            .await;
            assert_eq!(seen, (true, true));
            assert!(!IN_TOOL.get(), "restored after the tool");
        });
    }
}
