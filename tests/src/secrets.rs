//! The secrets the behaviour tests send to the demo server, which must never reach storage.

use serde_json::Value;

/// Every secret the tests send or return; none may appear in storage.
pub const SECRETS: &[&str] = &[
    "hunter2",
    "sk_live_abcdefghijklmnop",
    "4242 4242 4242 4242",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9",
    "top-secret-document-body",
    "s3cr3t-t0ken",
];

/// Arguments with nested and value-pattern secrets.
pub fn secret_arguments() -> Value {
    serde_json::json!({
        "service": "warehouse",
        "credentials": {
            "username": "bob",
            "Password": "hunter2",
            "nested": [{"x-auth-token": "s3cr3t-t0ken"}, {"note": "card 4242 4242 4242 4242"}],
            "aws": "AKIAIOSFODNN7EXAMPLE",
            "stripe": "sk_live_abcdefghijklmnop"
        }
    })
}

/// Panics if `text` contains any of [`SECRETS`].
pub fn assert_no_secrets(text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "secret {secret:?} leaked into {text}"
        );
    }
}
