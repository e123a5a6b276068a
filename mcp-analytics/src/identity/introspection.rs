//! Opaque access tokens checked by RFC 7662 token introspection, with answers cached briefly
//! (keyed by the token's SHA-256, bounded in size) so a busy client costs one round trip per
//! token and cache period.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    claims::{Claims, Failure},
    metadata,
};
use crate::Identity;

/// Cached answers beyond this many are dropped (expired first, then all).
const MAX_CACHED: usize = 10_000;

/// Where and how tokens are introspected.
pub(super) struct Introspector {
    http: reqwest::Client,
    url: String,
    credentials: Option<(String, String)>,
    issuer: String,
    audience: Option<String>,
    ttl: Duration,
    leeway: Duration,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

struct Cached {
    until: Instant,
    answer: Result<Identity, &'static str>,
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

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|one| one == audience),
        }
    }
}

/// What [`Introspector::new`] needs.
pub(super) struct Settings {
    pub url: String,
    pub credentials: Option<(String, String)>,
    pub issuer: String,
    pub audience: Option<String>,
    pub ttl: Duration,
    pub leeway: Duration,
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
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The identity behind `token`, from the cache or the introspection endpoint.
    pub(super) async fn verify(&self, token: &str) -> Result<Identity, Failure> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(cached) = self.lock().get(&key)
            && cached.until > Instant::now()
        {
            return cached.answer.clone().map_err(Failure::Invalid);
        }
        let mut request = self
            .http
            .post(&self.url)
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        if let Some((id, secret)) = &self.credentials {
            request = request.basic_auth(form_encode(id), Some(form_encode(secret)));
        }
        let response: Response = metadata::fetch_json(request, &self.url).await?;
        let now = unix_now();
        let until = match response.exp {
            Some(exp) => self.ttl.min(Duration::from_secs(exp.saturating_sub(now))),
            None => self.ttl,
        };
        let answer = self.judge(response, now);
        self.store(key, Instant::now() + until, answer.clone());
        answer.map_err(Failure::Invalid)
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
        if let (Some(expected), Some(aud)) = (&self.audience, &response.aud)
            && !aud.contains(expected)
        {
            return Err("the access token is not for this resource");
        }
        response
            .claims
            .into_identity()
            .ok_or("the token has no subject")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn store(&self, key: [u8; 32], until: Instant, answer: Result<Identity, &'static str>) {
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            let now = Instant::now();
            cache.retain(|_, cached| cached.until > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, Cached { until, answer });
    }
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
