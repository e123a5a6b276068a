//! [`Gate`]: the bearer-token check of `/mcp` where there is no axum middleware (Cloudflare
//! Workers). It reads the same [`OAuthConfig`], applies the same claim checks
//! ([`keys::verify`]), JWKS policy ([`Policy`]) and refusals ([`Refused`]) as the native
//! resource server; the platform supplies only the HTTP GET that fetches discovery documents
//! and the key set, and the clock is [`crate::clock`].

use std::{future::Future, sync::Arc, sync::Mutex};

use http::HeaderMap;
use serde_json::Value;

use super::{
    OAuthConfig,
    challenge::{Refusal, Refused, bearer_token},
    claims::{Failure, Rules, grants},
    http::{MAX_RESPONSE_BYTES, secure_url},
    keys::{self, Header, JwkSet, Key, Policy},
    metadata::{self, ResourceMetadata},
};
use crate::{Error, Identity, clock::now_ms};

/// Checks bearer tokens on `/mcp` against the issuer's JWKS, cached for the life of the
/// instance.
pub(crate) struct Gate {
    rules: Rules,
    required_scopes: Vec<String>,
    jwks_url: Option<String>,
    policy: Policy,
    metadata: ResourceMetadata,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: Vec<Arc<Key>>,
    fetched_ms: Option<i64>,
    last_attempt_ms: Option<i64>,
    /// The JWKS URL once discovered.
    discovered: Option<String>,
}

/// A refused request, and what to log about it (the authorization server's failure, which
/// is not sent to the client).
pub(crate) struct Rejection {
    pub refusal: Refusal,
    pub log: Option<String>,
}

impl Gate {
    /// A gate for `config`: JWT access tokens only (introspection is not available here).
    pub(crate) fn new(config: &OAuthConfig) -> Result<Self, Error> {
        if let Some(url) = &config.introspection_url {
            return Err(Error::InvalidConfig {
                var: "MCP_OAUTH_INTROSPECTION_URL",
                value: url.clone(),
                expected: "unset: on Cloudflare Workers access tokens are checked as JWTs against the issuer's JWKS".into(),
            });
        }
        for url in [Some(&config.issuer), config.jwks_url.as_ref()]
            .into_iter()
            .flatten()
        {
            secure_url(url).map_err(|why| Error::InvalidConfig {
                var: "MCP_OAUTH_ISSUER",
                value: url.clone(),
                expected: why.to_string().into(),
            })?;
        }
        let Some(audience) = &config.audience else {
            return Err(Error::InvalidConfig {
                var: "MCP_OAUTH_AUDIENCE",
                value: String::new(),
                expected: "the `aud` your authorization server puts in tokens for this server"
                    .into(),
            });
        };
        Ok(Self {
            rules: config.rules(audience),
            required_scopes: config.required_scopes.clone(),
            jwks_url: config.jwks_url.clone(),
            policy: config.jwks_policy(),
            metadata: ResourceMetadata::of(config),
            state: Mutex::new(State::default()),
        })
    }

    /// The protected-resource metadata document when `path` is where it is published.
    pub(crate) fn metadata(&self, path: &str, headers: &HeaderMap) -> Option<Value> {
        metadata::is_metadata_path(path).then(|| self.metadata.document(headers))
    }

    /// The caller's identity when the request carries a valid token with the required scopes;
    /// else the answer to send. `get` fetches a URL's body (discovery documents, the JWKS).
    pub(crate) async fn admit<G, F>(
        &self,
        headers: &HeaderMap,
        get: G,
    ) -> Result<Identity, Rejection>
    where
        G: Fn(String) -> F,
        F: Future<Output = Result<Vec<u8>, String>>,
    {
        let checked = match bearer_token(headers) {
            None => Err(Refused::NoToken),
            Some(token) => match self.verify(token, &get).await {
                Ok(identity) if grants(&identity, &self.required_scopes) => Ok(identity),
                Ok(_) => Err(Refused::InsufficientScope),
                Err(failure) => Err(Refused::Token(failure)),
            },
        };
        checked.map_err(|refused| {
            let log = match &refused {
                Refused::Token(Failure::Unavailable(why)) => Some(why.clone()),
                _ => None,
            };
            let metadata_url = metadata::metadata_url(&self.metadata.resource(headers));
            Rejection {
                refusal: refused.refusal(&metadata_url, &self.required_scopes),
                log,
            }
        })
    }

    async fn verify<G, F>(&self, token: &str, get: &G) -> Result<Identity, Failure>
    where
        G: Fn(String) -> F,
        F: Future<Output = Result<Vec<u8>, String>>,
    {
        let header = Header::of(token)?;
        let (mut candidates, stale) = {
            let state = self.lock();
            (
                header.candidates(&state.keys),
                self.policy.stale(state.fetched_ms, now_ms()),
            )
        };
        if candidates.is_empty() || stale {
            self.refresh(get).await?;
            candidates = header.candidates(&self.lock().keys);
        }
        let now_s = u64::try_from(now_ms() / 1000).unwrap_or(0);
        keys::verify(token, &candidates, &self.rules, now_s)
    }

    /// Fetches the key set unless a fetch was attempted within the cooldown; errors only when
    /// no usable keys are left.
    async fn refresh<G, F>(&self, get: &G) -> Result<(), Failure>
    where
        G: Fn(String) -> F,
        F: Future<Output = Result<Vec<u8>, String>>,
    {
        let known_url = {
            let mut state = self.lock();
            if self.policy.cooling_down(state.last_attempt_ms, now_ms()) {
                return Policy::usable(
                    state.fetched_ms,
                    now_ms(),
                    "the JWKS could not be fetched recently",
                );
            }
            state.last_attempt_ms = Some(now_ms());
            self.jwks_url.clone().or_else(|| state.discovered.clone())
        };
        match self.fetch(known_url, get).await {
            Ok(keys) => {
                let mut state = self.lock();
                state.keys = keys;
                state.fetched_ms = Some(now_ms());
                Ok(())
            }
            Err(why) => Policy::usable(self.lock().fetched_ms, now_ms(), &why),
        }
    }

    async fn fetch<G, F>(&self, known_url: Option<String>, get: &G) -> Result<Vec<Arc<Key>>, String>
    where
        G: Fn(String) -> F,
        F: Future<Output = Result<Vec<u8>, String>>,
    {
        let url = match known_url {
            Some(url) => url,
            None => {
                let url = self.discover(get).await?;
                self.lock().discovered = Some(url.clone());
                url
            }
        };
        let set: JwkSet = json(&url, get(url.clone()).await)?;
        Ok(set.keys())
    }

    /// The issuer's `jwks_uri`, from its RFC 8414 or OpenID metadata.
    async fn discover<G, F>(&self, get: &G) -> Result<String, String>
    where
        G: Fn(String) -> F,
        F: Future<Output = Result<Vec<u8>, String>>,
    {
        let mut problems = Vec::new();
        for url in metadata::discovery_urls(&self.rules.issuer) {
            let found = json::<Value>(&url, get(url.clone()).await)
                .and_then(|document| metadata::jwks_uri_in(&document, &self.rules.issuer, &url));
            match found {
                Ok(jwks) => return Ok(jwks),
                Err(problem) => problems.push(problem),
            }
        }
        Err(problems.join("; "))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Parses a fetched body of at most [`MAX_RESPONSE_BYTES`].
fn json<T: serde::de::DeserializeOwned>(
    url: &str,
    body: Result<Vec<u8>, String>,
) -> Result<T, String> {
    let body = body.map_err(|why| format!("{url}: {why}"))?;
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(format!(
            "{url}: response larger than {MAX_RESPONSE_BYTES} bytes"
        ));
    }
    serde_json::from_slice(&body).map_err(|error| format!("{url}: not the expected JSON: {error}"))
}
