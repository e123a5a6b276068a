//! The parts of a validated access token (JWT claims or an introspection response) that become
//! an [`Identity`], the registered claims a JWT must carry ([`Registered`], checked against
//! [`Rules`] at a given time: natively and on Workers alike), and why a token was refused
//! ([`Failure`]).

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

/// An `aud` claim: one audience or several.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is among them.
    pub(super) fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|one| one == audience),
        }
    }
}

/// What a JWT access token's registered claims must say.
#[derive(Clone, Debug)]
pub(super) struct Rules {
    /// The `iss` (compared exactly).
    pub issuer: String,
    /// An audience `aud` must name.
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
}

/// A JWT's registered claims (RFC 7519 §4.1) that decide whether it is valid now.
#[derive(Deserialize)]
pub(super) struct Registered {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    /// A NumericDate; anything else counts as missing.
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
}

/// A NumericDate's whole seconds (JSON integers and decimals, as RFC 7519 allows).
fn seconds(value: &serde_json::Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            // Whole seconds: the fraction never matters against a leeway of seconds.
            .map(|secs| secs as u64)
    })
}

impl Registered {
    /// Checks the claims at `now_s` (seconds since the Unix epoch): `exp`, `iss` and `aud` are
    /// required; `exp` may be past and `nbf` ahead by the leeway. The refusal is the public
    /// description sent in `error_description`.
    pub(super) fn check(&self, rules: &Rules, now_s: u64) -> Result<(), &'static str> {
        const MISSING: &str = "the access token lacks a required claim";
        let exp = self.exp.as_ref().and_then(seconds).ok_or(MISSING)?;
        let (Some(iss), Some(aud)) = (&self.iss, &self.aud) else {
            return Err(MISSING);
        };
        if exp < now_s.saturating_sub(rules.leeway_s) {
            return Err("the access token has expired");
        }
        if let Some(nbf) = &self.nbf {
            let nbf = seconds(nbf).ok_or("the access token is invalid")?;
            if nbf > now_s.saturating_add(rules.leeway_s) {
                return Err("the access token is not valid yet");
            }
        }
        if *iss != rules.issuer {
            return Err("the access token is from another issuer");
        }
        if !aud.contains(&rules.audience) {
            return Err("the access token is not for this resource");
        }
        Ok(())
    }
}

/// Whether `identity` was granted every scope in `required`.
pub(crate) fn grants(identity: &Identity, required: &[String]) -> bool {
    required.iter().all(|scope| identity.scopes.contains(scope))
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
    use super::{Claims, Registered, Rules};

    /// 2026-12-05T00:00:00Z.
    const NOW: u64 = 1_796_428_800;

    fn rules() -> Rules {
        Rules {
            issuer: "https://idp.example.com".into(),
            audience: "https://mcp.example.com/mcp".into(),
            leeway_s: 30,
        }
    }

    fn registered(json: serde_json::Value) -> Registered {
        serde_json::from_value(json).unwrap()
    }

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "iss": "https://idp.example.com",
            "aud": "https://mcp.example.com/mcp",
            "exp": NOW + 60,
        })
    }

    fn with(key: &str, value: serde_json::Value) -> Registered {
        let mut claims = valid();
        claims[key] = value;
        registered(claims)
    }

    #[test]
    fn a_token_for_this_resource_from_the_issuer_is_valid_until_it_expires() {
        assert_eq!(registered(valid()).check(&rules(), NOW), Ok(()));
        // Several audiences, one of them ours; a decimal NumericDate.
        let many = with(
            "aud",
            serde_json::json!(["other", "https://mcp.example.com/mcp"]),
        );
        assert_eq!(many.check(&rules(), NOW), Ok(()));
        let decimal = with("exp", serde_json::json!(NOW as f64 + 0.5));
        assert_eq!(decimal.check(&rules(), NOW), Ok(()));
    }

    #[test]
    fn expiry_and_not_before_allow_the_leeway_and_no_more() {
        let expired = with("exp", serde_json::json!(NOW - 30));
        assert_eq!(expired.check(&rules(), NOW), Ok(()));
        let expired = with("exp", serde_json::json!(NOW - 31));
        assert_eq!(
            expired.check(&rules(), NOW),
            Err("the access token has expired")
        );
        let early = with("nbf", serde_json::json!(NOW + 30));
        assert_eq!(early.check(&rules(), NOW), Ok(()));
        let early = with("nbf", serde_json::json!(NOW + 31));
        assert_eq!(
            early.check(&rules(), NOW),
            Err("the access token is not valid yet")
        );
    }

    #[test]
    fn another_issuer_or_audience_is_refused() {
        let issuer = with("iss", serde_json::json!("https://idp.example.com/"));
        assert_eq!(
            issuer.check(&rules(), NOW),
            Err("the access token is from another issuer")
        );
        for aud in [
            serde_json::json!("https://other.example.com/mcp"),
            serde_json::json!([]),
        ] {
            assert_eq!(
                with("aud", aud).check(&rules(), NOW),
                Err("the access token is not for this resource")
            );
        }
    }

    #[test]
    fn exp_iss_and_aud_are_required() {
        for claim in ["exp", "iss", "aud"] {
            let mut claims = valid();
            claims.as_object_mut().unwrap().remove(claim);
            assert_eq!(
                registered(claims).check(&rules(), NOW),
                Err("the access token lacks a required claim"),
                "{claim}"
            );
        }
        let text = with("exp", serde_json::json!("tomorrow"));
        assert_eq!(
            text.check(&rules(), NOW),
            Err("the access token lacks a required claim")
        );
    }

    #[test]
    fn every_required_scope_must_be_granted() {
        let mut identity = crate::Identity::new("u1");
        identity.scopes = vec!["mcp:read".into(), "mcp:write".into()];
        assert!(super::grants(&identity, &[]));
        assert!(super::grants(&identity, &["mcp:write".into()]));
        assert!(!super::grants(
            &identity,
            &["mcp:write".into(), "mcp:admin".into()]
        ));
    }

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
