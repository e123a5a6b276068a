//! Access to the dashboard: an optional key, given as `Authorization: Bearer <key>` or through
//! the login form, which sets an HttpOnly cookie derived from the key. Keys are compared in
//! constant time (as SHA-256 digests, so lengths do not leak either). No server framework: the
//! axum router and the Worker both check requests with it.

use http::{HeaderMap, header};
use sha2::{Digest, Sha256};

const COOKIE: &str = "mcp_analytics_session";

/// What a sign-in form post (`key=…`) gets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SignIn {
    /// The key is right: set this cookie (a `Set-Cookie` value) and show the page.
    Accepted { set_cookie: String },
    /// No key protects the dashboard: show the page.
    Open,
    /// The key is wrong: the form again, with [`WRONG_KEY`].
    Refused,
}

pub(crate) struct Auth {
    /// SHA-256 of the key, when one is required.
    key: Option<[u8; 32]>,
}

impl Auth {
    pub(crate) fn new(key: Option<&str>) -> Self {
        Self {
            key: key.map(digest),
        }
    }

    /// Whether the request carries the key as a bearer token (always true without a key).
    pub(crate) fn allows_bearer(&self, headers: &HeaderMap) -> bool {
        let Some(key) = &self.key else { return true };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(&digest(given), key))
    }

    /// Whether the request carries the key, as a bearer token or the sign-in cookie.
    pub(crate) fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(key) = &self.key else { return true };
        self.allows_bearer(headers)
            || cookies(headers).any(|(name, value)| {
                name == COOKIE && constant_time_eq(&digest(value), &cookie_digest(key))
            })
    }

    /// Checks a sign-in form's body (`application/x-www-form-urlencoded`, field `key`).
    pub(crate) fn sign_in(&self, body: &[u8]) -> SignIn {
        let Some(key) = &self.key else {
            return SignIn::Open;
        };
        let given = form_value(body, "key").unwrap_or_default();
        if constant_time_eq(&digest(&given), key) {
            SignIn::Accepted {
                set_cookie: format!(
                    "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                    hex(&cookie_token(key))
                ),
            }
        } else {
            SignIn::Refused
        }
    }
}

/// What an API request without the key is told (with `401`).
pub(crate) const SIGN_IN_HINT: &str =
    "sign in: send `Authorization: Bearer <MCP_ANALYTICS_API_KEY>`";

/// The sign-in form's message after a wrong key.
pub(crate) const WRONG_KEY: &str = "That key is not right.";

/// The sign-in form's message before any attempt.
pub(crate) const NO_MESSAGE: &str = "";

/// The sign-in form (it posts `key` to the page's own address), with `message` under it.
pub(crate) fn sign_in_form(message: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>MCP analytics: sign in</title>
<style>body{{font:15px system-ui,sans-serif;display:grid;place-items:center;height:90vh}}form{{display:grid;gap:10px;width:320px}}p{{color:#c0392b}}</style></head>
<body><form method="post"><h1>MCP analytics</h1><label>API key (<code>MCP_ANALYTICS_API_KEY</code>)<br><input type="password" name="key" autofocus style="width:100%"></label>
<button>Sign in</button><p>{message}</p></form></body></html>"#
    )
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The cookie is a different digest from the key's, so it cannot be replayed as a bearer key.
fn cookie_token(key: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"mcp-analytics dashboard cookie\0");
    hasher.update(key);
    hasher.finalize().into()
}

fn cookie_digest(key: &[u8; 32]) -> [u8; 32] {
    digest(&hex(&cookie_token(key)))
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// One field of an `application/x-www-form-urlencoded` body.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode(value))
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_cookies() {
        let auth = Auth::new(Some("s3cret"));
        let mut headers = HeaderMap::new();
        assert!(!auth.allows(&headers));
        headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(auth.allows(&headers));
        headers.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(!auth.allows(&headers));
        let mut with_cookie = HeaderMap::new();
        let SignIn::Accepted { set_cookie } = auth.sign_in(b"key=s3cret") else {
            panic!("the right key is refused");
        };
        let cookie = set_cookie.split(';').next().unwrap();
        with_cookie.insert(
            header::COOKIE,
            format!("other=1; {cookie}").parse().unwrap(),
        );
        assert!(auth.allows(&with_cookie));
        assert!(Auth::new(None).allows(&HeaderMap::new()));
        assert_eq!(auth.sign_in(b"key=wrong"), SignIn::Refused);
        assert_eq!(Auth::new(None).sign_in(b""), SignIn::Open);
    }

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(
            form_value(b"key=a%2Bb+c%21&x=1", "key").as_deref(),
            Some("a+b c!")
        );
        assert_eq!(form_value(b"x=1", "key"), None);
    }
}
