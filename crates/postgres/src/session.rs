//! Session tracking: [`Tap`], a stream between tokio-postgres and the socket
//! that reads the protocol going by, and [`Session`], what it learns, read
//! by the pool when a borrower gives the connection back.
//!
//! Frontend messages: the SQL of every `Query` and `Parse` is classified
//! ([`classify`](super::classify)); a statement `Parse`d dirty stays dirty
//! for every `Bind` of it. `Query`, `Sync` and `FunctionCall` each await a
//! `ReadyForQuery`. Backend messages: the transaction status of each
//! `ReadyForQuery`, and each `ParameterStatus` (a reported setting
//! changed: the session is dirty). The session is clean when no dirty statement was sent
//! since the last reset, every request was answered and the last answer
//! said "idle, outside a transaction".
//!
//! The tap starts reading once the connection is up ([`Session::arm`]):
//! the startup exchange before (SSL request, authentication) goes by
//! unread.

use std::collections::HashSet;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::task::{Context, Poll};

use connpool_tcp::observed::{Event, Observed, Observer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::classify::{Effect, classify};

/// What the tap learned of one session. Shared by the [`Tap`] (in the
/// connection task) and the [`PgConnection`](super::PgConnection).
#[derive(Debug, Default)]
pub(super) struct Session {
    armed: AtomicBool,
    /// A TLS stream was tapped (see `dial::TappedTls`).
    tapped: AtomicBool,
    /// A statement that may change session state was sent since the last
    /// reset.
    dirty: AtomicBool,
    /// A statement that may deallocate prepared statements was sent.
    forgets: AtomicBool,
    /// Requests sent and not yet answered by `ReadyForQuery`.
    outstanding: AtomicI64,
    /// The transaction status of the last `ReadyForQuery`: `I`, `T` or `E`.
    status: AtomicU8,
    /// The server said it is no longer what the session was dialed for
    /// (one of [`SERVER_CHANGED`]'s SQLSTATEs), or the ping found its role
    /// changed.
    server_changed: AtomicBool,
    /// Of those, the server refused a write (`25006`): it is read-only.
    refused_write: AtomicBool,
}

/// SQLSTATEs that say the server is no longer what the session was dialed
/// for: `25006` (a write refused by a read-only server: a primary demoted
/// to a standby), `57P02` (another server process crashed: every session
/// is ended, the server restarts), `57P03` (it cannot take connections
/// now: starting up, shutting down, in recovery). Not `57P01`: a
/// shutdown ends every session with it (each is closed as it ends), and
/// so does `pg_terminate_backend` for one session, which says nothing of
/// the others.
pub(super) const SERVER_CHANGED: [&[u8]; 3] = [b"25006", b"57P02", b"57P03"];

impl Session {
    /// The session's TLS stream is tapped.
    pub(super) fn tapped(&self) {
        self.tapped.store(true, Ordering::SeqCst);
    }

    /// Whether the session's TLS stream was tapped.
    pub(super) fn is_tapped(&self) -> bool {
        self.tapped.load(Ordering::SeqCst)
    }

    /// Starts reading the protocol (the connection is up and idle).
    pub(super) fn arm(&self) {
        self.status.store(b'I', Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Whether the session is as the last reset (or the dial) left it.
    pub(super) fn is_clean(&self) -> bool {
        self.armed.load(Ordering::SeqCst)
            && !self.dirty.load(Ordering::SeqCst)
            && self.outstanding.load(Ordering::SeqCst) == 0
            && self.status.load(Ordering::SeqCst) == b'I'
    }

    /// Whether the server is no longer what the session was dialed for.
    pub(super) fn server_changed(&self) -> bool {
        self.server_changed.load(Ordering::SeqCst)
    }

    /// The server is no longer what the session was dialed for.
    pub(super) fn mark_server_changed(&self) {
        self.server_changed.store(true, Ordering::SeqCst);
    }

    /// Whether the server refused a write (`25006`): it is read-only.
    pub(super) fn refused_write(&self) -> bool {
        self.refused_write.load(Ordering::SeqCst)
    }

    /// Whether a transaction block may be open (or a request unanswered).
    pub(super) fn in_transaction(&self) -> bool {
        self.outstanding.load(Ordering::SeqCst) != 0 || self.status.load(Ordering::SeqCst) != b'I'
    }

    /// Whether a statement that may have deallocated prepared statements was
    /// sent since the last reset.
    pub(super) fn forgot(&self) -> bool {
        self.forgets.load(Ordering::SeqCst)
    }

    /// The session was reset, and everything sent was answered.
    pub(super) fn reset(&self) {
        self.dirty.store(false, Ordering::SeqCst);
        self.forgets.store(false, Ordering::SeqCst);
    }

    fn mark(&self, effect: Effect) {
        match effect {
            Effect::Clean => {}
            Effect::Dirty => self.dirty.store(true, Ordering::SeqCst),
            Effect::Forgets => {
                self.forgets.store(true, Ordering::SeqCst);
                self.dirty.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// A session's stream, the protocol going by read into its [`Session`]
/// (a type of this crate: tokio-postgres's `TlsStream` is implemented on
/// it).
#[derive(Debug)]
pub(super) struct Tapped<S>(pub(super) Observed<S, Tap>);

impl<S> Tapped<S> {
    pub(super) fn new(io: S, tap: Tap) -> Self {
        Self(Observed::new(io, tap))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tapped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Reads the PostgreSQL protocol going by (an [`Observer`] of the
/// session's stream) into a [`Session`].
#[derive(Debug)]
pub(super) struct Tap {
    session: Arc<Session>,
    sent: Reader,
    received: Reader,
    /// Protocol-level statements `Parse`d from dirty SQL, by name.
    dirty_statements: HashSet<Vec<u8>>,
}

impl Tap {
    pub(super) fn new(session: Arc<Session>) -> Self {
        Self {
            session,
            sent: Reader::new(true),
            received: Reader::new(false),
            dirty_statements: HashSet::new(),
        }
    }

    fn on_sent(&mut self, bytes: &[u8]) {
        if !self.session.armed.load(Ordering::Relaxed) {
            return;
        }
        let Self {
            sent,
            session,
            dirty_statements,
            ..
        } = self;
        sent.feed(bytes, |kind, body| {
            on_frontend(session, dirty_statements, kind, body)
        });
    }

    fn on_received(&mut self, bytes: &[u8]) {
        if !self.session.armed.load(Ordering::Relaxed) {
            return;
        }
        let session = &self.session;
        self.received.feed(bytes, |kind, body| match kind {
            b'Z' => {
                session
                    .status
                    .store(body.first().copied().unwrap_or(b'E'), Ordering::SeqCst);
                session.outstanding.fetch_sub(1, Ordering::SeqCst);
            }
            // A reported setting changed, by whatever means (a function
            // the SQL does not show included).
            b'S' => session.mark(Effect::Dirty),
            b'E' if SERVER_CHANGED.contains(&sqlstate(body)) => {
                if sqlstate(body) == b"25006" {
                    session.refused_write.store(true, Ordering::SeqCst);
                }
                session.mark_server_changed();
            }
            _ => {}
        });
    }
}

/// A frontend message `kind` with its `body` (only for the kinds
/// [`Reader`] keeps bodies of).
fn on_frontend(session: &Session, dirty: &mut HashSet<Vec<u8>>, kind: u8, body: &[u8]) {
    match kind {
        b'Q' => {
            session.outstanding.fetch_add(1, Ordering::SeqCst);
            session.mark(classify(&String::from_utf8_lossy(cstr(body))));
        }
        b'S' => {
            session.outstanding.fetch_add(1, Ordering::SeqCst);
        }
        b'F' => {
            // A function called by oid: unknown effect.
            session.outstanding.fetch_add(1, Ordering::SeqCst);
            session.mark(Effect::Dirty);
        }
        b'P' => {
            let name = cstr(body);
            let sql = cstr(&body[(name.len() + 1).min(body.len())..]);
            let effect = classify(&String::from_utf8_lossy(sql));
            if effect != Effect::Clean {
                // The statement is only prepared yet; it counts as run
                // now (tokio-postgres runs what it prepares), and again at
                // every `Bind` of it.
                dirty.insert(name.to_vec());
                session.mark(effect);
            } else if !dirty.is_empty() {
                dirty.remove(name);
            }
        }
        b'B' if !dirty.is_empty() => {
            let portal = cstr(body);
            let statement = cstr(&body[(portal.len() + 1).min(body.len())..]);
            if dirty.contains(statement) {
                session.mark(Effect::Dirty);
            }
        }
        b'C' if !dirty.is_empty() && body.first() == Some(&b'S') => {
            dirty.remove(cstr(&body[1..]));
        }
        _ => {}
    }
}

/// The SQLSTATE (the `C` field) of an `ErrorResponse`'s `body`: fields of
/// a type byte and a NUL-terminated string, up to a NUL type.
fn sqlstate(mut body: &[u8]) -> &[u8] {
    while let Some((&kind, rest)) = body.split_first() {
        if kind == 0 {
            break;
        }
        let value = cstr(rest);
        if kind == b'C' {
            return value;
        }
        body = &rest[(value.len() + 1).min(rest.len())..];
    }
    b""
}

/// The bytes of `body` up to its first NUL.
fn cstr(body: &[u8]) -> &[u8] {
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    &body[..end]
}

/// Reads typed messages (a kind byte, a big-endian length that counts
/// itself, the body) out of a byte stream cut anywhere.
#[derive(Debug)]
struct Reader {
    /// The header read so far.
    header: [u8; 5],
    header_len: usize,
    /// Body bytes still to come of the current message.
    remaining: usize,
    /// Whether the current message's body is kept.
    keep: bool,
    body: Vec<u8>,
    frontend: bool,
}

impl Reader {
    fn new(frontend: bool) -> Self {
        Self {
            header: [0; 5],
            header_len: 0,
            remaining: 0,
            keep: false,
            body: Vec::new(),
            frontend,
        }
    }

    /// Whether the body of a message of `kind` is needed.
    fn keeps(&self, kind: u8) -> bool {
        if self.frontend {
            matches!(kind, b'Q' | b'P' | b'B' | b'C')
        } else {
            matches!(kind, b'Z' | b'E')
        }
    }

    fn feed(&mut self, mut bytes: &[u8], mut on: impl FnMut(u8, &[u8])) {
        while !bytes.is_empty() {
            if self.header_len < 5 {
                let take = (5 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len < 5 {
                    return;
                }
                let len = i32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]);
                self.remaining = usize::try_from(len).unwrap_or(4).saturating_sub(4);
                self.keep = self.keeps(self.header[0]);
                self.body.clear();
            }
            let take = self.remaining.min(bytes.len());
            if self.keep {
                self.body.extend_from_slice(&bytes[..take]);
            }
            self.remaining -= take;
            bytes = &bytes[take..];
            if self.remaining == 0 {
                on(self.header[0], &self.body);
                self.header_len = 0;
                if self.body.capacity() > 64 * 1024 {
                    self.body = Vec::new();
                }
            }
        }
    }
}

impl Observer for Tap {
    fn see(&mut self, event: Event<'_>) {
        match event {
            Event::Read { bytes, .. } if !bytes.is_empty() => self.on_received(bytes),
            Event::Wrote { bufs, n } => {
                for bytes in Event::written(bufs, n) {
                    self.on_sent(bytes);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn tap() -> Tap {
        let session = Arc::new(Session::default());
        session.arm();
        Tap::new(session)
    }

    /// Messages cut at every byte are read as whole ones.
    #[test]
    fn tracks_dirty_sql_open_transactions_and_answers() {
        let mut t = tap();
        let mut sent = message(b'P', b"s1\0SELECT $1\0\0\0");
        sent.extend(message(b'B', b"\0s1\0\0\0\0\0\0\0"));
        sent.extend(message(b'S', b""));
        for byte in &sent {
            t.on_sent(std::slice::from_ref(byte));
        }
        assert!(!t.session.is_clean(), "unanswered");
        for byte in message(b'Z', b"I") {
            t.on_received(&[byte]);
        }
        assert!(t.session.is_clean());

        t.on_sent(&message(b'Q', b"BEGIN\0"));
        t.on_received(&message(b'Z', b"T"));
        assert!(!t.session.is_clean(), "in a transaction");
        t.on_sent(&message(b'Q', b"COMMIT\0"));
        t.on_received(&message(b'Z', b"I"));
        assert!(t.session.is_clean());

        // A dirty statement prepared once is dirty at every Bind.
        t.on_sent(&message(b'P', b"s2\0SET search_path = x\0\0\0"));
        t.session.reset();
        t.on_sent(&message(b'B', b"\0s2\0\0\0\0\0\0\0"));
        assert!(!t.session.is_clean());
        t.session.reset();
        t.on_sent(&message(b'C', b"Ss2\0"));
        t.on_sent(&message(b'B', b"\0s2\0\0\0\0\0\0\0"));
        assert!(t.session.is_clean(), "closed, and the name reused clean");

        // A reported setting changed by a function the SQL does not show.
        t.on_sent(&message(b'Q', b"SELECT my_function()\0"));
        t.on_received(&message(b'S', b"TimeZone\0UTC\0"));
        t.on_received(&message(b'Z', b"I"));
        assert!(!t.session.is_clean());
    }

    /// An error whose SQLSTATE says the server changed marks the session;
    /// any other error does not.
    #[test]
    fn reads_the_sqlstates_that_say_the_server_changed() {
        let mut t = tap();
        let error = |code: &str| {
            let body = format!("SERROR\0VERROR\0C{code}\0Mno\0\0");
            message(b'E', body.as_bytes())
        };
        t.on_received(&error("23505"));
        assert!(!t.session.server_changed(), "a unique violation");
        t.on_received(&error("57P01"));
        assert!(!t.session.server_changed(), "one session terminated");
        for byte in error("25006") {
            t.on_received(&[byte]);
        }
        assert!(t.session.server_changed(), "a write refused: read-only");
        for code in ["57P02", "57P03"] {
            let mut t = tap();
            t.on_received(&error(code));
            assert!(t.session.server_changed(), "{code}");
        }
        assert_eq!(sqlstate(b"Mx\0"), b"", "no code");
    }
}
