//! Example servers live in `examples/`; run them with `cargo run --example NAME`.
