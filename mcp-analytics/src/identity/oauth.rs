//! The OAuth 2.1 resource server for `/mcp`: [`OAuthConfig`] (environment or builder), and the
//! axum middleware that accepts a request only with a valid `Authorization: Bearer` token and
//! puts the caller's [`Identity`](crate::Identity) into its extensions.

use std::{fmt, sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use rmcp::transport::streamable_http_server::{SessionId, SessionManager};

use super::{
    claims::Failure,
    http::{InsecureUrl, secure_url},
    introspection::{self, Introspector},
    jwks::{self, JwksCache},
    metadata::{self, ResourceMetadata},
    sessions::Sessions,
};
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
    jwks_url: Option<String>,
    introspection_url: Option<String>,
    credentials: Option<(String, String)>,
    pub(super) required_scopes: Vec<String>,
    pub(super) scopes_supported: Vec<String>,
    leeway: Duration,
    jwks_cooldown: Duration,
    jwks_max_age: Duration,
    cache_ttl: Duration,
    timeout: Duration,
    max_sessions: usize,
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

/// A running resource server: the configuration and its token verifier (with caches).
pub(crate) struct OAuth {
    config: OAuthConfig,
    verifier: Result<Verifier, Arc<SetupError>>,
    sessions: Arc<Sessions>,
    metadata: Arc<ResourceMetadata>,
}

/// Why the token verifier cannot run: reported at startup, and every request then fails closed.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error(transparent)]
    InsecureUrl(#[from] InsecureUrl),
    #[error(
        "no audience: set MCP_OAUTH_AUDIENCE (or MCP_OAUTH_RESOURCE), or call OAuthConfig::audience, so tokens issued for other services are refused"
    )]
    NoAudience,
    #[error("cannot build the OAuth HTTP client: {0}")]
    Client(reqwest::Error),
}

/// One per server, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Verifier {
    Jwt(JwksCache),
    Introspection(Introspector),
}

impl OAuth {
    /// Builds the verifier (and its HTTP client) for `config`.
    pub(crate) fn new(config: OAuthConfig) -> Self {
        let verifier = Self::verifier(&config).map_err(Arc::new);
        let metadata = Arc::new(ResourceMetadata {
            resource: config.resource.clone(),
            issuer: config.issuer.clone(),
            scopes_supported: config.scopes_supported.clone(),
        });
        Self {
            sessions: Arc::new(Sessions::new(config.max_sessions)),
            config,
            verifier,
            metadata,
        }
    }

    /// The unauthenticated routes publishing this resource's metadata.
    pub(crate) fn metadata_router(&self) -> axum::Router {
        metadata::router(self.metadata.clone())
    }

    /// The MCP session manager binding sessions to the users who open them (serve `/mcp`
    /// with it).
    pub(crate) fn sessions(&self) -> Arc<Sessions> {
        self.sessions.clone()
    }

    fn verifier(config: &OAuthConfig) -> Result<Verifier, SetupError> {
        for url in [
            Some(&config.issuer),
            config.jwks_url.as_ref(),
            config.introspection_url.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            secure_url(url)?;
        }
        let Some(audience) = config.audience.clone() else {
            return Err(SetupError::NoAudience);
        };
        // Redirects are not followed: a token or a key set must come from the configured URL.
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(SetupError::Client)?;
        Ok(match &config.introspection_url {
            Some(url) => Verifier::Introspection(Introspector::new(
                http,
                introspection::Settings {
                    url: url.clone(),
                    credentials: config.credentials.clone(),
                    issuer: config.issuer.clone(),
                    audience,
                    ttl: config.cache_ttl,
                    leeway: config.leeway,
                    timeout: config.timeout,
                },
            )),
            None => Verifier::Jwt(JwksCache::new(
                http,
                &config.issuer,
                &audience,
                config.jwks_url.clone(),
                jwks::Timing {
                    cooldown: config.jwks_cooldown,
                    max_age: config.jwks_max_age,
                    leeway: config.leeway,
                },
            )),
        })
    }

    /// Fails when the verifier could not be built (reported at startup).
    pub(crate) fn check(&self) -> Result<(), Error> {
        match &self.verifier {
            Ok(_) => Ok(()),
            Err(error) => Err(Error::Serve {
                context: "OAuth is configured but cannot run".into(),
                source: Box::new(error.clone()),
            }),
        }
    }

    pub(crate) fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// This resource's URL as seen by a request.
    pub(super) fn resource(&self, headers: &HeaderMap) -> String {
        self.metadata.resource(headers)
    }

    async fn verify(&self, token: &str) -> Result<crate::Identity, Failure> {
        match &self.verifier {
            Ok(Verifier::Jwt(jwks)) => jwks.verify(token).await,
            Ok(Verifier::Introspection(introspector)) => introspector.verify(token).await,
            Err(error) => Err(Failure::Unavailable(error.to_string())),
        }
    }
}

/// The MCP session header (streamable HTTP).
const SESSION_HEADER: &str = "mcp-session-id";

/// The middleware: no or bad token → 401, missing scope → 403, another user's session → 404,
/// else the request goes on with the caller's `Identity` in its extensions.
pub(crate) async fn require_bearer(
    State(oauth): State<Arc<OAuth>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let metadata_url = metadata::metadata_url(&oauth.resource(&parts.headers));
    let Some(token) = bearer_token(&parts.headers) else {
        return reject(
            StatusCode::UNAUTHORIZED,
            &challenge(&metadata_url, None, &oauth.config.required_scopes),
        );
    };
    match oauth.verify(token).await {
        Ok(identity) => {
            let required = &oauth.config.required_scopes;
            if !required.iter().all(|scope| identity.scopes.contains(scope)) {
                let error = (
                    "insufficient_scope",
                    "the access token lacks a required scope",
                );
                return reject(
                    StatusCode::FORBIDDEN,
                    &challenge(&metadata_url, Some(error), required),
                );
            }
            // A session belongs to the user who opened it.
            let session = parts
                .headers
                .get(SESSION_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            if let Some(session) = &session
                && !oauth.sessions.allows(session, &identity.subject)
            {
                return (StatusCode::NOT_FOUND, "Session not found").into_response();
            }
            let subject = identity.subject.clone();
            parts.extensions.insert(identity);
            let response = next.run(Request::from_parts(parts, body)).await;
            // A new session is bound to its opener; the binding goes when rmcp closes the
            // session (`Sessions::close_session`).
            let opened = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|value| value.to_str().ok())
                .filter(|_| session.is_none() && response.status().is_success());
            if let Some(opened) = opened
                && oauth.sessions.bind(opened, &subject).is_err()
            {
                let opened: SessionId = opened.into();
                let _ = oauth.sessions.close_session(&opened).await;
                tracing::warn!(
                    max = oauth.config.max_sessions,
                    "refused a new MCP session: the session table is full"
                );
                let mut refused = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many open sessions; try again shortly",
                )
                    .into_response();
                refused
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return refused;
            }
            response
        }
        Err(Failure::Invalid(why)) => reject(
            StatusCode::UNAUTHORIZED,
            &challenge(
                &metadata_url,
                Some(("invalid_token", why)),
                &oauth.config.required_scopes,
            ),
        ),
        Err(Failure::Unavailable(why)) => {
            tracing::warn!(issuer = %oauth.config.issuer, "cannot check an OAuth token: {why}");
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                "the authorization server cannot be reached; try again shortly",
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The `WWW-Authenticate` value: `Bearer resource_metadata="…"`, plus `error` and
/// `error_description` when a token was refused, plus `scope` when scopes are required.
pub(super) fn challenge(
    metadata_url: &str,
    error: Option<(&str, &str)>,
    scopes: &[String],
) -> String {
    let mut params = Vec::new();
    if let Some((code, description)) = error {
        params.push(format!("error=\"{}\"", quote(code)));
        params.push(format!("error_description=\"{}\"", quote(description)));
    }
    if !scopes.is_empty() {
        params.push(format!("scope=\"{}\"", quote(&scopes.join(" "))));
    }
    params.push(format!("resource_metadata=\"{}\"", quote(metadata_url)));
    format!("Bearer {}", params.join(", "))
}

/// A quoted-string body: no quotes, backslashes or control characters.
fn quote(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect()
}

fn reject(status: StatusCode, challenge: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
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

    #[test]
    fn challenges() {
        let url = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            challenge(url, None, &[]),
            format!("Bearer resource_metadata=\"{url}\"")
        );
        assert_eq!(
            challenge(
                url,
                Some(("invalid_token", "the \"token\" expired")),
                &["a".into(), "b".into()]
            ),
            format!(
                "Bearer error=\"invalid_token\", error_description=\"the token expired\", scope=\"a b\", resource_metadata=\"{url}\""
            )
        );
    }

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "bearer abc.def".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("abc.def"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }
}
