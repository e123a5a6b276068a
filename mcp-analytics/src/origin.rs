//! Origins and hosts as browsers send them (`Origin`, `Referer`, `Host`), without a server
//! framework: the HTTP guards and the Worker's sign-in form use them.

use http::HeaderMap;

/// Whether a request comes from another site's page: the browser's `Sec-Fetch-Site` when sent,
/// else an `Origin` (or, without one, a `Referer`) naming another host than `Host`. A request
/// with none of these (not from a browser) is not cross-origin.
pub(crate) fn is_cross_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(source) = headers
        .get(http::header::ORIGIN)
        .or_else(|| headers.get(http::header::REFERER))
    else {
        return false;
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|host| Authority::parse(host.to_str().ok()?));
    let origin = source.to_str().ok().and_then(Origin::parse);
    match (origin, host) {
        (Some(origin), Some(host)) => !origin.is_at(&host),
        _ => true,
    }
}

/// A host and optional port, normalized (lowercase, IPv6 without brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Authority {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

impl Authority {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let authority = http::uri::Authority::try_from(text.trim()).ok()?;
        if authority.as_str().contains('@') {
            return None;
        }
        Some(Self {
            host: normalize_host(authority.host()),
            port: authority.port_u16(),
        })
    }
}

pub(crate) fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// `localhost` or a loopback address.
#[cfg(feature = "http")]
fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A web origin: scheme, host and port (the scheme's default when the serialization omits it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// An `Origin` header value, or the origin of a `Referer` URL.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let uri = http::Uri::try_from(text.trim()).ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let port = authority.port_u16().or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        Some(Self {
            scheme,
            host: normalize_host(authority.host()),
            port,
        })
    }

    #[cfg(feature = "http")]
    pub(crate) fn is_loopback(&self) -> bool {
        matches!(self.scheme.as_str(), "http" | "https") && is_loopback_host(&self.host)
    }

    /// Whether this origin is the site `host` names (a `Host` without a port means the
    /// scheme's default port).
    pub(crate) fn is_at(&self, host: &Authority) -> bool {
        self.host == host.host
            && match host.port {
                Some(port) => self.port == Some(port),
                None => self.port == Origin::default_port(&self.scheme),
            }
    }

    fn default_port(scheme: &str) -> Option<u16> {
        match scheme {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        }
    }
}
