//! Who is calling: the [`Identity`] that authentication middleware puts into the request
//! extensions, [`IdentityResolver`] to compute it from an HTTP request, how much of it analytics
//! stores ([`UserDetails`]) and, with the `oauth` feature, an OAuth 2.1 resource server
//! ([`OAuthConfig`]) that validates bearer tokens on `/mcp`. The token checks themselves
//! (feature `jwt`: the claims, the JWKS and its cache policy, the refusals) are shared with
//! the Cloudflare Worker, which uses them through [`Gate`] (feature `workers`).

#[cfg(feature = "jwt")]
mod challenge;
#[cfg(feature = "jwt")]
mod claims;
#[cfg(feature = "jwt")]
mod config;
mod details;
#[cfg(feature = "workers")]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod gate;
#[cfg(feature = "jwt")]
mod http;
#[cfg(feature = "oauth")]
mod introspection;
#[cfg(feature = "oauth")]
mod jwks;
#[cfg(feature = "jwt")]
mod keys;
#[cfg(feature = "jwt")]
mod metadata;
#[cfg(feature = "oauth")]
mod oauth;
#[cfg(feature = "http")]
mod sessions;

#[cfg(feature = "jwt")]
pub use config::OAuthConfig;
pub use details::UserDetails;
#[cfg(all(feature = "workers", target_arch = "wasm32"))]
pub(crate) use gate::{Gate, Rejection};
#[cfg(feature = "oauth")]
pub(crate) use oauth::{OAuth, require_bearer};
#[cfg(feature = "http")]
pub(crate) use sessions::Sessions;

/// An authenticated caller. Insert it into the HTTP request extensions (for example from an
/// axum middleware) and every tool call on that request is attributed to `subject`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The stable user id (an OAuth `sub`); stored as `user_id`.
    pub subject: String,
    /// The user's email, if known (stored masked by default, see [`UserDetails`]).
    pub email: Option<String>,
    /// The user's display name, if known (stored masked by default, see [`UserDetails`]).
    pub name: Option<String>,
    /// Granted OAuth scopes.
    pub scopes: Vec<String>,
}

impl Identity {
    /// An identity with only a subject.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            email: None,
            name: None,
            scopes: Vec::new(),
        }
    }
}

/// Computes the caller's identity from an HTTP request's head (headers, extensions).
///
/// Any `Fn(&::http::request::Parts) -> Option<Identity>` is a resolver.
pub trait IdentityResolver: Send + Sync + 'static {
    /// The identity of the request's caller, or `None` when anonymous.
    fn resolve(&self, request: &::http::request::Parts) -> Option<Identity>;
}

impl<F> IdentityResolver for F
where
    F: Fn(&::http::request::Parts) -> Option<Identity> + Send + Sync + 'static,
{
    fn resolve(&self, request: &::http::request::Parts) -> Option<Identity> {
        self(request)
    }
}
