//! What a purchase entitles: a take-back reaches every kind of grant at once, and an entitlement covers a tool's whole set of prices.

#[allow(unused_imports)]
use super::*;
