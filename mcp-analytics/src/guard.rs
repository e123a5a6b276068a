//! Request guards for the HTTP routes a browser can reach: the `Origin` check the MCP
//! streamable HTTP transport requires on `/mcp`, `Host` checks against DNS rebinding for routes
//! no key protects (the dashboard, the collector, the test checkout pages), and same-origin
//! checks for state-changing forms (sign-in, test payments).

use std::sync::Arc;

use crate::origin::{Authority, Origin, is_cross_origin, normalize_host};

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};

/// The `Host` names that always mean this machine.
pub(crate) const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The variable listing the browser origins allowed to call `/mcp` (comma-separated).
pub(crate) const ALLOWED_ORIGINS_VAR: &str = "MCP_ALLOWED_ORIGINS";

/// Wraps `router` for browser use: every state-changing request must be same-origin and, with
/// `hosts` (no key protects the routes), every request must name an allowed `Host`.
pub(crate) fn browser(router: Router, hosts: Option<&[String]>) -> Router {
    let router = router.layer(middleware::from_fn(same_origin_writes));
    match hosts {
        Some(hosts) => router.layer(middleware::from_fn_with_state(
            Hosts::new(hosts),
            allowed_host,
        )),
        None => router,
    }
}

/// `Host` values accepted: `name` (any port) or `name:port` entries.
#[derive(Clone, Debug)]
pub(crate) struct Hosts(Arc<[Authority]>);

impl Hosts {
    pub(crate) fn new(hosts: &[String]) -> Self {
        Self(
            hosts
                .iter()
                .map(|host| {
                    // A bare IPv6 address (`::1`) is not an authority; it means any port.
                    Authority::parse(host).unwrap_or_else(|| Authority {
                        host: normalize_host(host.trim()),
                        port: None,
                    })
                })
                .collect(),
        )
    }

    fn allows(&self, host: &Authority) -> bool {
        self.0.iter().any(|allowed| {
            allowed.host == host.host && allowed.port.is_none_or(|port| host.port == Some(port))
        })
    }
}

async fn allowed_host(State(hosts): State<Hosts>, request: Request, next: Next) -> Response {
    match request_host(&request) {
        Some(host) if hosts.allows(&host) => next.run(request).await,
        _ => {
            tracing::warn!(
                host = ?request.headers().get(header::HOST),
                "refused a request with a Host that is not allowed (possible DNS rebinding)"
            );
            (
                StatusCode::FORBIDDEN,
                "Forbidden: Host header is not allowed",
            )
                .into_response()
        }
    }
}

/// The request's `Host` (or its URI authority, as HTTP/2 carries it).
fn request_host(request: &Request) -> Option<Authority> {
    match request.headers().get(header::HOST) {
        Some(host) => Authority::parse(host.to_str().ok()?),
        None => Authority::parse(request.uri().authority()?.as_str()),
    }
}

async fn same_origin_writes(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || !is_cross_origin(request.headers()) {
        return next.run(request).await;
    }
    tracing::warn!(
        origin = ?request.headers().get(header::ORIGIN),
        "refused a cross-origin form post"
    );
    (StatusCode::FORBIDDEN, "Forbidden: cross-origin request").into_response()
}

/// The `Origin` check on `/mcp` (MCP streamable HTTP: servers must validate `Origin`): a
/// request with an `Origin` that is neither listed nor, on a loopback listener, a loopback
/// origin gets `403` with a JSON-RPC error; requests without one (non-browser clients) pass.
pub(crate) fn mcp_origins(router: Router, allowed: &[String], loopback: bool) -> Router {
    let origins = Origins {
        allowed: allowed
            .iter()
            .filter_map(|origin| Origin::parse(origin))
            .collect(),
        loopback,
    };
    router.layer(middleware::from_fn_with_state(origins, allowed_origin))
}

#[derive(Clone, Debug)]
struct Origins {
    allowed: Arc<[Origin]>,
    loopback: bool,
}

async fn allowed_origin(State(origins): State<Origins>, request: Request, next: Next) -> Response {
    let Some(value) = request.headers().get(header::ORIGIN) else {
        return next.run(request).await;
    };
    let allowed = value
        .to_str()
        .ok()
        .and_then(Origin::parse)
        .is_some_and(|origin| {
            (origins.loopback && origin.is_loopback()) || origins.allowed.contains(&origin)
        });
    if allowed {
        return next.run(request).await;
    }
    tracing::warn!(origin = ?value, "refused an MCP request from a browser origin that is not allowed");
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32000,
            "message": format!(
                "Forbidden: Origin {} is not allowed (add it to {ALLOWED_ORIGINS_VAR})",
                String::from_utf8_lossy(value.as_bytes()).chars().filter(|c| !c.is_control()).take(200).collect::<String>()
            ),
        },
    });
    json_response(StatusCode::FORBIDDEN, &body)
}

/// A JSON body with its content type.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// Checks `MCP_ALLOWED_ORIGINS`-style entries: each must be an origin (`scheme://host[:port]`).
pub(crate) fn check_origins(origins: &[String]) -> Result<(), crate::Error> {
    match origins
        .iter()
        .find(|origin| Origin::parse(origin).is_none())
    {
        Some(bad) => Err(crate::Error::InvalidConfig {
            var: ALLOWED_ORIGINS_VAR,
            value: bad.clone(),
            expected: "comma-separated origins such as `https://app.example.com` (scheme, host and optional port; no path)".into(),
        }),
        None => Ok(()),
    }
}

/// Splits a comma-separated list, dropping blanks.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn origins_are_parsed_and_compared_with_default_ports() {
        let origin = Origin::parse("https://App.Example.com").unwrap();
        assert_eq!(
            origin,
            Origin::parse("https://app.example.com:443").unwrap()
        );
        assert_ne!(origin, Origin::parse("http://app.example.com").unwrap());
        assert!(Origin::parse("http://[::1]:5173").unwrap().is_loopback());
        assert!(Origin::parse("http://127.0.0.1").unwrap().is_loopback());
        assert!(
            !Origin::parse("http://localhost.evil.example")
                .unwrap()
                .is_loopback()
        );
        assert!(Origin::parse("null").is_none());
        assert!(Origin::parse("app.example.com").is_none());
        assert!(check_origins(&["https://a.example:8443".into()]).is_ok());
        assert!(check_origins(&["a.example".into()]).is_err());
    }

    #[test]
    fn cross_origin_posts_are_recognised() {
        let host = ("host", "127.0.0.1:8080");
        assert!(!is_cross_origin(&headers(&[host])), "not from a browser");
        assert!(!is_cross_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(is_cross_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(is_cross_origin(&headers(&[host, ("origin", "null")])));
        assert!(is_cross_origin(&headers(&[
            host,
            ("referer", "http://evil.example/x")
        ])));
        assert!(!is_cross_origin(&headers(&[
            host,
            ("referer", "http://127.0.0.1:8080/pay/x")
        ])));
        assert!(is_cross_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(is_cross_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
        assert!(!is_cross_origin(&headers(&[
            ("host", "internal:9000"),
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://proxy.example"),
        ])));
        assert!(!is_cross_origin(&headers(&[
            ("host", "example.com"),
            ("origin", "https://example.com"),
        ])));
    }

    #[test]
    fn hosts_match_names_and_ports() {
        let hosts = Hosts::new(&["localhost".into(), "::1".into(), "example.com:8443".into()]);
        let allows = |host: &str| hosts.allows(&Authority::parse(host).unwrap());
        assert!(allows("localhost:1234") && allows("LOCALHOST") && allows("[::1]:80"));
        assert!(allows("example.com:8443"));
        assert!(!allows("example.com") && !allows("example.com:80") && !allows("evil.example"));
    }
}
