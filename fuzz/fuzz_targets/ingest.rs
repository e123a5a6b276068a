//! The collector's ingest (`POST /ingest`) through its router, in process, with a real SQLite
//! database in a temporary directory: any body, plain or gzip-compressed (or claimed to be gzip
//! and not), is answered without a panic and without a 5xx. A server error for a body is a
//! finding unless the storage itself failed.

#![no_main]

use std::{io::Write, sync::OnceLock};

use axum::{
    Router,
    body::Body,
    http::{Request, header},
};
use libfuzzer_sys::fuzz_target;
use mcp_analytics::collector::{Collector, INGEST_PATH};
use tower::ServiceExt;

const KEY: &str = "fuzz-collector-key";

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = match std::fs::metadata("/dev/shm") {
            Ok(meta) if meta.is_dir() => tempfile::tempdir_in("/dev/shm"),
            _ => tempfile::tempdir(),
        }
        .expect("a temporary directory");
        let router = Collector::new(dir.path().join("collector.db"))
            .api_key(Some(KEY.into()))
            .router()
            .expect("the collector's router");
        // Ingest stores on the blocking pool, which a current-thread runtime also has.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        Harness {
            runtime,
            router,
            _dir: dir,
        }
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, body)) = input.split_first() else {
        return;
    };
    let harness = harness();
    // 0: plain JSON; 1: the same body gzip-compressed; 2: raw bytes labelled gzip.
    let (body, gzip) = match mode % 3 {
        0 => (body.to_vec(), false),
        1 => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(body).expect("in memory");
            (encoder.finish().expect("in memory"), true)
        }
        _ => (body.to_vec(), true),
    };
    let mut request = Request::post(INGEST_PATH)
        .header(header::HOST, "127.0.0.1")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json");
    if gzip {
        request = request.header(header::CONTENT_ENCODING, "gzip");
    }
    let request = request.body(Body::from(body)).expect("a request");
    let response = harness
        .runtime
        .block_on(harness.router.clone().oneshot(request))
        .expect("routers are infallible");
    let status = response.status();
    if status.is_server_error() {
        let text = harness.runtime.block_on(async {
            axum::body::to_bytes(response.into_body(), 64 * 1024)
                .await
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default()
        });
        panic!("ingest answered {status} to a body: {text}");
    }
    assert!(
        status.is_success() || status.is_client_error(),
        "unexpected status {status}"
    );
});
