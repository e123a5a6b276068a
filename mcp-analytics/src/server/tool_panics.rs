//! A tool that panics becomes a tool error and a recorded `panic` call (see `call.rs`); a prompt,
//! resource or completion that panics, an internal error. A panic message may quote the caller's
//! arguments — secrets included — so while one of them is being polled std's panic hook does not
//! print it: a chained hook logs where the tool panicked instead
//! (`tracing` error, target `mcp_analytics::panic`, with a backtrace when `RUST_BACKTRACE` asks
//! for one). The message itself is recorded with the call, sanitized with the tool's own
//! `redact` keys, which this hook does not know, and with the tool's frames of the backtrace
//! (see [`frames`]), kept by the hook for [`take_backtrace`]. Panics anywhere else go to the
//! previous hook.

use std::{
    cell::{Cell, RefCell},
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
    /// The frames of the last tool panic on this thread, until taken.
    static BACKTRACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Frames kept of a tool's backtrace at most.
const MAX_FRAMES: usize = 8;

/// Crates whose frames are the machinery around a tool, not the tool.
const MACHINERY: &[&str] = &[
    "std",
    "core",
    "alloc",
    "tokio",
    "futures",
    "futures_util",
    "futures_core",
    "rmcp",
    "mcp_analytics",
    "pin_project_lite",
    "tower",
    "hyper",
    "axum",
    "__rustc",
    "rust_begin_unwind",
    "backtrace",
];

/// The frames of the tool panic this thread caught last (the call path records them with the
/// panic's message).
pub(super) fn take_backtrace() -> Option<String> {
    BACKTRACE.take()
}

/// The frames of `backtrace` (as `std::backtrace::Backtrace` prints it) outside the machinery,
/// innermost first, at most [`MAX_FRAMES`], each `symbol at dir/src/file.rs:line:column` with
/// the path cut to its last `src` folder's parent (no home or build folders), and how many
/// frames were left out. `None` without symbols (a build without debug info).
pub(crate) fn frames(backtrace: &str) -> Option<String> {
    let mut kept: Vec<String> = Vec::new();
    let mut omitted = 0;
    let mut lines = backtrace.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((_, symbol)) = line.trim_start().split_once(": ") else {
            continue;
        };
        let location = lines
            .next_if(|next| next.trim_start().starts_with("at "))
            .map(|next| next.trim_start().trim_start_matches("at "));
        let symbol = symbol.trim();
        let crate_name = symbol
            .trim_start_matches('<')
            .split([':', ' ', '>'])
            .next()
            .unwrap_or("");
        // The toolchain's sources and downloaded crates are machinery too, whatever the frame's
        // name (generic and inlined frames often carry no crate path).
        let outside = location.is_some_and(|location| {
            ["/rustc/", "/.cargo/registry/", "/.cargo/git/"]
                .iter()
                .any(|folder| location.contains(folder))
        });
        let anonymous = location.is_none() && !symbol.contains("::");
        if symbol.is_empty() || outside || anonymous || MACHINERY.contains(&crate_name) {
            omitted += 1;
            continue;
        }
        if kept.len() == MAX_FRAMES {
            omitted += 1;
            continue;
        }
        kept.push(match location {
            Some(location) => format!("{symbol} at {}", short_path(location)),
            None => symbol.to_owned(),
        });
    }
    if kept.is_empty() {
        return None;
    }
    let mut out = kept.join("\n");
    if omitted > 0 {
        out.push_str(&format!(
            "\n({omitted} frames of std, tokio, rmcp and mcp-analytics left out)"
        ));
    }
    Some(out)
}

/// `/home/me/project/tests/src/lib.rs:7:9` → `tests/src/lib.rs:7:9`; `./src/lib.rs:7:9` →
/// `src/lib.rs:7:9`.
fn short_path(path: &str) -> String {
    let path = path.trim_start_matches("./");
    if path.starts_with("src/") {
        return path.to_owned();
    }
    match path.rfind("/src/") {
        Some(at) => {
            let start = path[..at].rfind('/').map_or(0, |slash| slash + 1);
            path[start..].to_owned()
        }
        None => path.rsplit('/').next().unwrap_or(path).to_owned(),
    }
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
                    let backtrace = std::backtrace::Backtrace::force_capture().to_string();
                    BACKTRACE.set(frames(&backtrace));
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
    fn a_backtrace_keeps_the_tools_frames_first_with_short_paths() {
        let printed = "   0: __rustc::rust_begin_unwind
             at /rustc/5980/library/std/src/panicking.rs:689:5
   1: core::panicking::panic_fmt
             at /rustc/5980/library/core/src/panicking.rs:80:14
   2: weather::Weather::forecast::{{closure}}
             at /home/me/weather/src/lib.rs:42:9
   3: <core::pin::Pin<P> as core::future::future::Future>::poll
             at /rustc/5980/library/core/src/future/future.rs:133:9
   4: mcp_analytics::server::call::run_caught::{{closure}}
             at /home/me/.cargo/registry/src/mcp-analytics-0.1.0/src/server/call.rs:105:5
   5: weather::helpers::parse
   6: tokio::runtime::task::harness::poll_future
             at /home/me/.cargo/registry/src/tokio-1.0/src/runtime/task/harness.rs:1:1
   7: <unknown>
   8: do_call<F, R>
             at /rustc/5980/library/std/src/panicking.rs:581:40
   9: __rust_try
  10: {async_block#0}
             at ./src/lib.rs:40:5
";
        assert_eq!(
            frames(printed).unwrap(),
            "weather::Weather::forecast::{{closure}} at weather/src/lib.rs:42:9\n\
             weather::helpers::parse\n\
             {async_block#0} at src/lib.rs:40:5\n\
             (8 frames of std, tokio, rmcp and mcp-analytics left out)"
        );
        assert_eq!(frames("   0: <unknown>\n"), None);
    }

    #[test]
    fn a_tool_panic_leaves_its_frames_for_the_call_path() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let caught = runtime.block_on(as_tool(futures::FutureExt::catch_unwind(
            std::panic::AssertUnwindSafe(async { panic!("tool failed") }),
        )));
        assert!(caught.is_err());
        // The frames outside the machinery: the test harness's.
        assert!(take_backtrace().is_some());
        assert_eq!(take_backtrace(), None, "taken once");
    }

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
