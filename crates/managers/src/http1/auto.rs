//! [`AutoManager`]: one manager for both HTTP versions. Over TLS, ALPN
//! picks: `h2` gives a connection lent shared, `http/1.1` (or no ALPN) one
//! lent exclusively. In plaintext, HTTP/1.1, or HTTP/2 with prior
//! knowledge if configured.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::Full;

use super::auto_conn::AutoConn;
use super::manager::{handshake, ping};
use crate::HttpError;
use crate::Origin;
use crate::h2_frames::lend_by_stream_limit;
use crate::http2::Http2Manager;
use crate::service::RequestBody;
#[cfg(feature = "tls")]
use crate::tls::TlsConfig;
use crate::transport::Transport;
use connpool_core::{Lending, Manager};

/// Makes HTTP/1.1 or HTTP/2 connections, as the server chooses in ALPN
/// (over TLS) or as configured (plaintext), for a keyed
/// [`Pool`](connpool_core::Pool). An HTTP/2 connection is lent shared, up to the
/// server's stream limit; an HTTP/1.1 one exclusively. Pair it with
/// [`HttpService`](crate::service::HttpService) for one client
/// over both. See the [module docs](super).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`tls`](AutoManager::tls) | off: plaintext, `https` origins refused | `https` needs the caller's roots; ALPN offers `h2` first, then `http/1.1` |
/// | [`http2_prior_knowledge`](AutoManager::http2_prior_knowledge) | off | in plaintext nothing negotiates: HTTP/1.1 is what every server speaks |
/// | [`with_http2`](AutoManager::with_http2) | [`Http2Manager::new`] | its TCP dialer and HTTP/2 keepalive PINGs serve both versions |
pub struct AutoManager<B = Full<Bytes>> {
    h2: Http2Manager<B>,
    prior_knowledge: bool,
    /// The HTTP/2 manager's TCP dialer, and this manager's TLS.
    transport: Transport,
}

impl<B> Clone for AutoManager<B> {
    fn clone(&self) -> Self {
        Self {
            h2: self.h2.clone(),
            prior_knowledge: self.prior_knowledge,
            transport: self.transport.clone(),
        }
    }
}

impl<B> fmt::Debug for AutoManager<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutoManager")
            .field("h2", &self.h2)
            .field("http2_prior_knowledge", &self.prior_knowledge)
            .field("tls", &self.transport.is_tls())
            .finish()
    }
}

impl AutoManager<Full<Bytes>> {
    /// A manager with the defaults (see the table), for requests with
    /// [`Full<Bytes>`] bodies.
    pub fn new() -> Self {
        let h2 = Http2Manager::new();
        let mut transport = Transport::default();
        transport.set_tcp(h2.tcp().clone());
        Self {
            h2,
            prior_knowledge: false,
            transport,
        }
    }
}

impl Default for AutoManager<Full<Bytes>> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> AutoManager<B> {
    /// The same manager for requests with bodies of type `C`.
    pub fn with_body<C>(self) -> AutoManager<C> {
        AutoManager {
            h2: self.h2.with_body(),
            prior_knowledge: self.prior_knowledge,
            transport: self.transport,
        }
    }

    /// Over TLS with `tls`'s roots and certificates, offering `h2` and
    /// `http/1.1` in ALPN: the server's choice decides the version (no
    /// choice: HTTP/1.1).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.transport.set_tls(tls, &[b"h2", b"http/1.1"]);
        self
    }

    /// In plaintext, speak HTTP/2 at once (h2c with prior knowledge)
    /// instead of HTTP/1.1. Not used over TLS, where ALPN decides.
    pub fn http2_prior_knowledge(mut self, on: bool) -> Self {
        self.prior_knowledge = on;
        self
    }

    /// The HTTP/2 manager whose settings (TCP dialer, keepalive PINGs,
    /// settings timeout) are used; its TCP dialer serves HTTP/1.1 too. Its
    /// own TLS setting is not used.
    pub fn with_http2(mut self, h2: Http2Manager<B>) -> Self {
        self.transport.set_tcp(h2.tcp().clone());
        self.h2 = h2;
        self
    }
}

#[async_trait]
impl<B: RequestBody> Manager for AutoManager<B> {
    type Key = Origin;
    type Connection = AutoConn<B>;
    type Error = HttpError;

    /// The key's `Display` form (`https://host:port`, or `host:port`).
    fn key_name(&self, key: &Origin) -> String {
        key.to_string()
    }

    async fn connect(&self, origin: &Origin) -> Result<AutoConn<B>, HttpError> {
        let dialed = self
            .transport
            .dial_origin(origin)
            .await
            .map_err(|e| HttpError::dial(e, origin, "h2 and http/1.1"))?;
        let (stream, local, peer) = (dialed.stream, dialed.local, dialed.peer);
        let tls = self.transport.is_tls_for(origin);
        let (h2, scheme) = match dialed.alpn {
            Some(alpn) if alpn == "h2" => (true, Scheme::HTTPS),
            Some(alpn) if alpn != "http/1.1" => {
                return Err(HttpError::Alpn {
                    offered: "h2 and http/1.1",
                    chose: Some(alpn),
                });
            }
            _ => (!tls && self.prior_knowledge, Scheme::HTTP),
        };
        if h2 {
            let h2 = self.h2.setup(stream, scheme, origin, local, peer).await;
            return h2.map(AutoConn::Http2);
        }
        let h1 = handshake(stream, origin, local, peer, tls).await;
        h1.map(AutoConn::Http1)
    }

    /// The version's own ping (no round trip for either).
    async fn ping(&self, conn: &mut AutoConn<B>) -> Result<(), HttpError> {
        match conn {
            AutoConn::Http1(c) => ping(c).await,
            AutoConn::Http2(c) => self.h2.ping(c).await,
            AutoConn::Unshared => Err(HttpError::NotReusable),
        }
    }

    fn is_broken(&self, conn: &mut AutoConn<B>) -> bool {
        !conn.is_usable()
    }

    fn lending(&self, conn: &AutoConn<B>) -> Lending<AutoConn<B>> {
        match conn {
            AutoConn::Http2(c) => lend_by_stream_limit(c.frame_state()),
            _ => Lending::exclusive(),
        }
    }
}
