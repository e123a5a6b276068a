//! [`OAuthConfig`]: how `/mcp` checks access tokens, from the `MCP_OAUTH_*` variables or a
//! builder; read natively (`oauth`) and by the Worker (`workers`) alike.

use std::{fmt, time::Duration};

use super::{claims::Rules, http::secure_url, keys::Policy};
use crate::Error;

/// How `/mcp` checks OAuth access tokens: the issuer, this resource's audience, and either the
/// issuer's JWKS (JWT access tokens) or an RFC 7662 introspection endpoint (opaque tokens).
///
/// | variable | meaning |
/// |---|---|
/// | `MCP_OAUTH_ISSUER` | the authorization server (turns OAuth on) |
/// | `MCP_OAUTH_AUDIENCE` | the `aud` tokens must carry (default `MCP_OAUTH_RESOURCE`) |
/// | `MCP_OAUTH_RESOURCE` | this server's public `/mcp` URL (default from the `Host` header) |
/// | `MCP_OAUTH_JWKS_URL` | the key set (default: the issuer's metadata `jwks_uri`) |
/// | `MCP_OAUTH_INTROSPECTION_URL` | introspect tokens there instead of reading them as JWTs |
/// | `MCP_OAUTH_CLIENT_ID`, `MCP_OAUTH_CLIENT_SECRET` | credentials for introspection |
/// | `MCP_OAUTH_REQUIRED_SCOPES` | scopes every call needs (space or comma separated) |
/// | `MCP_OAUTH_SCOPES_SUPPORTED` | scopes advertised to clients (default: the required ones) |
#[derive(Clone)]
pub struct OAuthConfig {
    pub(super) issuer: String,
    pub(super) audience: Option<String>,
    pub(super) resource: Option<String>,
    pub(super) jwks_url: Option<String>,
    pub(super) introspection_url: Option<String>,
    #[cfg_attr(not(feature = "oauth"), allow(dead_code))]
    pub(super) credentials: Option<(String, String)>,
    pub(super) required_scopes: Vec<String>,
    pub(super) scopes_supported: Vec<String>,
    pub(super) leeway: Duration,
    pub(super) jwks_cooldown: Duration,
    pub(super) jwks_max_age: Duration,
    #[cfg_attr(not(feature = "oauth"), allow(dead_code))]
    pub(super) cache_ttl: Duration,
    #[cfg_attr(not(feature = "oauth"), allow(dead_code))]
    pub(super) timeout: Duration,
    #[cfg_attr(not(feature = "oauth"), allow(dead_code))]
    pub(super) max_sessions: usize,
}

impl OAuthConfig {
    /// Sessions bound to their users at once, by default.
    pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

    /// JWT access tokens from `issuer`, checked against its JWKS, whose `aud` must be
    /// `audience` (usually this server's public `/mcp` URL).
    pub fn jwt(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self::base(issuer.into(), Some(audience.into()), None)
    }

    /// Opaque access tokens from `issuer`, checked at its RFC 7662 introspection `endpoint`;
    /// the answer's `aud` must name `audience`.
    pub fn introspection(
        issuer: impl Into<String>,
        endpoint: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self::base(issuer.into(), Some(audience.into()), Some(endpoint.into()))
    }

    fn base(issuer: String, audience: Option<String>, introspection_url: Option<String>) -> Self {
        Self {
            issuer,
            audience,
            resource: None,
            jwks_url: None,
            introspection_url,
            credentials: None,
            required_scopes: Vec::new(),
            scopes_supported: Vec::new(),
            leeway: Duration::from_secs(30),
            jwks_cooldown: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(15 * 60),
            cache_ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            max_sessions: Self::DEFAULT_MAX_SESSIONS,
        }
    }

    /// The `aud` tokens must carry (introspection answers too).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// This server's public `/mcp` URL, published as `resource` in the protected-resource
    /// metadata (default: built from each request's `Host` header).
    pub fn resource(mut self, url: impl Into<String>) -> Self {
        self.resource = Some(url.into());
        self
    }

    /// Fetch keys from this JWKS URL instead of the one in the issuer's metadata.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Authenticate to the introspection endpoint with HTTP Basic `client_id:client_secret`.
    pub fn client_credentials(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.credentials = Some((id.into(), secret.into()));
        self
    }

    /// Scopes every request needs; tokens without them get `403 insufficient_scope`. Also
    /// advertised as `scopes_supported` unless [`scopes_supported`](Self::scopes_supported)
    /// is set.
    pub fn required_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        if self.scopes_supported.is_empty() {
            self.scopes_supported.clone_from(&self.required_scopes);
        }
        self
    }

    /// Scopes advertised in the protected-resource metadata.
    pub fn scopes_supported(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The least time between two JWKS fetches (default 10 s): tokens naming an unknown key
    /// cause at most one fetch per period.
    pub fn jwks_refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.jwks_cooldown = cooldown;
        self
    }

    /// How long introspection answers are reused (default 30 s, never past the token's `exp`).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// The timeout of each request to the authorization server (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most MCP sessions open at once (default [`Self::DEFAULT_MAX_SESSIONS`]). Each
    /// session belongs to the user who opened it until it closes (`DELETE`, or idle for
    /// 5 minutes); at the limit, opening another answers `503` with `Retry-After` rather than
    /// forgetting whose a live session is.
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = sessions;
        self
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Reads the `MCP_OAUTH_*` variables like [`crate::Config::from_env`] (process
    /// environment, then `.dev.vars`, then `.env`); `None` when `MCP_OAUTH_ISSUER` is unset.
    pub fn from_env() -> Result<Option<Self>, Error> {
        Self::from_lookup(crate::env::lookup()?)
    }

    /// Reads the `MCP_OAUTH_*` variables through `lookup` (a variable name → its value).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let get = |var: &str| {
            lookup(var)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let url = |var: &'static str| -> Result<Option<String>, Error> {
            match get(var) {
                Some(value) if secure_url(&value).is_err() => Err(Error::InvalidConfig {
                    var,
                    value,
                    expected: "an https:// URL (http:// only to localhost)".into(),
                }),
                other => Ok(other),
            }
        };
        let Some(issuer) = url("MCP_OAUTH_ISSUER")? else {
            return match OTHER_VARS.iter().find(|var| get(var).is_some()) {
                Some(var) => Err(Error::InvalidConfig {
                    var: "MCP_OAUTH_ISSUER",
                    value: String::new(),
                    expected: format!("the authorization server's issuer URL ({var} is set)")
                        .into(),
                }),
                None => Ok(None),
            };
        };
        let resource = url("MCP_OAUTH_RESOURCE")?;
        let audience = get("MCP_OAUTH_AUDIENCE").or_else(|| resource.clone());
        let Some(audience) = audience else {
            return Err(Error::InvalidConfig {
                var: "MCP_OAUTH_AUDIENCE",
                value: String::new(),
                expected: "the `aud` your authorization server puts in tokens for this server (or set MCP_OAUTH_RESOURCE to this server's public /mcp URL)".into(),
            });
        };
        let mut config = Self::base(issuer, Some(audience), url("MCP_OAUTH_INTROSPECTION_URL")?);
        config.resource = resource;
        config.jwks_url = url("MCP_OAUTH_JWKS_URL")?;
        config.credentials = match (get("MCP_OAUTH_CLIENT_ID"), get("MCP_OAUTH_CLIENT_SECRET")) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::InvalidConfig {
                    var: "MCP_OAUTH_CLIENT_SECRET",
                    value: String::new(),
                    expected: "the introspection client's secret (MCP_OAUTH_CLIENT_ID is set)"
                        .into(),
                });
            }
            (None, Some(_)) => {
                return Err(Error::InvalidConfig {
                    var: "MCP_OAUTH_CLIENT_ID",
                    value: String::new(),
                    expected: "the introspection client's id (MCP_OAUTH_CLIENT_SECRET is set)"
                        .into(),
                });
            }
        };
        if let Some(scopes) = get("MCP_OAUTH_REQUIRED_SCOPES") {
            config = config.required_scopes(split_scopes(&scopes));
        }
        if let Some(scopes) = get("MCP_OAUTH_SCOPES_SUPPORTED") {
            config = config.scopes_supported(split_scopes(&scopes));
        }
        Ok(Some(config))
    }
}

/// The variables that mean nothing without `MCP_OAUTH_ISSUER`: setting one alone is an error
/// (the operator meant to turn OAuth on), never a silently open `/mcp`.
const OTHER_VARS: [&str; 8] = [
    "MCP_OAUTH_AUDIENCE",
    "MCP_OAUTH_RESOURCE",
    "MCP_OAUTH_JWKS_URL",
    "MCP_OAUTH_INTROSPECTION_URL",
    "MCP_OAUTH_CLIENT_ID",
    "MCP_OAUTH_CLIENT_SECRET",
    "MCP_OAUTH_REQUIRED_SCOPES",
    "MCP_OAUTH_SCOPES_SUPPORTED",
];

fn split_scopes(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
        .collect()
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("resource", &self.resource)
            .field("jwks_url", &self.jwks_url)
            .field("introspection_url", &self.introspection_url)
            .field("client_id", &self.credentials.as_ref().map(|(id, _)| id))
            .field("required_scopes", &self.required_scopes)
            .finish_non_exhaustive()
    }
}

impl OAuthConfig {
    /// What a JWT's registered claims must say, given the audience.
    pub(super) fn rules(&self, audience: &str) -> Rules {
        Rules {
            issuer: self.issuer.clone(),
            audience: audience.to_owned(),
            leeway_s: self.leeway.as_secs(),
        }
    }

    /// When the JWKS is fetched again.
    pub(super) fn jwks_policy(&self) -> Policy {
        Policy {
            cooldown: self.jwks_cooldown,
            max_age: self.jwks_max_age,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<OAuthConfig>, Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OAuthConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn off_without_an_issuer() {
        assert!(config(&[]).unwrap().is_none());
        let error = config(&[("MCP_OAUTH_AUDIENCE", "x")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("MCP_OAUTH_ISSUER") && error.contains("MCP_OAUTH_AUDIENCE is set"),
            "{error}"
        );
    }

    #[test]
    fn jwt_needs_an_audience_or_resource() {
        let error = config(&[("MCP_OAUTH_ISSUER", "https://idp.example.com")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("MCP_OAUTH_AUDIENCE"), "{error}");
        let parsed = config(&[
            ("MCP_OAUTH_ISSUER", "https://idp.example.com"),
            ("MCP_OAUTH_RESOURCE", "https://mcp.example.com/mcp"),
            ("MCP_OAUTH_REQUIRED_SCOPES", "mcp:read, mcp:write"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            parsed.audience.as_deref(),
            Some("https://mcp.example.com/mcp")
        );
        assert_eq!(parsed.required_scopes, ["mcp:read", "mcp:write"]);
        assert_eq!(parsed.scopes_supported, ["mcp:read", "mcp:write"]);
        assert!(parsed.introspection_url.is_none());
    }

    #[test]
    fn introspection_settings_and_bad_values() {
        let introspected = [
            ("MCP_OAUTH_ISSUER", "https://idp.example.com"),
            (
                "MCP_OAUTH_INTROSPECTION_URL",
                "https://idp.example.com/introspect",
            ),
            ("MCP_OAUTH_CLIENT_ID", "rs"),
            ("MCP_OAUTH_CLIENT_SECRET", "shh-secret"),
        ];
        // Introspected tokens must name this resource too.
        let error = config(&introspected).unwrap_err().to_string();
        assert!(error.contains("MCP_OAUTH_AUDIENCE"), "{error}");
        let mut with_audience = introspected.to_vec();
        with_audience.insert(0, ("MCP_OAUTH_AUDIENCE", "https://mcp.example.com/mcp"));
        let parsed = config(&with_audience).unwrap().unwrap();
        assert_eq!(
            parsed.introspection_url.as_deref(),
            Some("https://idp.example.com/introspect")
        );
        assert!(
            !format!("{parsed:?}").contains("shh-secret"),
            "Debug hides the secret"
        );
        let error = config(&with_audience[..4]).unwrap_err().to_string();
        assert!(error.contains("MCP_OAUTH_CLIENT_SECRET"), "{error}");
        let error = config(&[("MCP_OAUTH_ISSUER", "idp.example.com")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("MCP_OAUTH_ISSUER") && error.contains("URL"),
            "{error}"
        );
        // Keys and token answers come over https (plain http only from this machine).
        let error = config(&[
            ("MCP_OAUTH_ISSUER", "https://idp.example.com"),
            ("MCP_OAUTH_AUDIENCE", "a"),
            ("MCP_OAUTH_JWKS_URL", "http://idp.example.com/jwks"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("MCP_OAUTH_JWKS_URL"), "{error}");
        for alone in ["MCP_OAUTH_CLIENT_SECRET", "MCP_OAUTH_SCOPES_SUPPORTED"] {
            let error = config(&[(alone, "x")]).unwrap_err().to_string();
            assert!(error.contains("MCP_OAUTH_ISSUER"), "{alone}: {error}");
        }
    }

    #[test]
    fn only_https_or_loopback_urls_are_fetched() {
        for good in [
            "https://idp.example.com/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/x",
            "http://[::1]:9/x",
        ] {
            assert_eq!(secure_url(good), Ok(()), "{good}");
        }
        for bad in [
            "http://idp.example.com/jwks",
            "http://10.0.0.1/jwks",
            "ftp://idp.example.com",
            "https://",
            "jwks",
        ] {
            assert!(secure_url(bad).is_err(), "{bad}");
        }
    }
}
