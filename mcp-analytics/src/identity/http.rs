//! The bounded fetch helpers every outgoing OAuth request uses (discovery, JWKS, introspection):
//! which URLs may be fetched ([`secure_url`]) and, natively, reading a JSON answer of bounded
//! size (`fetch_json`).

use http::Uri;

/// The largest metadata, JWKS or introspection response read.
pub(super) const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Why a URL may not be fetched: keys and token answers must not cross the network unprotected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum InsecureUrl {
    /// Not a URL at all.
    #[error("{0:?} is not a URL")]
    NotAUrl(String),
    /// `http://` to another machine.
    #[error("{0:?} is plain http to another machine: use https (http only to localhost)")]
    PlainHttp(String),
    /// Another scheme, or `https://` without a host.
    #[error("{0:?} is not an https:// URL")]
    NotHttps(String),
}

/// Whether keys and token answers may be fetched from `url`: `https://`, or `http://` only to
/// this machine (a network attacker could otherwise serve their own keys).
pub(super) fn secure_url(url: &str) -> Result<(), InsecureUrl> {
    let uri = url
        .parse::<Uri>()
        .map_err(|_| InsecureUrl::NotAUrl(url.to_owned()))?;
    let loopback = uri.host().is_some_and(|host| {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match uri.scheme_str() {
        Some("https") if uri.host().is_some() => Ok(()),
        Some("http") if loopback => Ok(()),
        Some("http") => Err(InsecureUrl::PlainHttp(url.to_owned())),
        _ => Err(InsecureUrl::NotHttps(url.to_owned())),
    }
}

/// Sends `request` and parses a JSON answer of at most [`MAX_RESPONSE_BYTES`].
#[cfg(feature = "oauth")]
pub(super) async fn fetch_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<T, super::claims::Failure> {
    use super::claims::Failure;
    let unavailable = |why: String| Failure::Unavailable(format!("{url}: {why}"));
    let mut response = request
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("HTTP {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| unavailable(error.to_string()))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(unavailable(format!(
                "response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|error| unavailable(format!("not the expected JSON: {error}")))
}
