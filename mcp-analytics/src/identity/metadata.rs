//! Metadata documents: the RFC 9728 protected-resource metadata this server publishes (so MCP
//! clients find where to sign in), and the RFC 8414 / OpenID discovery documents it reads to
//! find the issuer's JWKS.

#[cfg(feature = "oauth")]
use std::sync::Arc;

#[cfg(feature = "oauth")]
use axum::{Json, Router, extract::State, routing::get};
use http::{HeaderMap, Uri, header};
use serde_json::{Value, json};

#[cfg(feature = "oauth")]
use super::claims::Failure;
use super::{OAuthConfig, http::secure_url};

/// The RFC 9728 well-known path prefix.
pub(super) const PRM_PATH: &str = "/.well-known/oauth-protected-resource";

/// What the protected-resource metadata of `/mcp` says.
#[derive(Debug)]
pub(super) struct ResourceMetadata {
    /// This resource's configured URL (else derived from each request's `Host`).
    pub(super) resource: Option<String>,
    /// The authorization server.
    pub(super) issuer: String,
    /// Scopes advertised to clients.
    pub(super) scopes_supported: Vec<String>,
}

impl ResourceMetadata {
    /// The metadata `config` publishes.
    pub(super) fn of(config: &OAuthConfig) -> Self {
        Self {
            resource: config.resource.clone(),
            issuer: config.issuer.clone(),
            scopes_supported: config.scopes_supported.clone(),
        }
    }

    /// This resource's URL as seen by a request: the configured one, else from its `Host`.
    pub(super) fn resource(&self, headers: &HeaderMap) -> String {
        self.resource
            .clone()
            .unwrap_or_else(|| resource_from_host(headers))
    }

    /// The RFC 9728 document for the resource as seen by this request.
    pub(super) fn document(&self, headers: &HeaderMap) -> Value {
        let mut document = json!({
            "resource": self.resource(headers),
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
        });
        if !self.scopes_supported.is_empty() {
            document["scopes_supported"] = json!(self.scopes_supported);
        }
        document
    }
}

/// Whether `path` is where the protected-resource metadata of `/mcp` is published.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(super) fn is_metadata_path(path: &str) -> bool {
    path.strip_prefix(PRM_PATH)
        .is_some_and(|rest| rest.is_empty() || rest == "/mcp")
}

/// Unauthenticated routes serving the protected-resource metadata of `/mcp`.
#[cfg(feature = "oauth")]
pub(super) fn router(metadata: Arc<ResourceMetadata>) -> Router {
    Router::new()
        .route(PRM_PATH, get(document))
        .route(&format!("{PRM_PATH}/mcp"), get(document))
        .with_state(metadata)
}

#[cfg(feature = "oauth")]
async fn document(
    State(metadata): State<Arc<ResourceMetadata>>,
    headers: HeaderMap,
) -> Json<Value> {
    Json(metadata.document(&headers))
}

/// The resource URL for a request: `{scheme}://{Host}/mcp` (http for loopback hosts or
/// `X-Forwarded-Proto: http`, else https).
fn resource_from_host(headers: &HeaderMap) -> String {
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

/// The `jwks_uri` of `document`, the discovery document fetched from `url`, once it is
/// checked to be the issuer's.
pub(super) fn jwks_uri_in(document: &Value, issuer: &str, url: &str) -> Result<String, String> {
    let stated = document.get("issuer").and_then(Value::as_str).unwrap_or("");
    if stated.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(format!(
            "{url} names issuer {stated:?}, not {issuer:?} (MCP_OAUTH_ISSUER)"
        ));
    }
    match document.get("jwks_uri").and_then(Value::as_str) {
        Some(jwks) => secure_url(jwks)
            .map(|()| jwks.to_owned())
            .map_err(|why| format!("{url}: jwks_uri {why}")),
        None => Err(format!("{url} has no jwks_uri (set MCP_OAUTH_JWKS_URL)")),
    }
}

/// Finds the issuer's `jwks_uri` in its authorization-server (or OpenID) metadata, checking
/// that the document is really the issuer's.
#[cfg(feature = "oauth")]
pub(super) async fn discover_jwks_uri(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<String, Failure> {
    let mut problems = Vec::new();
    for url in discovery_urls(issuer) {
        let found = match super::http::fetch_json::<Value>(client.get(&url), &url).await {
            Ok(document) => jwks_uri_in(&document, issuer, &url),
            Err(failure) => Err(failure.to_string()),
        };
        match found {
            Ok(jwks) => return Ok(jwks),
            Err(problem) => problems.push(problem),
        }
    }
    Err(Failure::Unavailable(problems.join("; ")))
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
    fn the_metadata_is_published_at_the_well_known_path_and_below_it_for_mcp() {
        assert!(is_metadata_path("/.well-known/oauth-protected-resource"));
        assert!(is_metadata_path(
            "/.well-known/oauth-protected-resource/mcp"
        ));
        assert!(!is_metadata_path(
            "/.well-known/oauth-protected-resource/other"
        ));
        assert!(!is_metadata_path("/.well-known/oauth-protected-resourcex"));
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
