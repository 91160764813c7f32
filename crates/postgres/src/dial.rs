//! The dial of a tracked session: the socket is opened here, as
//! tokio-postgres would open it, and wrapped in a [`Tap`] before the
//! startup exchange (`Config::connect_raw`), so that the pool sees the
//! protocol the session speaks.
//!
//! What tokio-postgres's own dial does is followed: every host (and
//! `hostaddr`) in order, or shuffled with `load_balance_hosts=random`; each
//! address a host name resolves to; the port of each host (or the one
//! port); `connect_timeout` per attempt; `TCP_NODELAY`, TCP keepalive and
//! `tcp_user_timeout`; Unix sockets (`host=/run/postgresql`). A host that
//! fails is followed by the next; when all fail, the error is the last
//! startup error, or, if no socket opened, the caller dials with
//! tokio-postgres for its error. With `target_session_attrs`, a session
//! whose server is not what it asks for (`SHOW transaction_read_only`, as
//! tokio-postgres and libpq ask) is dropped and the next host tried. A
//! host found read-only since (it refused a write) is tried after the
//! others, and checked so too ([`Hosts`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use socket2::TcpKeepalive;

use connpool_tcp::SocketOptions;
use tokio::net::TcpStream;
use tokio_postgres::config::{Host, LoadBalanceHosts, TargetSessionAttrs};
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{Client, Config, Connection, NoTls};
use tokio_util::either::Either;

use super::PgError;
use super::hosts::Hosts;
use super::session::{Session, Tap, Tapped};
use super::target::Target;

/// A tracked connection: the client, its connection (to spawn), what its
/// tap learns, and where it was dialed (for cancel requests).
pub(super) type Tracked = (
    Client,
    Connection<Tapped<Stream>, NoTlsStream>,
    Arc<Session>,
    Target,
);

/// Dials `config` without TLS, tracked. `None`: no socket could be opened
/// (then tokio-postgres's own dial says why, in its words). A session
/// that takes writes is looked for on the hosts `hosts` found read-only
/// last (see [`Hosts`]).
pub(super) async fn connect(config: &Config, hosts: &Hosts) -> Result<Option<Tracked>, PgError> {
    let wanted = config.get_target_session_attrs();
    let targets = targets(config).await;
    let (order, check) = match wanted {
        TargetSessionAttrs::ReadOnly => (targets, true),
        _ => hosts.dial_order(targets),
    };
    let mut last = None;
    // A session on a host found read-only, kept in case no host takes
    // writes (`any` takes it then).
    let mut fallback = None;
    for target in order {
        let Ok(stream) = open(&target, config).await else {
            continue;
        };
        let session = Arc::new(Session::default());
        match config
            .connect_raw(Tapped::new(stream, Tap::new(Arc::clone(&session))), NoTls)
            .await
        {
            Ok((client, mut connection)) => {
                session.arm();
                if wanted == TargetSessionAttrs::Any && !check {
                    session.reset();
                    return Ok(Some((client, connection, session, target)));
                }
                let read_only = is_read_only(&client, &mut connection).await?;
                if read_only {
                    hosts.found_read_only(&target);
                } else {
                    hosts.found_read_write(&target);
                }
                if read_only == (wanted == TargetSessionAttrs::ReadOnly) {
                    session.reset();
                    return Ok(Some((client, connection, session, target)));
                }
                if wanted == TargetSessionAttrs::Any && fallback.is_none() {
                    fallback = Some((client, connection, session, target));
                }
            }
            Err(e) => last = Some(e),
        }
    }
    if let Some((client, connection, session, target)) = fallback {
        // Right after a refused write, a read-only session would only be
        // refused again (and clear the key again): the dial fails, as one
        // to a host that is down does, until a host takes writes.
        if let Some(ago) = hosts.refused_lately() {
            return Err(PgError::new(format!(
                "no host takes writes: {target} is read-only (a standby), and a write was \
                 refused {ago:.1?} ago"
            )));
        }
        session.reset();
        return Ok(Some((client, connection, session, target)));
    }
    match last {
        Some(e) => Err(e.into()),
        None => Ok(None),
    }
}

/// Every address `config` names, in the order tokio-postgres dials them:
/// each host (and `hostaddr`) in order, or shuffled with
/// `load_balance_hosts=random`, each address a host name resolves to (a
/// name that does not resolve is skipped), with the host's port (or the
/// one port).
async fn targets(config: &Config) -> Vec<Target> {
    let hosts = config.get_hosts();
    let addrs = config.get_hostaddrs();
    let count = hosts.len().max(addrs.len());
    let random = config.get_load_balance_hosts() == LoadBalanceHosts::Random;
    let mut order: Vec<usize> = (0..count).collect();
    if random {
        fastrand::shuffle(&mut order);
    }
    let mut targets = Vec::with_capacity(count);
    for i in order {
        let port = config
            .get_ports()
            .get(i)
            .or_else(|| config.get_ports().first())
            .copied()
            .unwrap_or(5432);
        match (addrs.get(i), hosts.get(i)) {
            (Some(ip), _) => targets.push(Target::Tcp(SocketAddr::new(*ip, port))),
            (None, Some(Host::Tcp(name))) => {
                let Ok(found) = tokio::net::lookup_host((name.as_str(), port)).await else {
                    continue;
                };
                let mut found: Vec<Target> = found.map(Target::Tcp).collect();
                if random {
                    fastrand::shuffle(&mut found);
                }
                targets.extend(found);
            }
            #[cfg(unix)]
            (None, Some(Host::Unix(dir))) => {
                targets.push(Target::Unix(dir.join(format!(".s.PGSQL.{port}"))));
            }
            (None, None) => {}
        }
    }
    targets
}

/// Whether the session of `client` is read-only (`SHOW
/// transaction_read_only`): a standby's, or a server's set to refuse
/// writes. `connection` is polled meanwhile; one that ends answers `true`
/// (whatever the server is, a connection that ended is of no use).
pub(super) async fn is_read_only<S, T>(
    client: &Client,
    connection: &mut Connection<S, T>,
) -> Result<bool, tokio_postgres::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let query = client.simple_query("SHOW transaction_read_only");
    let mut query = std::pin::pin!(query);
    let answer = std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(ended) = Pin::new(&mut *connection).poll(cx) {
            return std::task::Poll::Ready(ended.map(|()| None));
        }
        query.as_mut().poll(cx).map(|r| r.map(Some))
    })
    .await?;
    Ok(answer.is_none_or(|messages| read_only_answer(&messages)))
}

/// Whether the answer to `SHOW transaction_read_only` says `on`.
pub(super) fn read_only_answer(messages: &[tokio_postgres::SimpleQueryMessage]) -> bool {
    messages.iter().any(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0) == Some("on"),
        _ => false,
    })
}

/// Opens the socket to `target`, set up as tokio-postgres sets it up.
async fn open(target: &Target, config: &Config) -> io::Result<Stream> {
    let timeout = config.get_connect_timeout().copied();
    match target {
        Target::Tcp(addr) => {
            let stream = within(timeout, connpool_tcp::connect(*addr)).await?;
            let keepalive = config.get_keepalives().then(|| {
                let mut keepalive = TcpKeepalive::new().with_time(config.get_keepalives_idle());
                if let Some(interval) = config.get_keepalives_interval() {
                    keepalive = keepalive.with_interval(interval);
                }
                #[cfg(not(any(target_os = "windows", target_os = "openbsd")))]
                if let Some(retries) = config.get_keepalives_retries() {
                    keepalive = keepalive.with_retries(retries);
                }
                keepalive
            });
            SocketOptions {
                nodelay: true,
                keepalive,
                user_timeout: config.get_tcp_user_timeout().copied(),
            }
            .apply(&stream)?;
            Ok(Either::Left(stream))
        }
        #[cfg(unix)]
        Target::Unix(path) => Ok(Either::Right(within(timeout, Unix::connect(path)).await?)),
    }
}

async fn within<T>(
    limit: Option<Duration>,
    f: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, f)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
        None => f.await,
    }
}

/// The socket of a tracked session: TCP (`Left`), or a Unix socket
/// (`Right`); tokio-util's `Either` carries the I/O of both.
pub(super) type Stream = Either<TcpStream, Unix>;

#[cfg(unix)]
type Unix = tokio::net::UnixStream;
/// No Unix sockets here: never made.
#[cfg(not(unix))]
type Unix = TcpStream;

/// A TLS connector whose streams are tapped above TLS, where the protocol
/// is plain: `tokio_postgres::Config::connect` dials and negotiates TLS as
/// it always does, and the session is tracked as a plaintext one is. If
/// the server refuses TLS and the `sslmode` lets the session go on in
/// plaintext, no stream was tapped ([`Session::is_tapped`] says so), and
/// the session is not tracked.
#[derive(Clone)]
pub(super) struct TappedTls<T> {
    pub(super) inner: T,
    pub(super) session: Arc<Session>,
}

impl<T, S> tokio_postgres::tls::MakeTlsConnect<S> for TappedTls<T>
where
    T: tokio_postgres::tls::MakeTlsConnect<S>,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<S>>::Future: Send + 'static,
    S: Send + 'static,
    T::TlsConnect: Send + 'static,
{
    type Stream = Tapped<T::Stream>;
    type TlsConnect = TappedConnect<T::TlsConnect>;
    type Error = T::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, T::Error> {
        Ok(TappedConnect {
            inner: self.inner.make_tls_connect(domain)?,
            session: Arc::clone(&self.session),
        })
    }
}

/// [`TappedTls`]'s connector for one host.
pub(super) struct TappedConnect<C> {
    inner: C,
    session: Arc<Session>,
}

impl<C, S> tokio_postgres::tls::TlsConnect<S> for TappedConnect<C>
where
    C: tokio_postgres::tls::TlsConnect<S> + Send + 'static,
    C::Future: Send + 'static,
    S: Send + 'static,
{
    type Stream = Tapped<C::Stream>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Tapped<C::Stream>, C::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let TappedConnect { inner, session } = self;
        Box::pin(async move {
            let stream = inner.connect(stream).await?;
            session.tapped();
            Ok(Tapped::new(stream, Tap::new(session)))
        })
    }
}

impl<S: tokio_postgres::tls::TlsStream + Unpin> tokio_postgres::tls::TlsStream for Tapped<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        self.0.io.channel_binding()
    }
}
