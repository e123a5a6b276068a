//! Metadata documents: the RFC 9728 protected-resource metadata this server publishes (so MCP
//! clients find where to sign in), and the RFC 8414 / OpenID discovery documents it reads to
//! find the issuer's JWKS. Also the bounded JSON fetch every outgoing request uses.

use std::sync::Arc;

use axum::{Json, Router, extract::State, routing::get};
use http::{HeaderMap, Uri, header};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{claims::Failure, oauth::OAuth};

/// The RFC 9728 well-known path prefix.
pub(super) const PRM_PATH: &str = "/.well-known/oauth-protected-resource";

/// The largest metadata, JWKS or introspection response read.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Unauthenticated routes serving the protected-resource metadata of `/mcp`.
pub(crate) fn router(oauth: Arc<OAuth>) -> Router {
    Router::new()
        .route(PRM_PATH, get(document))
        .route(&format!("{PRM_PATH}/mcp"), get(document))
        .with_state(oauth)
}

async fn document(State(oauth): State<Arc<OAuth>>, headers: HeaderMap) -> Json<Value> {
    Json(prm_document(&oauth, &headers))
}

/// The RFC 9728 document for the resource as seen by this request.
pub(super) fn prm_document(oauth: &OAuth, headers: &HeaderMap) -> Value {
    let config = oauth.config();
    let mut document = json!({
        "resource": oauth.resource(headers),
        "authorization_servers": [config.issuer],
        "bearer_methods_supported": ["header"],
    });
    if !config.scopes_supported.is_empty() {
        document["scopes_supported"] = json!(config.scopes_supported);
    }
    document
}

/// The resource URL for a request: the configured one, else `{scheme}://{Host}/mcp` (http for
/// loopback hosts or `X-Forwarded-Proto: http`, else https).
pub(super) fn resource_from_host(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty())
        .unwrap_or("localhost");
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .map(|proto| proto.trim().to_ascii_lowercase());
    let hostname = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let scheme = match forwarded.as_deref() {
        Some("http") => "http",
        Some("https") => "https",
        _ if ["localhost", "127.0.0.1", "[::1]"].contains(&hostname) => "http",
        _ => "https",
    };
    format!("{scheme}://{host}/mcp")
}

/// Where the metadata of `resource` is published (RFC 9728 §3.1: the well-known path goes
/// between the authority and the resource's path).
pub(super) fn metadata_url(resource: &str) -> String {
    match resource.parse::<Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => {
            let path = uri.path().trim_end_matches('/');
            format!(
                "{}://{}{PRM_PATH}{path}",
                uri.scheme_str().unwrap_or("https"),
                uri.authority().map_or("", |authority| authority.as_str())
            )
        }
        _ => format!("{}{PRM_PATH}", resource.trim_end_matches('/')),
    }
}

/// The discovery documents to try for `issuer`, in order: RFC 8414 (well-known path inserted
/// before the issuer's path), then OpenID Connect (appended).
pub(super) fn discovery_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.trim_end_matches('/');
    let mut urls = Vec::with_capacity(2);
    if let Ok(uri) = trimmed.parse::<Uri>()
        && let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority())
    {
        let path = uri.path().trim_end_matches('/');
        urls.push(format!(
            "{scheme}://{authority}/.well-known/oauth-authorization-server{path}"
        ));
    }
    urls.push(format!("{trimmed}/.well-known/openid-configuration"));
    urls.dedup();
    urls
}

/// Finds the issuer's `jwks_uri` in its authorization-server (or OpenID) metadata, checking
/// that the document is really the issuer's.
pub(super) async fn discover_jwks_uri(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<String, Failure> {
    let mut problems = Vec::new();
    for url in discovery_urls(issuer) {
        let document: Value = match fetch_json(client.get(&url), &url).await {
            Ok(document) => document,
            Err(failure) => {
                problems.push(failure.to_string());
                continue;
            }
        };
        let stated = document.get("issuer").and_then(Value::as_str).unwrap_or("");
        if stated.trim_end_matches('/') != issuer.trim_end_matches('/') {
            problems.push(format!(
                "{url} names issuer {stated:?}, not {issuer:?} (MCP_OAUTH_ISSUER)"
            ));
            continue;
        }
        match document.get("jwks_uri").and_then(Value::as_str) {
            Some(jwks) => {
                return secure_url(jwks)
                    .map(|()| jwks.to_owned())
                    .map_err(|why| Failure::Unavailable(format!("{url}: jwks_uri {why}")));
            }
            None => problems.push(format!("{url} has no jwks_uri (set MCP_OAUTH_JWKS_URL)")),
        }
    }
    Err(Failure::Unavailable(problems.join("; ")))
}

/// Whether keys and token answers may be fetched from `url`: `https://`, or `http://` only to
/// this machine (a network attacker could otherwise serve their own keys).
pub(super) fn secure_url(url: &str) -> Result<(), String> {
    let uri = url
        .parse::<Uri>()
        .map_err(|_| format!("{url:?} is not a URL"))?;
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
        Some("http") => Err(format!(
            "{url:?} is plain http to another machine: use https (http only to localhost)"
        )),
        _ => Err(format!("{url:?} is not an https:// URL")),
    }
}

/// Sends `request` and parses a JSON answer of at most [`MAX_RESPONSE_BYTES`].
pub(super) async fn fetch_json<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<T, Failure> {
    let unavailable = |why: String| Failure::Unavailable(format!("{url}: {why}"));
    let mut response = request
        .header(header::ACCEPT, "application/json")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_inserts_the_well_known_path() {
        assert_eq!(
            metadata_url("https://mcp.example.com/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://mcp.example.com"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn discovery_urls_follow_rfc_8414_then_oidc() {
        assert_eq!(
            discovery_urls("https://idp.example.com/"),
            [
                "https://idp.example.com/.well-known/oauth-authorization-server",
                "https://idp.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            discovery_urls("https://idp.example.com/tenant1"),
            [
                "https://idp.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://idp.example.com/tenant1/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn resource_from_host_picks_a_scheme() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(resource_from_host(&headers), "http://127.0.0.1:8080/mcp");
        headers.insert(header::HOST, "mcp.example.com".parse().unwrap());
        assert_eq!(resource_from_host(&headers), "https://mcp.example.com/mcp");
        headers.insert("x-forwarded-proto", "http".parse().unwrap());
        assert_eq!(resource_from_host(&headers), "http://mcp.example.com/mcp");
    }
}
