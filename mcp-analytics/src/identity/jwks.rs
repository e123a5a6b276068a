//! JWT access tokens checked against the issuer's JWKS: the key set is fetched over HTTP (its
//! URL configured or discovered from the issuer's metadata), cached, and fetched again when it
//! is old or a token names an unknown `kid` — at most once per cooldown, so tokens with made-up
//! key ids cannot make us hammer the identity provider.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse},
};
use serde::Deserialize;

use super::{
    claims::{Claims, Failure},
    http, metadata,
};
use crate::Identity;

/// Keys beyond this many in one JWKS are ignored.
const MAX_KEYS: usize = 64;
/// How long keys may be used after the last successful fetch while the issuer is unreachable.
const MAX_STALE: Duration = Duration::from_secs(24 * 3600);

/// The issuer's signing keys and how tokens signed with them are validated.
pub(super) struct JwksCache {
    http: reqwest::Client,
    issuer: String,
    configured_url: Option<String>,
    validation: Validation,
    cooldown: Duration,
    max_age: Duration,
    keys: RwLock<Keys>,
    /// Held while fetching, so concurrent misses share one fetch.
    refresh: tokio::sync::Mutex<Refresh>,
}

#[derive(Default)]
struct Keys {
    keys: Vec<Arc<Key>>,
    fetched: Option<Instant>,
}

#[derive(Default)]
struct Refresh {
    /// The JWKS URL once known (configured or discovered).
    url: Option<String>,
    last_attempt: Option<Instant>,
}

/// One usable public key and the algorithms it may verify.
struct Key {
    kid: Option<String>,
    decoding: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// JWKS timing settings.
pub(super) struct Timing {
    /// Minimum time between two fetches.
    pub cooldown: Duration,
    /// Keys older than this are fetched again.
    pub max_age: Duration,
    /// Clock skew allowed on `exp` / `nbf`.
    pub leeway: Duration,
}

impl JwksCache {
    pub(super) fn new(
        http: reqwest::Client,
        issuer: &str,
        audience: &str,
        configured_url: Option<String>,
        timing: Timing,
    ) -> Self {
        // The algorithm list is replaced per key; HS256 here is never used.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_nbf = true;
        validation.leeway = timing.leeway.as_secs();
        Self {
            http,
            issuer: issuer.to_owned(),
            configured_url,
            validation,
            cooldown: timing.cooldown,
            max_age: timing.max_age,
            keys: RwLock::new(Keys::default()),
            refresh: tokio::sync::Mutex::new(Refresh::default()),
        }
    }

    /// Validates `token` (signature, `iss`, `aud`, `exp`, `nbf`) and returns its identity.
    pub(super) async fn verify(&self, token: &str) -> Result<Identity, Failure> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Failure::Invalid("the access token is not a valid JWT"))?;
        if header.alg.family() == AlgorithmFamily::Hmac {
            return Err(Failure::Invalid(
                "symmetric signature algorithms are not accepted",
            ));
        }
        let kid = header.kid.as_deref();
        let mut candidates = self.candidates(kid, header.alg);
        let stale = self
            .read_keys()
            .fetched
            .is_none_or(|at| at.elapsed() > self.max_age);
        if candidates.is_empty() {
            self.refresh().await?;
            candidates = self.candidates(kid, header.alg);
        } else if stale {
            // The key is known: one request refreshes the set while the others go on with it.
            if let Ok(mut refresh) = self.refresh.try_lock() {
                self.refresh_locked(&mut refresh).await?;
                candidates = self.candidates(kid, header.alg);
            } else {
                self.usable_keys("the JWKS is being fetched")?;
            }
        }
        if candidates.is_empty() {
            return Err(Failure::Invalid("the token's signing key is unknown"));
        }
        let mut outcome = Err(Failure::Invalid("invalid token signature"));
        for key in candidates {
            let mut validation = self.validation.clone();
            validation.algorithms.clone_from(&key.algorithms);
            match jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation) {
                Ok(data) => {
                    return data
                        .claims
                        .into_identity()
                        .ok_or(Failure::Invalid("the token has no subject"));
                }
                Err(error) if matches!(error.kind(), ErrorKind::InvalidSignature) => continue,
                Err(error) => {
                    outcome = Err(Failure::Invalid(describe(error.kind())));
                    break;
                }
            }
        }
        outcome
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keys that may have signed a token with this `kid` and `alg`.
    fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<Key>> {
        self.read_keys()
            .keys
            .iter()
            .filter(|key| key.algorithms.contains(&alg))
            .filter(|key| kid.is_none() || key.kid.as_deref() == kid)
            .cloned()
            .collect()
    }

    /// Fetches the JWKS unless another fetch happened within the cooldown. Errors only when
    /// there are no keys at all to work with.
    async fn refresh(&self) -> Result<(), Failure> {
        let mut refresh = self.refresh.lock().await;
        self.refresh_locked(&mut refresh).await
    }

    async fn refresh_locked(&self, refresh: &mut Refresh) -> Result<(), Failure> {
        if refresh
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.cooldown)
        {
            return self.usable_keys("the JWKS could not be fetched recently");
        }
        refresh.last_attempt = Some(Instant::now());
        let fetched = self.fetch(refresh).await;
        match fetched {
            Ok(keys) => {
                let mut current = self
                    .keys
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                *current = Keys {
                    keys,
                    fetched: Some(Instant::now()),
                };
                Ok(())
            }
            Err(failure) => {
                tracing::warn!(issuer = %self.issuer, "cannot refresh the OAuth JWKS: {failure}");
                self.usable_keys(&failure.to_string())
            }
        }
    }

    /// Keys fetched earlier stay usable while the issuer cannot be reached, for at most
    /// [`MAX_STALE`]: a key it has withdrawn is not trusted forever.
    fn usable_keys(&self, why: &str) -> Result<(), Failure> {
        match self.read_keys().fetched {
            Some(at) if at.elapsed() <= MAX_STALE => Ok(()),
            _ => Err(Failure::Unavailable(why.to_owned())),
        }
    }

    async fn fetch(&self, refresh: &mut Refresh) -> Result<Vec<Arc<Key>>, Failure> {
        let url = match (&refresh.url, &self.configured_url) {
            (Some(url), _) | (None, Some(url)) => url.clone(),
            (None, None) => metadata::discover_jwks_uri(&self.http, &self.issuer).await?,
        };
        refresh.url = Some(url.clone());
        let set: JwkSet = http::fetch_json(self.http.get(&url), &url).await?;
        Ok(set
            .keys
            .iter()
            .take(MAX_KEYS)
            .filter_map(|value| serde_json::from_value::<Jwk>(value.clone()).ok())
            .filter_map(|jwk| usable_key(&jwk))
            .map(Arc::new)
            .collect())
    }
}

/// A JWKS document, keys parsed one by one (one odd key does not hide the others).
#[derive(Deserialize)]
struct JwkSet {
    #[serde(default)]
    keys: Vec<serde_json::Value>,
}

/// The key and the algorithms it may verify; `None` for encryption keys, symmetric keys and
/// keys whose declared `alg` does not fit their type.
fn usable_key(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa.algorithms(),
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        None => family.to_vec(),
        Some(declared) => {
            let declared = Algorithm::try_from(declared).ok()?;
            family.contains(&declared).then(|| vec![declared])?
        }
    };
    Some(Key {
        kid: jwk.common.key_id.clone(),
        decoding: DecodingKey::from_jwk(jwk).ok()?,
        algorithms,
    })
}

/// A short public description of why a well-signed token was refused.
fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the access token has expired",
        ErrorKind::ImmatureSignature => "the access token is not valid yet",
        ErrorKind::InvalidIssuer => "the access token is from another issuer",
        ErrorKind::InvalidAudience => "the access token is not for this resource",
        ErrorKind::MissingRequiredClaim(_) => "the access token lacks a required claim",
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not match its key",
        _ => "the access token is invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(json: serde_json::Value) -> Jwk {
        serde_json::from_value(json).unwrap()
    }

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[test]
    fn keys_are_pinned_to_algorithms_of_their_type() {
        let rsa = usable_key(&jwk(
            serde_json::json!({"kty": "RSA", "kid": "r", "n": N, "e": "AQAB"}),
        ))
        .unwrap();
        assert!(rsa.algorithms.contains(&Algorithm::RS256));
        assert!(
            rsa.algorithms
                .iter()
                .all(|alg| alg.family() == AlgorithmFamily::Rsa)
        );
        let pinned = usable_key(&jwk(
            serde_json::json!({"kty": "RSA", "alg": "PS256", "n": N, "e": "AQAB"}),
        ))
        .unwrap();
        assert_eq!(pinned.algorithms, [Algorithm::PS256]);
        // A declared algorithm of another type disqualifies the key.
        assert!(
            usable_key(&jwk(
                serde_json::json!({"kty": "RSA", "alg": "HS256", "n": N, "e": "AQAB"})
            ))
            .is_none()
        );
        assert!(
            usable_key(&jwk(
                serde_json::json!({"kty": "RSA", "alg": "ES256", "n": N, "e": "AQAB"})
            ))
            .is_none()
        );
        // Symmetric and encryption keys are never used.
        assert!(usable_key(&jwk(serde_json::json!({"kty": "oct", "k": "c2VjcmV0"}))).is_none());
        assert!(
            usable_key(&jwk(
                serde_json::json!({"kty": "RSA", "use": "enc", "n": N, "e": "AQAB"})
            ))
            .is_none()
        );
    }
}
