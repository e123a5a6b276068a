//! Healing what the provider no longer knows, and retries that keep their parameters.

#[allow(unused_imports)]
use super::*;
