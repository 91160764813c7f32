//! [`Origin`]: the key of every HTTP manager, a scheme and a destination.

use std::fmt;
use std::net::SocketAddr;

use http::Uri;
use http::uri::Scheme;

use connpool_tcp::Destination;
use connpool_tcp::transport::{DialError, Dialed, Transport};

/// Where an HTTP manager (HTTP/1.1, HTTP/2, both by ALPN, gRPC) connects,
/// and how: the pool's key.
///
/// The scheme decides TLS, as in Go's `Transport` and hyper-util's client:
///
/// | made from | dialed |
/// |---|---|
/// | `"https://host:port"`, [`Origin::https`] | always over TLS, with the manager's TLS configuration; a manager without one refuses the key (its error's `NoTls`), so nothing meant for `https` is ever sent in plaintext |
/// | `"http://host:port"`, [`Origin::http`] | always in plaintext, even by a manager with a TLS configuration |
/// | `"host:port"`, a [`Destination`] or a [`SocketAddr`] | as the manager is configured: TLS if it has a TLS configuration |
///
/// The three are different keys: `http://h:p` and `https://h:p` never
/// share a connection. A port left out is the scheme's (80, 443). A string
/// with another scheme, or that does not parse, becomes a destination that
/// fails at dial time with a message naming it (see [`Destination`]).
///
/// ```
/// use connpool_http::Origin;
/// use connpool_http::tcp::Destination;
///
/// let secure = Origin::from("https://example.com");
/// assert_eq!(secure.scheme(), Some("https"));
/// assert_eq!(secure.destination(), &Destination::from("example.com:443"));
/// assert_ne!(secure, Origin::from("http://example.com:443"));
/// assert_eq!(Origin::from("example.com:443").scheme(), None);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `Some(true)`: `https`; `Some(false)`: `http`; `None`: as configured.
    tls: Option<bool>,
    destination: Destination,
}

impl Origin {
    /// `http://` `destination`: plaintext, whatever the manager's TLS
    /// configuration.
    pub fn http(destination: impl Into<Destination>) -> Self {
        Self {
            tls: Some(false),
            destination: destination.into(),
        }
    }

    /// `https://` `destination`: over TLS, or not at all.
    pub fn https(destination: impl Into<Destination>) -> Self {
        Self {
            tls: Some(true),
            destination: destination.into(),
        }
    }

    /// The host and port.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// `"http"` or `"https"`; `None` when the manager's configuration
    /// decides.
    pub fn scheme(&self) -> Option<&'static str> {
        self.tls.map(|tls| if tls { "https" } else { "http" })
    }

    /// Whether a manager that has a TLS configuration (`configured`)
    /// dials this origin over TLS.
    pub(crate) fn tls(&self, configured: bool) -> bool {
        self.tls.unwrap_or(configured)
    }

    /// Whether `transport` dials this origin over TLS.
    pub(crate) fn over_tls(&self, transport: &Transport) -> bool {
        self.tls(transport.is_tls())
    }

    /// A connection to this origin through `transport`, over TLS if its
    /// scheme (or, without one, the configuration) says so: an `https`
    /// origin without a TLS configuration is refused before any byte is
    /// sent.
    pub(crate) async fn dial(&self, transport: &Transport) -> Result<Dialed, DialError> {
        transport
            .dial(self.destination(), self.over_tls(transport))
            .await
    }

    /// The origin a request URI names: its scheme (`http`, `https`, or
    /// none) and authority, the port from the scheme if absent. `None` for
    /// a URI without a host.
    pub(crate) fn of_uri(uri: &Uri) -> Option<Self> {
        let host = uri.host()?;
        let tls = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => Some(true),
            Some(s) if *s == Scheme::HTTP => Some(false),
            // Another scheme: the manager's configuration decides, as for
            // a bare authority.
            _ => None,
        };
        let port = uri
            .port_u16()
            .unwrap_or(if tls == Some(true) { 443 } else { 80 });
        // `host()` keeps an IPv6 address's brackets, as `host:port` needs.
        Some(Self {
            tls,
            destination: Destination::from((host, port)),
        })
    }
}

impl From<Destination> for Origin {
    /// The destination, dialed as the manager is configured.
    fn from(destination: Destination) -> Self {
        Self {
            tls: None,
            destination,
        }
    }
}

impl From<SocketAddr> for Origin {
    /// The address, dialed as the manager is configured.
    fn from(addr: SocketAddr) -> Self {
        Destination::from(addr).into()
    }
}

impl From<(&str, u16)> for Origin {
    /// A host and port, dialed as the manager is configured.
    fn from(host_port: (&str, u16)) -> Self {
        Destination::from(host_port).into()
    }
}

impl From<&str> for Origin {
    /// `http://host[:port]`, `https://host[:port]` (a trailing `/` allowed),
    /// or `host:port` (dialed as the manager is configured).
    fn from(s: &str) -> Self {
        let lower = s.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
        if (lower.starts_with("http://") || lower.starts_with("https://"))
            && let Ok(uri) = s.parse::<Uri>()
            && uri.path_and_query().is_none_or(|p| p == "/")
            && let Some(origin) = Self::of_uri(&uri)
        {
            return origin;
        }
        Destination::from(s).into()
    }
}

impl From<String> for Origin {
    /// As from a `&str`.
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl fmt::Display for Origin {
    /// `https://host:port`, `http://host:port`, or `host:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme() {
            Some(scheme) => write!(f, "{scheme}://{}", self.destination),
            None => self.destination.fmt(f),
        }
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_part_of_the_key() {
        let https = Origin::from("https://h:8443");
        let http = Origin::from("http://h:8443");
        let bare = Origin::from("h:8443");
        assert_eq!(https, Origin::https("h:8443"));
        assert_eq!(http, Origin::http(("h", 8443)));
        assert_ne!(https, http);
        assert_ne!(https, bare);
        assert_ne!(http, bare);
        assert!(https.tls(false));
        assert!(!http.tls(true));
        assert!(bare.tls(true) && !bare.tls(false));
    }

    #[test]
    fn ports_default_to_the_scheme() {
        assert_eq!(Origin::from("https://h").destination().to_string(), "h:443");
        assert_eq!(Origin::from("HTTP://h/").destination().to_string(), "h:80");
        assert_eq!(
            Origin::from("https://[::1]:9").destination(),
            &Destination::from("[::1]:9")
        );
        assert_eq!(Origin::from("https://h:1").to_string(), "https://h:1");
    }

    #[test]
    fn anything_else_fails_at_dial_time_by_name() {
        for s in ["ftp://h:21", "https://h:1/path", "h"] {
            let origin = Origin::from(s);
            assert_eq!(origin.scheme(), None, "{s}");
            assert_eq!(origin.destination().to_string(), s);
        }
    }
}
