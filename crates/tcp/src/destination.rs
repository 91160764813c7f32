//! Where a [`TcpManager`](super::TcpManager) connects: [`Destination`], its
//! resolution, and the context its dial errors carry.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Where a [`TcpManager`](super::TcpManager) connects: the pool's key.
///
/// Made from a [`SocketAddr`] (or `(IpAddr, u16)`), or from a `"host:port"`
/// string (or `(&str, u16)`), which is resolved on every dial. A string
/// holding an IP address and port (`"127.0.0.1:80"`, `"[::1]:80"`) becomes
/// the address itself, so it is the same key as the `SocketAddr`. A string
/// that is not `host:port` (no port, a port out of range, an empty host,
/// an unclosed `[`, an IPv6 address without brackets, a character no host
/// name has, such as a space) is accepted here and fails at dial time with
/// [`io::ErrorKind::InvalidInput`], in a message naming the string and what
/// is wrong with it. Cheap to clone.
///
/// ```
/// use std::net::SocketAddr;
/// use connpool_tcp::Destination;
///
/// let addr: SocketAddr = "127.0.0.1:6379".parse().unwrap();
/// assert_eq!(Destination::from("127.0.0.1:6379"), Destination::from(addr));
/// assert_eq!(Destination::from(("localhost", 6379)), Destination::from("localhost:6379"));
/// assert_eq!(Destination::from("localhost:6379").socket_addr(), None);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Destination(pub(super) Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) enum Repr {
    Addr(SocketAddr),
    Name(Arc<str>),
}

impl Destination {
    /// The host part: the name of a `host:port` (without an IPv6 address's
    /// brackets), or the address's IP. `None` for a malformed string.
    pub fn host(&self) -> Option<String> {
        match &self.0 {
            Repr::Addr(a) => Some(a.ip().to_string()),
            Repr::Name(name) => {
                check_host_port(name).ok()?;
                let (host, _) = name.rsplit_once(':')?;
                Some(
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned(),
                )
            }
        }
    }

    /// The address, if this destination is one (no resolution needed).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match &self.0 {
            Repr::Addr(a) => Some(*a),
            Repr::Name(_) => None,
        }
    }

    /// The addresses to try, in order: the address itself, or the
    /// resolution of `host:port` (asynchronous; through the system resolver).
    /// A malformed `host:port` fails with [`io::ErrorKind::InvalidInput`]
    /// before any lookup.
    pub async fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match &self.0 {
            Repr::Addr(a) => Ok(vec![*a]),
            Repr::Name(name) => {
                if let Err(what) = check_host_port(name) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("invalid destination {name:?}: {what}"),
                    ));
                }
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&**name)
                    .await
                    .map_err(|e| context(e, format!("resolving {name}")))?
                    .collect();
                if addrs.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("resolving {name}: no addresses"),
                    ));
                }
                Ok(addrs)
            }
        }
    }
}

/// What is wrong with `s` as a `host:port` to resolve, if anything. (An IP
/// address and port never gets here: it parsed as a `SocketAddr`.)
fn check_host_port(s: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected host:port, as \"localhost:80\" or \"[::1]:80\"";
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(format!("unclosed '[' ({EXPECTED})"));
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("[{inside}] is not an IPv6 address"));
        }
        match after.strip_prefix(':') {
            Some(port) => (None, port),
            None => return Err(format!("no port after ']' ({EXPECTED})")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (Some(host), port),
            None => return Err(format!("no port ({EXPECTED})")),
        }
    };
    if port.is_empty() {
        return Err(format!("no port ({EXPECTED})"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    if port.parse::<u16>().is_err() {
        return Err(format!("port {port} is out of range (at most 65535)"));
    }
    let Some(host) = host else {
        return Ok(());
    };
    if host.is_empty() {
        return Err(format!("no host ({EXPECTED})"));
    }
    if host.contains(':') {
        return Err(format!(
            "{host:?} has a ':': an IPv6 address needs brackets, as \"[::1]:80\""
        ));
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!("the host has {c:?}, which no host name has"));
    }
    if host.len() > 253 {
        return Err(format!(
            "the host is {} bytes long, a host name at most 253",
            host.len()
        ));
    }
    let labels = host.strip_suffix('.').unwrap_or(host);
    if labels.split('.').any(str::is_empty) {
        return Err("the host has an empty label (\"..\" or a leading '.')".to_owned());
    }
    if let Some(label) = labels.split('.').find(|l| l.len() > 63) {
        return Err(format!(
            "the host has a label of {} bytes, at most 63 in a host name",
            label.len()
        ));
    }
    Ok(())
}

impl From<SocketAddr> for Destination {
    fn from(addr: SocketAddr) -> Self {
        Destination(Repr::Addr(addr))
    }
}

impl From<(IpAddr, u16)> for Destination {
    fn from((ip, port): (IpAddr, u16)) -> Self {
        SocketAddr::new(ip, port).into()
    }
}

impl From<&str> for Destination {
    fn from(s: &str) -> Self {
        match s.parse::<SocketAddr>() {
            Ok(addr) => addr.into(),
            Err(_) => Destination(Repr::Name(s.into())),
        }
    }
}

impl From<String> for Destination {
    fn from(s: String) -> Self {
        match s.parse::<SocketAddr>() {
            Ok(addr) => addr.into(),
            Err(_) => Destination(Repr::Name(s.into())),
        }
    }
}

impl From<(&str, u16)> for Destination {
    /// A host name, an IP address, or a bracketed IPv6 address, and a port.
    fn from((host, port): (&str, u16)) -> Self {
        match host.parse::<IpAddr>() {
            Ok(ip) => (ip, port).into(),
            Err(_) => format!("{host}:{port}").into(),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Addr(a) => a.fmt(f),
            Repr::Name(n) => f.write_str(n),
        }
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destination({self})")
    }
}

/// An io error of the same kind with context in front of its message. Its
/// source is the original's source, not the original, whose message it
/// already carries.
pub(super) fn context(e: io::Error, what: String) -> io::Error {
    #[derive(Debug)]
    struct Context {
        what: String,
        source: io::Error,
    }
    impl fmt::Display for Context {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}: {}", self.what, self.source)
        }
    }
    impl std::error::Error for Context {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.source.source()
        }
    }
    io::Error::new(e.kind(), Context { what, source: e })
}
