//! Opaque access tokens checked by RFC 7662 token introspection, with answers cached briefly
//! (keyed by the token's SHA-256, bounded in size) so a busy client costs one round trip per
//! token and cache period. Refusals are cached apart from acceptances, so a flood of made-up
//! tokens cannot push valid ones out, and at most [`MAX_IN_FLIGHT`] introspections run at once.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    claims::{Audience, Claims, Failure},
    http,
};
use crate::Identity;

/// Cached answers of one kind beyond this many are dropped (expired first, then all of that
/// kind).
const MAX_CACHED: usize = 10_000;
/// Introspection requests running at once; more wait their turn (within the timeout).
const MAX_IN_FLIGHT: usize = 16;

/// Where and how tokens are introspected.
pub(super) struct Introspector {
    http: reqwest::Client,
    url: String,
    credentials: Option<(String, String)>,
    issuer: String,
    audience: String,
    ttl: Duration,
    leeway: Duration,
    timeout: Duration,
    accepted: Mutex<HashMap<[u8; 32], Cached<Identity>>>,
    refused: Mutex<HashMap<[u8; 32], Cached<&'static str>>>,
    in_flight: tokio::sync::Semaphore,
}

struct Cached<T> {
    until: Instant,
    answer: T,
}

/// An introspection response: `active` plus the usual claims.
#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    active: bool,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(flatten)]
    claims: Claims,
}

/// What [`Introspector::new`] needs.
pub(super) struct Settings {
    pub url: String,
    pub credentials: Option<(String, String)>,
    pub issuer: String,
    pub audience: String,
    pub ttl: Duration,
    pub leeway: Duration,
    pub timeout: Duration,
}

impl Introspector {
    pub(super) fn new(http: reqwest::Client, settings: Settings) -> Self {
        Self {
            http,
            url: settings.url,
            credentials: settings.credentials,
            issuer: settings.issuer,
            audience: settings.audience,
            ttl: settings.ttl,
            leeway: settings.leeway,
            timeout: settings.timeout,
            accepted: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    /// The identity behind `token`, from the cache or the introspection endpoint.
    pub(super) async fn verify(&self, token: &str) -> Result<Identity, Failure> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some(cached) = lock(&self.accepted).get(&key)
            && cached.until > now
        {
            return Ok(cached.answer.clone());
        }
        if let Some(cached) = lock(&self.refused).get(&key)
            && cached.until > now
        {
            return Err(Failure::Invalid(cached.answer));
        }
        let _turn = tokio::time::timeout(self.timeout, self.in_flight.acquire())
            .await
            .map_err(|_| Failure::Unavailable("too many token introspections waiting".into()))?
            .map_err(|_| Failure::Unavailable("introspection is shut down".into()))?;
        let mut request = self
            .http
            .post(&self.url)
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        if let Some((id, secret)) = &self.credentials {
            request = request.basic_auth(form_encode(id), Some(form_encode(secret)));
        }
        let response: Response = http::fetch_json(request, &self.url).await?;
        let now = unix_now();
        let until = match response.exp {
            Some(exp) => self.ttl.min(Duration::from_secs(exp.saturating_sub(now))),
            None => self.ttl,
        };
        let until = Instant::now() + until;
        match self.judge(response, now) {
            Ok(identity) => {
                store(&self.accepted, key, until, identity.clone());
                Ok(identity)
            }
            Err(why) => {
                store(&self.refused, key, until, why);
                Err(Failure::Invalid(why))
            }
        }
    }

    fn judge(&self, response: Response, now: u64) -> Result<Identity, &'static str> {
        let leeway = self.leeway.as_secs();
        if !response.active {
            return Err("the access token is not active");
        }
        if response
            .exp
            .is_some_and(|exp| exp.saturating_add(leeway) < now)
        {
            return Err("the access token has expired");
        }
        if response
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err("the access token is not valid yet");
        }
        if response
            .iss
            .as_deref()
            .is_some_and(|iss| iss.trim_end_matches('/') != self.issuer.trim_end_matches('/'))
        {
            return Err("the access token is from another issuer");
        }
        // A token must name this resource: one issued to another service (or naming none) is
        // not accepted here, even though the authorization server calls it active.
        if !response
            .aud
            .as_ref()
            .is_some_and(|aud| aud.contains(&self.audience))
        {
            return Err("the access token is not for this resource");
        }
        response
            .claims
            .into_identity()
            .ok_or("the token has no subject")
    }
}

fn lock<T>(
    cache: &Mutex<HashMap<[u8; 32], Cached<T>>>,
) -> MutexGuard<'_, HashMap<[u8; 32], Cached<T>>> {
    cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn store<T>(cache: &Mutex<HashMap<[u8; 32], Cached<T>>>, key: [u8; 32], until: Instant, answer: T) {
    let mut cache = lock(cache);
    if cache.len() >= MAX_CACHED {
        let now = Instant::now();
        cache.retain(|_, cached| cached.until > now);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
    }
    cache.insert(key, Cached { until, answer });
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// `application/x-www-form-urlencoded` encoding of a client id or secret, as RFC 6749 §2.3.1
/// requires before HTTP Basic authentication.
fn form_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                encoded.push(char::from(byte));
            }
            b' ' => encoded.push('+'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::form_encode;

    #[test]
    fn client_credentials_are_form_encoded() {
        assert_eq!(form_encode("my app:1/x"), "my+app%3A1%2Fx");
        assert_eq!(form_encode("plain-id_1.2"), "plain-id_1.2");
    }
}
