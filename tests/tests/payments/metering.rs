//! Metered usage that Stripe refuses is kept and retried; a meter name that does not match is a startup error.

#[allow(unused_imports)]
use super::*;
