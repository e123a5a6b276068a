//! The parts of a validated access token (JWT claims or an introspection response) that become
//! an [`Identity`], and why a token was refused ([`Failure`]).

use serde::Deserialize;

use crate::Identity;

/// Claims read from a JWT access token or an RFC 7662 introspection response.
#[derive(Deserialize)]
pub(super) struct Claims {
    #[serde(default)]
    pub sub: Option<String>,
    /// Introspection responses may name the user here instead of `sub`.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// RFC 8693 / RFC 9068: space-separated.
    #[serde(default)]
    pub scope: Option<Scopes>,
    /// Azure AD / Okta style.
    #[serde(default)]
    pub scp: Option<Scopes>,
}

/// Scopes as a space-separated string or a JSON array.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Scopes {
    Text(String),
    List(Vec<String>),
}

impl Scopes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Scopes::Text(text) => text.split_whitespace().map(str::to_owned).collect(),
            Scopes::List(list) => list,
        }
    }
}

impl Claims {
    /// The identity these claims describe; `None` without a non-empty subject.
    pub(super) fn into_identity(self) -> Option<Identity> {
        let subject = self
            .sub
            .or(self.username)
            .filter(|subject| !subject.is_empty())?;
        let mut scopes: Vec<String> = self
            .scope
            .into_iter()
            .chain(self.scp)
            .flat_map(Scopes::into_vec)
            .collect();
        scopes.dedup();
        Some(Identity {
            subject,
            email: self.email.filter(|email| !email.is_empty()),
            name: self.name.filter(|name| !name.is_empty()),
            scopes,
        })
    }
}

/// Why a request's token was not accepted.
#[derive(Debug)]
pub(super) enum Failure {
    /// The token is invalid, expired or not for us: `401 invalid_token` with this description.
    Invalid(&'static str),
    /// The authorization server (JWKS, metadata, introspection) could not be reached or
    /// answered nonsense: `503`, the token may be fine. The text is logged, not sent.
    Unavailable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Invalid(why) => f.write_str(why),
            Failure::Unavailable(why) => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Claims;

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "sub": "u1", "scope": "read write", "scp": ["admin"], "email": "a@b.c"
        }))
        .unwrap();
        let identity = claims.into_identity().unwrap();
        assert_eq!(identity.subject, "u1");
        assert_eq!(identity.scopes, ["read", "write", "admin"]);
        assert_eq!(identity.email.as_deref(), Some("a@b.c"));
    }

    #[test]
    fn a_subject_is_required() {
        let claims: Claims = serde_json::from_value(serde_json::json!({"sub": ""})).unwrap();
        assert!(claims.into_identity().is_none());
        let claims: Claims =
            serde_json::from_value(serde_json::json!({"username": "bob"})).unwrap();
        assert_eq!(claims.into_identity().unwrap().subject, "bob");
    }
}
