//! JWT access tokens checked against the issuer's JWKS, natively: the key set is fetched over
//! HTTP (its URL configured or discovered from the issuer's metadata) and cached by
//! [`keys::Policy`] — fetched again when it is old or a token names an unknown `kid`, at most
//! once per cooldown, so tokens with made-up key ids cannot make us hammer the identity
//! provider.

use std::sync::{Arc, RwLock};

use super::{
    claims::{Failure, Rules},
    http,
    keys::{self, Header, JwkSet, Key, Policy},
    metadata,
};
use crate::{Identity, clock::now_ms};

/// The issuer's signing keys and how tokens signed with them are validated.
pub(super) struct JwksCache {
    http: reqwest::Client,
    configured_url: Option<String>,
    rules: Rules,
    policy: Policy,
    keys: RwLock<Keys>,
    /// Held while fetching, so concurrent misses share one fetch.
    refresh: tokio::sync::Mutex<Refresh>,
}

#[derive(Default)]
struct Keys {
    keys: Vec<Arc<Key>>,
    /// When they were fetched (ms since the Unix epoch).
    fetched_ms: Option<i64>,
}

#[derive(Default)]
struct Refresh {
    /// The JWKS URL once known (configured or discovered).
    url: Option<String>,
    last_attempt_ms: Option<i64>,
}

impl JwksCache {
    pub(super) fn new(
        http: reqwest::Client,
        rules: Rules,
        configured_url: Option<String>,
        policy: Policy,
    ) -> Self {
        Self {
            http,
            configured_url,
            rules,
            policy,
            keys: RwLock::new(Keys::default()),
            refresh: tokio::sync::Mutex::new(Refresh::default()),
        }
    }

    /// Validates `token` (signature, `iss`, `aud`, `exp`, `nbf`) and returns its identity.
    pub(super) async fn verify(&self, token: &str) -> Result<Identity, Failure> {
        let header = Header::of(token)?;
        let mut candidates = header.candidates(&self.read_keys().keys);
        let stale = self.policy.stale(self.read_keys().fetched_ms, now_ms());
        if candidates.is_empty() {
            self.refresh().await?;
            candidates = header.candidates(&self.read_keys().keys);
        } else if stale {
            // The key is known: one request refreshes the set while the others go on with it.
            if let Ok(mut refresh) = self.refresh.try_lock() {
                self.refresh_locked(&mut refresh).await?;
                candidates = header.candidates(&self.read_keys().keys);
            } else {
                self.usable_keys("the JWKS is being fetched")?;
            }
        }
        let now_s = u64::try_from(now_ms() / 1000).unwrap_or(0);
        keys::verify(token, &candidates, &self.rules, now_s)
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fetches the JWKS unless another fetch happened within the cooldown. Errors only when
    /// there are no keys at all to work with.
    async fn refresh(&self) -> Result<(), Failure> {
        let mut refresh = self.refresh.lock().await;
        self.refresh_locked(&mut refresh).await
    }

    async fn refresh_locked(&self, refresh: &mut Refresh) -> Result<(), Failure> {
        if self.policy.cooling_down(refresh.last_attempt_ms, now_ms()) {
            return self.usable_keys("the JWKS could not be fetched recently");
        }
        refresh.last_attempt_ms = Some(now_ms());
        match self.fetch(refresh).await {
            Ok(keys) => {
                let mut current = self
                    .keys
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                *current = Keys {
                    keys,
                    fetched_ms: Some(now_ms()),
                };
                Ok(())
            }
            Err(failure) => {
                tracing::warn!(issuer = %self.rules.issuer, "cannot refresh the OAuth JWKS: {failure}");
                self.usable_keys(&failure.to_string())
            }
        }
    }

    fn usable_keys(&self, why: &str) -> Result<(), Failure> {
        Policy::usable(self.read_keys().fetched_ms, now_ms(), why)
    }

    async fn fetch(&self, refresh: &mut Refresh) -> Result<Vec<Arc<Key>>, Failure> {
        let url = match (&refresh.url, &self.configured_url) {
            (Some(url), _) | (None, Some(url)) => url.clone(),
            (None, None) => metadata::discover_jwks_uri(&self.http, &self.rules.issuer).await?,
        };
        refresh.url = Some(url.clone());
        let set: JwkSet = http::fetch_json(self.http.get(&url), &url).await?;
        Ok(set.keys())
    }
}
