//! MCP 2026-07-28's cache hints on the list results of prompts, resources and templates (as
//! `tools/list` has them), and the protocol check that decides them.

use rmcp::model::{
    CacheScope, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ProtocolVersion,
};

use super::RequestContext;

/// A list result with MCP 2026-07-28's cache hints when the request speaks it (as `tools/list`).
pub(super) fn listing<T: Listing>(result: T, context: &RequestContext) -> T {
    if is_modern(context) {
        result.with_hints()
    } else {
        result
    }
}

/// Whether the request speaks MCP 2026-07-28 or later.
pub(super) fn is_modern(context: &RequestContext) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28)
}

/// The list results that carry cache hints.
pub(super) trait Listing: Sized {
    /// Fresh for no time, cacheable by anyone (the lists are the same for every user).
    fn with_hints(self) -> Self;
}

macro_rules! listing {
    ($($list:ty),*) => {$(
        impl Listing for $list {
            fn with_hints(self) -> Self {
                self.with_ttl_ms(0).with_cache_scope(CacheScope::Public)
            }
        }
    )*};
}
listing!(
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult
);
