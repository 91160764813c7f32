//! [`WsUrl`]: the `ws://` or `wss://` URL a WebSocket connection is made
//! to, the pool's key.

use std::fmt;
use std::str::FromStr;

use tokio_tungstenite::tungstenite::http::Uri;

use super::error::WsError;
use connpool_tcp::Destination;

/// A `ws://` or `wss://` URL: the key of a [`WsManager`](super::WsManager)'s
/// pool, one per endpoint (scheme, host, port, path and query).
///
/// Parsed once, when made: the scheme must be `ws` or `wss`, there must be
/// a host, and there must be no user name or password in it (give
/// credentials as a header, [`WsManager::header`](super::WsManager::header):
/// they would otherwise be part of a key that the pool logs). The port
/// defaults to 80 or 443. `Display` and `Debug` leave the query out (shown
/// as `?…`), since services often put a token there; the request sends it.
/// Cheap to clone.
///
/// ```
/// use connpool_websocket::WsUrl;
///
/// let url: WsUrl = "wss://stream.example/v1?token=secret".parse()?;
/// assert!(url.is_tls());
/// assert_eq!(url.port(), 443);
/// assert_eq!(url.to_string(), "wss://stream.example/v1?…");
/// assert!("http://example".parse::<WsUrl>().is_err());
/// assert!("ws://user:pw@example".parse::<WsUrl>().is_err());
/// # Ok::<(), connpool_websocket::WsError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WsUrl {
    uri: Uri,
    tls: bool,
    port: u16,
}

impl WsUrl {
    /// Parses `url` (see the type's docs for what is accepted).
    pub fn parse(url: &str) -> Result<WsUrl, WsError> {
        let bad = |what: &str| WsError::Url(format!("invalid WebSocket URL: {what}"));
        let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        let tls = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("ws") => false,
            Some("wss") => true,
            Some(other) => return Err(bad(&format!("scheme {other:?}, not ws or wss"))),
            None => return Err(bad("no scheme (expected ws:// or wss://)")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "credentials in the URL (give them as a header: WsManager::header)",
            ));
        }
        if authority.host().is_empty() {
            return Err(bad("no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(WsUrl { uri, tls, port })
    }

    /// Whether the scheme is `wss` (TLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host: a name, or an IP address (an IPv6 one without brackets).
    pub fn host(&self) -> &str {
        let host = self.uri.host().unwrap_or_default();
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The port (80 or 443 if the URL gives none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The whole URL, query included (it may hold a secret).
    pub fn as_uri(&self) -> &Uri {
        &self.uri
    }

    /// Where the TCP connection goes.
    pub(super) fn destination(&self) -> Destination {
        Destination::from((self.host(), self.port))
    }
}

impl FromStr for WsUrl {
    type Err = WsError;

    fn from_str(s: &str) -> Result<Self, WsError> {
        WsUrl::parse(s)
    }
}

impl TryFrom<&str> for WsUrl {
    type Error = WsError;

    fn try_from(s: &str) -> Result<Self, WsError> {
        WsUrl::parse(s)
    }
}

impl TryFrom<String> for WsUrl {
    type Error = WsError;

    fn try_from(s: String) -> Result<Self, WsError> {
        WsUrl::parse(&s)
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "wss" } else { "ws" };
        let authority = self.uri.authority().map_or("", |a| a.as_str());
        write!(f, "{scheme}://{authority}{}", self.uri.path())?;
        if self.uri.query().is_some() {
            f.write_str("?…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WsUrl({self})")
    }
}
