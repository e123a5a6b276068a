//! Delayed payment methods and subscriptions whose payment needs fixing.

#[allow(unused_imports)]
use super::*;
