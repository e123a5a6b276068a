//! What the behaviour tests share: a demo server with one tool per outcome (`ok`, `tool_error`,
//! `protocol_error`, `panic`, slow for cancellation, secrets for redaction) and a paid one, also
//! served by the `stdio-demo` and `http-demo` binaries the tests spawn; [`server::TestServer`]
//! to serve them on 127.0.0.1; clients, stored rows and secrets to check; the fake Stripe and an
//! OTLP receiver; a throwaway PostgreSQL cluster ([`postgres::Cluster`]). The demo is also a pass case: the macro used from another crate that depends
//! only on `mcp-analytics`, serde and schemars.

pub mod canary;
pub mod client;
pub mod fake_stripe;
pub mod otlp_receiver;
#[path = "../../mcp-analytics/src/postgres/test_cluster.rs"]
pub mod postgres;
pub mod records;
pub mod secrets;
pub mod server;

use std::{path::PathBuf, time::Duration};

use mcp_analytics::{Analytics, CallContext, Json, mcp_server, rmcp::ErrorData, serde_json, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `mcp-analytics` command, built first (a test binary in `target/<profile>/deps` finds it
/// in `target/<profile>`).
pub fn cli_binary() -> PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "mcp-analytics-cli",
            "--bin",
            "mcp-analytics",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the CLI builds");
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps/<test>")
        .join("mcp-analytics")
}

/// Two integers to add.
#[derive(Deserialize, JsonSchema)]
pub struct AddArgs {
    /// The first addend.
    pub a: i64,
    /// The second addend.
    pub b: i64,
}

/// The sum of two integers.
#[derive(Serialize, JsonSchema)]
pub struct Sum {
    /// `a + b`.
    pub sum: i64,
}

/// A division.
#[derive(Deserialize, JsonSchema)]
pub struct DivideArgs {
    /// The dividend.
    pub a: f64,
    /// The divisor.
    pub b: f64,
}

/// How long to sleep.
#[derive(Deserialize, JsonSchema)]
pub struct SlowArgs {
    /// Milliseconds.
    pub ms: u64,
}

/// A sensitive document.
#[derive(Deserialize, JsonSchema)]
pub struct Doc {
    /// The text.
    pub document: String,
}

/// A service connection with free-form credentials.
#[derive(Deserialize, JsonSchema)]
pub struct Connect {
    /// The service name.
    pub service: String,
    /// Any credentials object.
    pub credentials: serde_json::Value,
}

/// The demo server; its calls go to `analytics`.
#[derive(Clone, Debug)]
pub struct Demo {
    /// Where calls are recorded.
    pub analytics: Analytics,
}

#[mcp_server(name = "demo", version = "0.0.1", instructions = "Test server.", analytics = self.analytics)]
impl Demo {
    /// Add two integers.
    #[tool(annotations(read_only_hint = true))]
    async fn add(&self, args: AddArgs) -> Json<Sum> {
        Json(Sum {
            sum: args.a + args.b,
        })
    }

    /// Divide; dividing by zero is a tool error.
    #[tool]
    async fn divide(&self, args: DivideArgs) -> Result<String, String> {
        if args.b == 0.0 {
            return Err("cannot divide by zero".into());
        }
        Ok((args.a / args.b).to_string())
    }

    /// Always fails with a JSON-RPC error.
    #[tool]
    async fn fail_protocol(&self) -> Result<String, ErrorData> {
        Err(ErrorData::internal_error("database down", None))
    }

    /// Always panics (with a secret in the message, which must be redacted).
    #[tool]
    async fn explode(&self) -> String {
        panic!("boom: key sk_live_abcdefghijklmnop leaked")
    }

    /// Sleeps, for cancellation tests.
    #[tool]
    async fn slow(&self, args: SlowArgs) -> String {
        tokio::time::sleep(Duration::from_millis(args.ms)).await;
        "done".into()
    }

    /// Processes a document; results are never stored.
    #[tool(track_results = false, redact = ["document"])]
    async fn process_document(&self, args: Doc) -> String {
        format!(
            "processed {} chars of a secret document",
            args.document.len()
        )
    }

    /// Echoes a token in its result (which must be redacted in storage).
    #[tool(name = "connect_service")]
    async fn connect(&self, args: Connect) -> String {
        format!(
            "connected to {} using Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX2hlcmU",
            args.service
        )
    }

    /// Tells who is calling.
    #[tool]
    async fn whoami(&self, cx: CallContext) -> String {
        format!(
            "{}|{}",
            cx.user_id().unwrap_or("-"),
            cx.session_id().unwrap_or("-")
        )
    }
}

/// A server that records into the process-wide analytics (no `analytics = ...`), which the serve
/// helpers set up from the environment at startup.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalDemo;

#[mcp_server(name = "global-demo")]
impl GlobalDemo {
    /// Echoes the document.
    #[tool]
    async fn echo(&self, args: Doc) -> String {
        args.document
    }
}

/// An image prompt.
#[derive(Deserialize, JsonSchema)]
pub struct Prompt {
    /// What to draw.
    pub prompt: String,
}

/// An API endpoint to call; `fail` makes the call a tool error.
#[derive(Deserialize, JsonSchema)]
pub struct Endpoint {
    /// The endpoint.
    pub url: String,
    /// Fail instead of answering.
    #[serde(default)]
    pub fail: bool,
}

/// The "analytics + payments" demo server (the paid example's tools): free `add`, one-time `generate_image` (two uses per
/// purchase), metered `api_call` (price from `TEST_PRICE_USAGE`), `api_plan` (base fee + usage)
/// and a `pro_report` subscription; beside them, for what an entitlement covers,
/// `generate_hd_image` (the image price plus a surcharge), `premium_report` (Pro plus the
/// Premium add-on), `export_all` (one purchase unlocks it for good) and `thumbnail` (a pack of
/// three per purchase).
#[derive(Clone, Debug)]
pub struct PaidDemo {
    /// Where calls are recorded.
    pub analytics: Analytics,
    /// Who takes the payments.
    pub payments: mcp_analytics::Payments,
    /// How many times a paid tool actually ran.
    pub runs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[mcp_server(name = "paid-demo", version = "0.0.1", analytics = self.analytics, payments = self.payments)]
impl PaidDemo {
    /// Add two integers (free).
    #[tool]
    async fn add(&self, args: AddArgs) -> String {
        (args.a + args.b).to_string()
    }

    #[tool(description = "Generate AI image with premium quality")]
    #[mcp_analytics::paid(
        checkout = { mode = "payment", success_url = "https://example.com/success",
                     line_items = [{ price = "price_image", quantity = 2 }] },
        reason = "High-quality AI image generation"
    )]
    async fn generate_image(&self, args: Prompt) -> String {
        self.ran();
        format!("image of {}", args.prompt)
    }

    /// Call an API, billed per successful call.
    #[tool]
    #[mcp_analytics::paid(
        checkout = { mode = "subscription", success_url = "https://example.com/success",
                     line_items = [{ price = env("TEST_PRICE_USAGE") }] },
        meter = "api_call", reason = "Pay per API call"
    )]
    async fn api_call(&self, args: Endpoint) -> Result<String, String> {
        self.ran();
        if args.fail {
            return Err(format!("{} is down", args.url));
        }
        Ok(format!("called {}", args.url))
    }

    /// An API plan: a monthly base fee plus usage, billed per successful call.
    #[tool]
    #[mcp_analytics::paid(
        checkout = { mode = "subscription", success_url = "https://example.com/success",
                     line_items = [{ price = "price_base" }, { price = env("TEST_PRICE_USAGE") }] },
        meter = "api_call"
    )]
    async fn api_plan(&self, args: Endpoint) -> String {
        self.ran();
        format!("planned call to {}", args.url)
    }

    /// A report for subscribers.
    #[tool]
    #[mcp_analytics::paid(
        checkout = { mode = "subscription", success_url = "https://example.com/success",
                     cancel_url = "https://example.com/cancel",
                     line_items = [{ price = "price_pro", quantity = 1 }] },
        reason = "The Pro plan"
    )]
    async fn pro_report(&self) -> String {
        self.ran();
        "pro report".into()
    }

    /// An HD image: the image price plus a surcharge, so image credits do not buy it.
    #[tool]
    #[mcp_analytics::paid(
        checkout = { mode = "payment", success_url = "https://example.com/success",
                     line_items = [{ price = "price_image", quantity = 2 },
                                   { price = "price_hd_surcharge", quantity = 1 }] },
        reason = "HD AI image generation"
    )]
    async fn generate_hd_image(&self, args: Prompt) -> String {
        self.ran();
        format!("HD image of {}", args.prompt)
    }

    /// A report for subscribers of the Pro plan with the Premium add-on.
    #[tool]
    #[mcp_analytics::paid(
        checkout = { mode = "subscription", success_url = "https://example.com/success",
                     line_items = [{ price = "price_pro", quantity = 1 },
                                   { price = "price_premium", quantity = 1 }] },
        reason = "The Pro plan with Premium"
    )]
    async fn premium_report(&self) -> String {
        self.ran();
        "premium report".into()
    }

    /// Exports everything: one purchase unlocks it for good.
    #[tool]
    #[mcp_analytics::paid(
        checkout = { mode = "payment", success_url = "https://example.com/success",
                     line_items = [{ price = "price_unlock", quantity = 1 }] },
        reason = "Unlimited exports", grant = "unlimited"
    )]
    async fn export_all(&self) -> String {
        self.ran();
        "exported".into()
    }

    /// A thumbnail, sold in packs: one purchase of the pack grants three.
    #[tool]
    #[mcp_analytics::paid(
        checkout = { mode = "payment", success_url = "https://example.com/success",
                     line_items = [{ price = "price_thumbnail_pack", quantity = 1 }] },
        reason = "Three thumbnails", grant = { credits = 3 }
    )]
    async fn thumbnail(&self, args: Prompt) -> String {
        self.ran();
        format!("thumbnail of {}", args.prompt)
    }
}

impl PaidDemo {
    fn ran(&self) {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
