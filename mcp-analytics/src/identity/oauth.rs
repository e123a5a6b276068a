//! The OAuth 2.1 resource server for `/mcp` natively: the axum middleware that accepts a
//! request only with a valid `Authorization: Bearer` token and puts the caller's
//! [`Identity`](crate::Identity) into its extensions.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use rmcp::transport::streamable_http_server::{SessionId, SessionManager};

use super::{
    OAuthConfig,
    challenge::{Refusal, Refused, bearer_token},
    claims::{Failure, grants},
    http::{InsecureUrl, secure_url},
    introspection::{self, Introspector},
    jwks::JwksCache,
    metadata::{self, ResourceMetadata},
    sessions::Sessions,
};
use crate::Error;

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
        let metadata = Arc::new(ResourceMetadata::of(&config));
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
                config.rules(&audience),
                config.jwks_url.clone(),
                config.jwks_policy(),
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
    let refuse = |refused: Refused| {
        if let Refused::Token(Failure::Unavailable(why)) = &refused {
            tracing::warn!(issuer = %oauth.config.issuer, "cannot check an OAuth token: {why}");
        }
        let metadata_url = metadata::metadata_url(&oauth.resource(&parts.headers));
        reject(refused.refusal(&metadata_url, &oauth.config.required_scopes))
    };
    let Some(token) = bearer_token(&parts.headers) else {
        return refuse(Refused::NoToken);
    };
    match oauth.verify(token).await {
        Ok(identity) => {
            if !grants(&identity, &oauth.config.required_scopes) {
                return refuse(Refused::InsufficientScope);
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
        Err(failure) => refuse(Refused::Token(failure)),
    }
}

/// The axum response of a refusal.
fn reject(refusal: Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = if refusal.body.is_empty() {
        status.into_response()
    } else {
        (status, refusal.body).into_response()
    };
    if let Some(value) = refusal
        .challenge
        .and_then(|challenge| HeaderValue::from_str(&challenge).ok())
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    if let Some(retry) = refusal.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(retry));
    }
    response
}
