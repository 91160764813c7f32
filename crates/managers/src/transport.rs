//! The dial beneath the HTTP managers: a TCP connection with the
//! [`TcpManager`]'s socket setup, then TLS when the [`Origin`] asks for it
//! (`https`, or no scheme and the manager has a [`TlsConfig`]), offering
//! the ALPN protocols of its HTTP version.

use std::io;
use std::net::SocketAddr;

use crate::Origin;
use crate::tcp::TcpManager;
#[cfg(feature = "tls")]
use crate::tls::{MaybeTls, TlsConfig, alpn_of};
use connpool_core::Manager;

/// The stream a dial made: TCP, or TLS over it.
#[cfg(feature = "tls")]
pub(crate) type Stream = MaybeTls;
/// The stream a dial made.
#[cfg(not(feature = "tls"))]
pub(crate) type Stream = tokio::net::TcpStream;

/// What a dial made: the stream, its two ends, and (over TLS) the protocol
/// the server chose in ALPN.
pub(crate) struct Dialed {
    pub(crate) stream: Stream,
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
    /// `None` in plaintext, or when the server chose no protocol.
    pub(crate) alpn: Option<String>,
}

/// Why a dial failed: each manager names it in its own error.
#[derive(Debug)]
pub(crate) enum DialError {
    /// Connecting (or reading the socket's local address).
    Tcp(io::Error),
    /// The TLS handshake; `Unsupported`: the server accepted none of the
    /// offered ALPN protocols.
    #[cfg(feature = "tls")]
    Tls(io::Error),
    /// The origin is `https` and the manager has no TLS configuration:
    /// nothing was dialed.
    NoTls,
}

impl DialError {
    /// Whether the server accepted none of the offered ALPN protocols.
    pub(crate) fn refused_alpn(&self) -> bool {
        match self {
            DialError::Tcp(_) | DialError::NoTls => false,
            #[cfg(feature = "tls")]
            DialError::Tls(e) => e.kind() == io::ErrorKind::Unsupported,
        }
    }

    /// The I/O error, whichever step failed (managers name
    /// [`DialError::NoTls`] in an error of their own first).
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            DialError::Tcp(e) => e,
            #[cfg(feature = "tls")]
            DialError::Tls(e) => e,
            DialError::NoTls => io::Error::new(
                io::ErrorKind::InvalidInput,
                "an https origin and no TLS configuration",
            ),
        }
    }
}

/// How an HTTP manager reaches its server: the TCP dialer, and TLS if set.
#[derive(Clone, Default)]
pub(crate) struct Transport {
    tcp: TcpManager,
    #[cfg(feature = "tls")]
    tls: Option<TlsConfig>,
}

impl Transport {
    /// The TCP dialer.
    pub(crate) fn tcp(&self) -> &TcpManager {
        &self.tcp
    }

    /// Dials with `tcp` from now on.
    pub(crate) fn set_tcp(&mut self, tcp: TcpManager) {
        self.tcp = tcp;
    }

    /// Dials over TLS with `tls`, offering `alpn`.
    #[cfg(feature = "tls")]
    pub(crate) fn set_tls(&mut self, tls: TlsConfig, alpn: &[&[u8]]) {
        self.tls = Some(tls.with_alpn(alpn));
    }

    /// Whether connections to origins without a scheme are made over TLS.
    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Whether a connection to `origin` is made over TLS.
    pub(crate) fn is_tls_for(&self, origin: &Origin) -> bool {
        origin.tls(self.is_tls())
    }

    /// A connection to `origin`: TCP, then the TLS handshake if the origin
    /// asks for it (the server's certificate must name its host). An
    /// `https` origin without a TLS configuration is refused before any
    /// byte is sent.
    pub(crate) async fn dial(&self, origin: &Origin) -> Result<Dialed, DialError> {
        let tls = self.is_tls_for(origin);
        if tls && !self.is_tls() {
            return Err(DialError::NoTls);
        }
        let dest = origin.destination();
        let tcp = self.tcp.connect(dest).await.map_err(DialError::Tcp)?;
        let peer = tcp.peer();
        let local = tcp.local_addr().map_err(DialError::Tcp)?;
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_ref().filter(|_| tls) {
            let stream = tls
                .handshake(tcp.into_inner(), dest)
                .await
                .map_err(DialError::Tls)?;
            return Ok(Dialed {
                alpn: alpn_of(&stream),
                stream: MaybeTls::Tls(Box::new(stream)),
                local,
                peer,
            });
        }
        #[cfg(feature = "tls")]
        let stream = MaybeTls::Plain(tcp.into_inner());
        #[cfg(not(feature = "tls"))]
        let stream = tcp.into_inner();
        Ok(Dialed {
            stream,
            local,
            peer,
            alpn: None,
        })
    }
}
