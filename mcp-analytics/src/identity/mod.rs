//! Who is calling: the [`Identity`] that authentication middleware puts into the request
//! extensions, [`IdentityResolver`] to compute it from an HTTP request, how much of it analytics
//! stores ([`UserDetails`]) and, with the `oauth` feature, an OAuth 2.1 resource server
//! ([`OAuthConfig`]) that validates bearer tokens on `/mcp`.

#[cfg(feature = "oauth")]
mod claims;
mod details;
#[cfg(feature = "oauth")]
mod http;
#[cfg(feature = "oauth")]
mod introspection;
#[cfg(feature = "oauth")]
mod jwks;
#[cfg(feature = "oauth")]
mod metadata;
#[cfg(feature = "oauth")]
mod oauth;
#[cfg(feature = "http")]
mod sessions;

pub use details::UserDetails;
#[cfg(feature = "oauth")]
pub use oauth::OAuthConfig;
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
