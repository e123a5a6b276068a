//! Reading the bearer token of a request, and what a request without a valid one is answered
//! ([`Refusal`]: status, `WWW-Authenticate` challenge, body): the same natively and on Workers.

use http::{HeaderMap, header};

use super::claims::Failure;

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
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

/// Why a request to `/mcp` is not let through.
#[derive(Debug)]
pub(crate) enum Refused {
    /// No `Authorization: Bearer` token.
    NoToken,
    /// The token was refused ([`Failure::Invalid`]) or could not be checked
    /// ([`Failure::Unavailable`]).
    Token(Failure),
    /// A required scope was not granted.
    InsufficientScope,
}

/// The answer to a refused request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// 401, 403 or 503.
    pub status: u16,
    /// The `WWW-Authenticate` value (401 and 403).
    pub challenge: Option<String>,
    /// The body (text; empty for 401 and 403).
    pub body: &'static str,
    /// The `Retry-After` value (503).
    pub retry_after: Option<&'static str>,
}

impl Refused {
    /// The answer, pointing clients at the metadata published at `metadata_url`.
    pub(crate) fn refusal(&self, metadata_url: &str, required_scopes: &[String]) -> Refusal {
        let challenged = |status, error| Refusal {
            status,
            challenge: Some(challenge(metadata_url, error, required_scopes)),
            body: "",
            retry_after: None,
        };
        match self {
            Refused::NoToken => challenged(401, None),
            Refused::Token(Failure::Invalid(why)) => challenged(401, Some(("invalid_token", why))),
            Refused::InsufficientScope => challenged(
                403,
                Some((
                    "insufficient_scope",
                    "the access token lacks a required scope",
                )),
            ),
            Refused::Token(Failure::Unavailable(_)) => Refusal {
                status: 503,
                challenge: None,
                body: "the authorization server cannot be reached; try again shortly",
                retry_after: Some("5"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn refusals_carry_the_challenge_or_a_retry() {
        let url = "http://127.0.0.1:8791/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            Refused::NoToken.refusal(url, &[]),
            Refusal {
                status: 401,
                challenge: Some(format!("Bearer resource_metadata=\"{url}\"")),
                body: "",
                retry_after: None
            }
        );
        let expired = Refused::Token(Failure::Invalid("the access token has expired"));
        assert_eq!(
            expired.refusal(url, &[]).challenge.unwrap(),
            format!(
                "Bearer error=\"invalid_token\", error_description=\"the access token has expired\", resource_metadata=\"{url}\""
            )
        );
        assert_eq!(
            Refused::InsufficientScope
                .refusal(url, &["a".into()])
                .status,
            403
        );
        let down =
            Refused::Token(Failure::Unavailable("connection refused".into())).refusal(url, &[]);
        assert_eq!(
            (down.status, down.retry_after, down.challenge),
            (503, Some("5"), None)
        );
    }
}
