//! A JWKS's usable keys, checking a JWT against them (signature, then the registered claims
//! at a given time), and when to fetch the key set again ([`Policy`]). No I/O and no clock of
//! its own: the native resource server (reqwest) and the Worker (`fetch`) share it.

use std::{sync::Arc, time::Duration};

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse},
};
use serde::Deserialize;

use super::claims::{Claims, Failure, Registered, Rules};
use crate::Identity;

/// Keys beyond this many in one JWKS are ignored.
const MAX_KEYS: usize = 64;
/// How long keys may be used after the last successful fetch while the issuer is unreachable.
const MAX_STALE: Duration = Duration::from_secs(24 * 3600);

/// One usable public key and the algorithms it may verify.
pub(super) struct Key {
    kid: Option<String>,
    decoding: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// A token's header as far as choosing a key goes.
pub(super) struct Header {
    pub kid: Option<String>,
    pub alg: Algorithm,
}

impl Header {
    /// Reads the header of `token`; symmetric algorithms are refused outright.
    pub(super) fn of(token: &str) -> Result<Self, Failure> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Failure::Invalid("the access token is not a valid JWT"))?;
        if header.alg.family() == AlgorithmFamily::Hmac {
            return Err(Failure::Invalid(
                "symmetric signature algorithms are not accepted",
            ));
        }
        Ok(Self {
            kid: header.kid,
            alg: header.alg,
        })
    }

    /// The keys among `keys` that may have signed this token.
    pub(super) fn candidates(&self, keys: &[Arc<Key>]) -> Vec<Arc<Key>> {
        keys.iter()
            .filter(|key| key.algorithms.contains(&self.alg))
            .filter(|key| self.kid.is_none() || key.kid == self.kid)
            .cloned()
            .collect()
    }
}

/// The claims read from a verified token.
#[derive(Deserialize)]
struct Token {
    #[serde(flatten)]
    registered: Registered,
    #[serde(flatten)]
    claims: Claims,
}

/// Checks `token` against `candidates` (its signature) and `rules` at `now_s` (seconds since
/// the Unix epoch), and returns its identity.
pub(super) fn verify(
    token: &str,
    candidates: &[Arc<Key>],
    rules: &Rules,
    now_s: u64,
) -> Result<Identity, Failure> {
    if candidates.is_empty() {
        return Err(Failure::Invalid("the token's signing key is unknown"));
    }
    for key in candidates {
        match jsonwebtoken::decode::<Token>(token, &key.decoding, &signature_only(key)) {
            Ok(data) => {
                data.claims
                    .registered
                    .check(rules, now_s)
                    .map_err(Failure::Invalid)?;
                // `sub` is required of a JWT (introspection answers may use `username`).
                if data.claims.claims.sub.is_none() {
                    return Err(Failure::Invalid("the access token lacks a required claim"));
                }
                return data
                    .claims
                    .claims
                    .into_identity()
                    .ok_or(Failure::Invalid("the token has no subject"));
            }
            Err(error) if matches!(error.kind(), ErrorKind::InvalidSignature) => continue,
            Err(error) => return Err(Failure::Invalid(describe(error.kind()))),
        }
    }
    Err(Failure::Invalid("invalid token signature"))
}

/// jsonwebtoken checks the signature and algorithm only; [`Registered::check`] does the
/// claims, with the caller's clock.
fn signature_only(key: &Key) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms.clone_from(&key.algorithms);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

/// When to fetch the key set: keys older than `max_age` are fetched again (and when a token
/// names an unknown key), at most once per `cooldown`; while fetching fails, keys fetched
/// within [`MAX_STALE`] stay in use. Times are milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug)]
pub(super) struct Policy {
    /// Minimum time between two fetches.
    pub cooldown: Duration,
    /// Keys older than this are fetched again.
    pub max_age: Duration,
}

impl Policy {
    /// Whether keys fetched at `fetched_ms` (never: `None`) should be fetched again.
    pub(super) fn stale(&self, fetched_ms: Option<i64>, now_ms: i64) -> bool {
        fetched_ms.is_none_or(|at| elapsed(at, now_ms) > self.max_age)
    }

    /// Whether a fetch attempted at `attempt_ms` is too recent for another.
    pub(super) fn cooling_down(&self, attempt_ms: Option<i64>, now_ms: i64) -> bool {
        attempt_ms.is_some_and(|at| elapsed(at, now_ms) < self.cooldown)
    }

    /// Keys fetched at `fetched_ms` may still be used while the issuer cannot be reached, for
    /// at most [`MAX_STALE`]: a key it has withdrawn is not trusted forever.
    pub(super) fn usable(fetched_ms: Option<i64>, now_ms: i64, why: &str) -> Result<(), Failure> {
        match fetched_ms {
            Some(at) if elapsed(at, now_ms) <= MAX_STALE => Ok(()),
            _ => Err(Failure::Unavailable(why.to_owned())),
        }
    }
}

fn elapsed(since_ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(now_ms.saturating_sub(since_ms)).unwrap_or(0))
}

/// A JWKS document, keys parsed one by one (one odd key does not hide the others).
#[derive(Deserialize)]
pub(super) struct JwkSet {
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

impl JwkSet {
    /// Its usable keys (at most [`MAX_KEYS`] looked at).
    pub(super) fn keys(&self) -> Vec<Arc<Key>> {
        self.keys
            .iter()
            .take(MAX_KEYS)
            .filter_map(|value| serde_json::from_value::<Jwk>(value.clone()).ok())
            .filter_map(|jwk| usable_key(&jwk))
            .map(Arc::new)
            .collect()
    }
}

/// A short public description of why a token was refused before its claims were read.
fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
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
