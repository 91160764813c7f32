//! Watching an HTTP/2 connection from below: [`FrameWatcher`], an IO wrapper
//! that reads the frame headers of the server → client byte stream as they
//! pass, and [`FrameState`], what it learned.
//!
//! hyper and tonic keep what the peer said about the connection to
//! themselves: the peer's `SETTINGS_MAX_CONCURRENT_STREAMS`, whether it sent
//! `GOAWAY`. A pool needs both: the first says how many borrowers a
//! connection can carry, the second that the connection is *draining* and
//! must not be lent again. The watcher sits between the client and the
//! socket, passes every byte through untouched, and parses only the 9-byte
//! frame headers (24-bit length, type, flags, stream id), skipping payloads
//! except the few bytes of `SETTINGS` and `GOAWAY` it needs (and the first
//! [`GOAWAY_DEBUG_MAX`] bytes of a `GOAWAY`'s debug data). It keeps a fixed
//! amount of state (frames split across reads at any byte are handled) and
//! allocates nothing per read.
//!
//! The first `SETTINGS` is announced only once the whole read it came in is
//! parsed: whoever waited for it ([`FrameState::first_settings`]) also sees a
//! `GOAWAY` the server sent in the same write.
//!
//! The `http2` and `grpc` managers use it; it works with any client that
//! takes a tokio [`AsyncRead`] + [`AsyncWrite`] (or, through
//! `hyper_util::rt::TokioIo`, hyper's IO traits).
//!
//! ```
//! use connpool::managers::h2_frames::FrameWatcher;
//! use tokio::io::AsyncReadExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! // A server's first frame: SETTINGS with MAX_CONCURRENT_STREAMS = 8.
//! let settings: &[u8] = &[0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0x0, 0x3, 0, 0, 0, 8];
//! let mut watched = FrameWatcher::new(settings);
//! let state = watched.state();
//! let mut bytes = Vec::new();
//! watched.read_to_end(&mut bytes).await?; // what the client reads: unchanged
//! assert_eq!(bytes, settings);
//! assert_eq!(state.peer_max_concurrent_streams(), Some(8));
//! assert!(state.settings_received() && state.is_closed() && !state.goaway_received());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::manager::Lending;

/// Frame type `SETTINGS` (RFC 9113 §6.5).
const SETTINGS: u8 = 0x4;
/// Frame type `GOAWAY` (RFC 9113 §6.8).
const GOAWAY: u8 = 0x7;
/// The `ACK` flag of a `SETTINGS` frame.
const ACK: u8 = 0x1;
/// `SETTINGS_MAX_CONCURRENT_STREAMS`.
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// No `MAX_CONCURRENT_STREAMS` received yet (the value is a `u32`).
const NO_LIMIT: u64 = u64::MAX;
/// How many bytes of a `GOAWAY`'s debug data the watcher keeps
/// ([`FrameState::goaway_debug_data`]); the rest is skipped.
pub const GOAWAY_DEBUG_MAX: usize = 64;

/// How the watched stream ended, in [`FrameState`].
const OPEN: u8 = 0;
const EOF: u8 = 1;
const FAILED: u8 = 2;
const DROPPED: u8 = 3;

/// What a [`FrameWatcher`] learned about its connection; shared (`Arc`) with
/// whoever holds the connection. All reads are lock-free.
pub struct FrameState {
    max_concurrent_streams: AtomicU64,
    settings: AtomicBool,
    goaway: AtomicBool,
    goaway_error: AtomicU32,
    /// The debug data of the last `GOAWAY` read whole: its first bytes, how
    /// many, and whether there were more.
    goaway_debug: Mutex<Option<DebugData>>,
    ended: AtomicU8,
    changed: Notify,
}

/// The kept start of a `GOAWAY`'s debug data.
#[derive(Clone, Copy)]
struct DebugData {
    bytes: [u8; GOAWAY_DEBUG_MAX],
    len: usize,
    truncated: bool,
}

impl FrameState {
    fn new() -> Self {
        Self {
            max_concurrent_streams: AtomicU64::new(NO_LIMIT),
            settings: AtomicBool::new(false),
            goaway: AtomicBool::new(false),
            goaway_error: AtomicU32::new(0),
            goaway_debug: Mutex::new(None),
            ended: AtomicU8::new(OPEN),
            changed: Notify::new(),
        }
    }

    /// The peer's `SETTINGS_MAX_CONCURRENT_STREAMS` from its latest
    /// `SETTINGS` frame that set it; `None` while it has set none (HTTP/2
    /// then means "no limit").
    pub fn peer_max_concurrent_streams(&self) -> Option<u32> {
        match self.max_concurrent_streams.load(Ordering::Acquire) {
            NO_LIMIT => None,
            n => Some(n as u32),
        }
    }

    /// Whether the peer's first (non-ACK) `SETTINGS` frame has arrived.
    pub fn settings_received(&self) -> bool {
        self.settings.load(Ordering::Acquire)
    }

    /// Whether the peer sent `GOAWAY`: the connection is draining, and takes
    /// no new streams.
    pub fn goaway_received(&self) -> bool {
        self.goaway.load(Ordering::Acquire)
    }

    /// The error code of the peer's last `GOAWAY` (0: `NO_ERROR`, a graceful
    /// shutdown; 0xb: `ENHANCE_YOUR_CALM`, which gRPC servers send as
    /// `too_many_pings`), if one arrived.
    pub fn goaway_error_code(&self) -> Option<u32> {
        self.goaway_received()
            .then(|| self.goaway_error.load(Ordering::Acquire))
    }

    /// The debug data of the peer's last `GOAWAY` (its first
    /// [`GOAWAY_DEBUG_MAX`] bytes; empty: it sent none), once that frame was
    /// read whole. grpc-go, for example, sends `too_many_pings`.
    pub fn goaway_debug_data(&self) -> Option<Vec<u8>> {
        self.goaway_debug
            .lock()
            .as_ref()
            .map(|d| d.bytes[..d.len].to_vec())
    }

    /// The `GOAWAY` debug data as text, if it is short and printable (UTF-8
    /// without control characters; cut at [`GOAWAY_DEBUG_MAX`] bytes, then
    /// marked with `…`): fit for an error message.
    pub(crate) fn goaway_debug_text(&self) -> Option<String> {
        let d = (*self.goaway_debug.lock())?;
        let bytes = &d.bytes[..d.len];
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            // Cut inside a character: keep the whole ones.
            Err(e) if d.truncated && e.error_len().is_none() => {
                std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?
            }
            Err(_) => return None,
        };
        if text.is_empty() || text.chars().any(char::is_control) {
            return None;
        }
        Some(if d.truncated {
            format!("{text}…")
        } else {
            text.to_owned()
        })
    }

    /// Whether the stream ended: end of stream from the peer, a read or write
    /// error, or the IO was dropped (the client closed the connection, for
    /// example after a missed keepalive PING).
    pub fn is_closed(&self) -> bool {
        self.ended.load(Ordering::Acquire) != OPEN
    }

    /// Whether the connection cannot take new requests: `GOAWAY` received or
    /// the stream ended.
    pub fn is_unusable(&self) -> bool {
        self.goaway_received() || self.is_closed()
    }

    /// Waits until the peer's first `SETTINGS` frame arrived (`true`) or the
    /// stream ended before it did (`false`). Unbounded: put a timeout around it.
    pub async fn first_settings(&self) -> bool {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.settings_received() {
                return true;
            }
            if self.is_closed() {
                return false;
            }
            changed.await;
        }
    }

    fn end(&self, how: u8) {
        if self
            .ended
            .compare_exchange(OPEN, how, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.changed.notify_waiters();
        }
    }
}

impl fmt::Debug for FrameState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameState")
            .field(
                "peer_max_concurrent_streams",
                &self.peer_max_concurrent_streams(),
            )
            .field("settings_received", &self.settings_received())
            .field("goaway_error_code", &self.goaway_error_code())
            .field(
                "ended",
                &match self.ended.load(Ordering::Acquire) {
                    OPEN => "no",
                    EOF => "end of stream",
                    FAILED => "error",
                    _ => "dropped",
                },
            )
            .finish()
    }
}

/// The frame parser: where in the byte stream it is. Fixed size.
#[derive(Debug)]
struct Parser {
    header: [u8; 9],
    /// Header bytes collected (0..9); 9: inside the payload.
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    remaining: u32,
    /// The current frame's type and flags.
    kind: u8,
    flags: u8,
    /// Payload bytes of the current frame seen so far.
    offset: u32,
    /// A SETTINGS entry (6 bytes) or the GOAWAY head (8 bytes) being collected.
    field: [u8; 8],
    /// The start of the current GOAWAY's debug data.
    debug: [u8; GOAWAY_DEBUG_MAX],
    /// A non-ACK SETTINGS frame ended in the bytes being fed: announced once
    /// they are all parsed.
    settings_pending: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Self {
            header: [0; 9],
            header_len: 0,
            remaining: 0,
            kind: 0,
            flags: 0,
            offset: 0,
            field: [0; 8],
            debug: [0; GOAWAY_DEBUG_MAX],
            settings_pending: false,
        }
    }
}

impl Parser {
    /// Feeds bytes the peer sent, in order. A first `SETTINGS` among them is
    /// announced after all of them are parsed, so that a waiter woken by it
    /// sees what came with it (a `GOAWAY` in the same read).
    fn feed(&mut self, bytes: &[u8], state: &FrameState) {
        self.parse(bytes, state);
        if std::mem::take(&mut self.settings_pending) {
            settings_done(state);
        }
    }

    fn parse(&mut self, mut bytes: &[u8], state: &FrameState) {
        while !bytes.is_empty() {
            if self.header_len < 9 {
                let take = (9 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len == 9 {
                    let h = self.header;
                    self.remaining = u32::from_be_bytes([0, h[0], h[1], h[2]]);
                    self.kind = h[3];
                    self.flags = h[4];
                    self.offset = 0;
                    self.frame_started();
                    if self.remaining == 0 {
                        self.header_len = 0;
                    }
                }
                continue;
            }
            let take = (self.remaining as usize).min(bytes.len());
            self.payload(&bytes[..take], state);
            self.remaining -= take as u32;
            bytes = &bytes[take..];
            if self.remaining == 0 {
                self.header_len = 0;
            }
        }
    }

    fn frame_started(&mut self) {
        if self.kind == SETTINGS && self.flags & ACK == 0 && self.remaining == 0 {
            self.settings_pending = true;
        }
    }

    fn payload(&mut self, bytes: &[u8], state: &FrameState) {
        match self.kind {
            SETTINGS if self.flags & ACK == 0 => {
                for &b in bytes {
                    let at = (self.offset % 6) as usize;
                    self.field[at] = b;
                    self.offset += 1;
                    if at == 5 {
                        let f = self.field;
                        if u16::from_be_bytes([f[0], f[1]]) == MAX_CONCURRENT_STREAMS {
                            let n = u32::from_be_bytes([f[2], f[3], f[4], f[5]]);
                            state
                                .max_concurrent_streams
                                .store(u64::from(n), Ordering::Release);
                        }
                    }
                }
                if self.remaining as usize == bytes.len() {
                    self.settings_pending = true;
                }
            }
            GOAWAY => {
                for &b in bytes {
                    let at = self.offset as usize;
                    if at < 8 {
                        self.field[at] = b;
                        if at == 7 {
                            let f = self.field;
                            let code = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                            state.goaway_error.store(code, Ordering::Release);
                            state.goaway.store(true, Ordering::Release);
                            state.changed.notify_waiters();
                        }
                    } else if at - 8 < GOAWAY_DEBUG_MAX {
                        self.debug[at - 8] = b;
                    } else {
                        break; // the rest of the debug data: skipped
                    }
                    self.offset += 1;
                }
                if self.remaining as usize == bytes.len() && self.offset >= 8 {
                    // The frame is complete: its debug data replaces the last.
                    let h = self.header;
                    let total = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize - 8;
                    *state.goaway_debug.lock() = Some(DebugData {
                        bytes: self.debug,
                        len: total.min(GOAWAY_DEBUG_MAX),
                        truncated: total > GOAWAY_DEBUG_MAX,
                    });
                }
            }
            _ => {}
        }
    }
}

fn settings_done(state: &FrameState) {
    if !state.settings.swap(true, Ordering::AcqRel) {
        state.changed.notify_waiters();
    }
}

/// An IO wrapper that passes bytes through unchanged and parses the frame
/// headers of what it reads (the peer's side of an HTTP/2 connection) into a
/// shared [`FrameState`]. See the [module docs](self).
///
/// Reads that end the stream (0 bytes into a non-empty buffer) or fail, a
/// failed write, and dropping the watcher all mark the state closed.
pub struct FrameWatcher<T> {
    io: T,
    parser: Parser,
    state: Arc<FrameState>,
}

impl<T> FrameWatcher<T> {
    /// Watches `io` (a fresh connection: its first byte read must be the
    /// start of a frame, as the server's side of an HTTP/2 connection is).
    pub fn new(io: T) -> Self {
        Self {
            io,
            parser: Parser::default(),
            state: Arc::new(FrameState::new()),
        }
    }

    /// What the watcher learned, shared.
    pub fn state(&self) -> Arc<FrameState> {
        Arc::clone(&self.state)
    }

    /// The wrapped IO.
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T> fmt::Debug for FrameWatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameWatcher")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<T> Drop for FrameWatcher<T> {
    fn drop(&mut self) {
        self.state.end(DROPPED);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FrameWatcher<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let asked = buf.remaining() > 0;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if new.is_empty() {
                    if asked {
                        this.state.end(EOF);
                    }
                } else {
                    this.parser.feed(new, &this.state);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                this.state.end(FAILED);
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> FrameWatcher<T> {
    fn check<R>(&self, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if let Poll::Ready(Err(_)) = &r {
            self.state.end(FAILED);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FrameWatcher<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.check(r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.check(r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_shutdown(cx);
        this.check(r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.check(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Waits for the first `SETTINGS` frame, bounded: how both managers decide a
/// fresh connection speaks HTTP/2.
pub(crate) async fn await_settings(
    frames: &FrameState,
    limit: Duration,
) -> Result<(), SettingsWait> {
    match tokio::time::timeout(limit, frames.first_settings()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(SettingsWait::Closed),
        Err(_) => Err(SettingsWait::TimedOut),
    }
}

/// Why [`await_settings`] failed.
pub(crate) enum SettingsWait {
    Closed,
    TimedOut,
}

/// Why a fresh connection is unusable although its first `SETTINGS`
/// arrived: the peer already sent `GOAWAY` (in the same write, typically: a
/// server shutting down or at its connection limit accepts, then turns the
/// connection away at once), or the connection ended.
pub(crate) struct DeadOnArrival {
    /// The `GOAWAY` error code; `None`: no `GOAWAY`, the connection ended.
    pub(crate) goaway: Option<u32>,
    /// The `GOAWAY` debug data, if short and printable.
    pub(crate) debug_data: Option<String>,
}

/// Checks a fresh connection once its first `SETTINGS` arrived (and again
/// after anything else the dial waits for): `Some` if it cannot be lent,
/// because the watcher saw `GOAWAY` or the end of the stream, or `closed`
/// (the client's own view) says so. The first `SETTINGS` is announced only
/// after the whole read it came in was parsed, so a `GOAWAY` sent with it is
/// seen here.
pub(crate) fn dead_on_arrival(frames: &FrameState, closed: bool) -> Option<DeadOnArrival> {
    (closed || frames.is_unusable()).then(|| DeadOnArrival {
        goaway: frames.goaway_error_code(),
        debug_data: frames.goaway_debug_text(),
    })
}

/// The message of a dial that failed with [`DeadOnArrival`]; `what` names
/// the protocol (`HTTP/2`, `gRPC`).
pub(crate) fn fmt_dead_on_arrival(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    goaway: Option<u32>,
    debug_data: Option<&str>,
) -> fmt::Result {
    match (goaway, debug_data) {
        (Some(code), Some(debug)) => write!(
            f,
            "{what} server sent GOAWAY (error code {code:#x}, {debug:?}) during connection setup: the new connection is draining"
        ),
        (Some(code), None) => write!(
            f,
            "{what} server sent GOAWAY (error code {code:#x}) during connection setup: the new connection is draining"
        ),
        (None, _) => write!(
            f,
            "{what} connection closed during setup, right after the server's SETTINGS"
        ),
    }
}

/// `Lending::shared` at the peer's stream limit (none: `usize::MAX`, for the
/// pool to clamp).
pub(crate) fn lend_by_stream_limit<C: Clone>(frames: &FrameState) -> Lending<C> {
    Lending::shared(
        frames
            .peer_max_concurrent_streams()
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.extend([kind, flags]);
        f.extend(stream.to_be_bytes());
        f.extend(payload);
        f
    }

    fn setting(id: u16, value: u32) -> Vec<u8> {
        let mut s = id.to_be_bytes().to_vec();
        s.extend(value.to_be_bytes());
        s
    }

    /// A server's side of a connection: SETTINGS (header table size, then
    /// MAX_CONCURRENT_STREAMS 8, then initial window size), a WINDOW_UPDATE,
    /// a SETTINGS ACK, HEADERS and DATA with payloads full of bytes that look
    /// like frame types, a SETTINGS lowering the limit to 3, a PING, then a
    /// GOAWAY with ENHANCE_YOUR_CALM and debug data.
    fn conversation() -> Vec<u8> {
        let mut s = [setting(0x1, 4096), setting(0x3, 8), setting(0x4, 65535)].concat();
        let mut bytes = frame(SETTINGS, 0, 0, &s);
        bytes.extend(frame(0x8, 0, 0, &[0, 0, 0x10, 0]));
        bytes.extend(frame(SETTINGS, ACK, 0, &[]));
        bytes.extend(frame(0x1, 0x4, 1, &[0x7; 40]));
        bytes.extend(frame(0x0, 0x1, 1, &[0x4, 0x7, 0, 0, 3, 0x4, 0, 0, 0, 0]));
        s = setting(0x3, 3);
        bytes.extend(frame(SETTINGS, 0, 0, &s));
        bytes.extend(frame(0x6, 0, 0, &[1, 2, 3, 4, 5, 6, 7, 8]));
        let mut goaway = 1u32.to_be_bytes().to_vec();
        goaway.extend(0xbu32.to_be_bytes());
        goaway.extend(b"too_many_pings");
        bytes.extend(frame(GOAWAY, 0, 0, &goaway));
        bytes
    }

    fn feed_in_pieces(bytes: &[u8], cuts: &[usize]) -> FrameState {
        let state = FrameState::new();
        let mut parser = Parser::default();
        let mut from = 0;
        for &cut in cuts.iter().chain([&bytes.len()]) {
            parser.feed(&bytes[from..cut], &state);
            from = cut;
        }
        state
    }

    #[test]
    fn whole_conversation_at_once() {
        let state = feed_in_pieces(&conversation(), &[]);
        assert!(state.settings_received());
        assert_eq!(state.peer_max_concurrent_streams(), Some(3));
        assert_eq!(state.goaway_error_code(), Some(0xb));
        assert!(state.is_unusable() && !state.is_closed());
    }

    #[test]
    fn split_at_every_position_and_every_pair() {
        let bytes = conversation();
        for i in 0..=bytes.len() {
            let state = feed_in_pieces(&bytes, &[i]);
            assert_eq!(state.peer_max_concurrent_streams(), Some(3), "cut at {i}");
            assert_eq!(state.goaway_error_code(), Some(0xb), "cut at {i}");
            assert_eq!(
                state.goaway_debug_data().as_deref(),
                Some(&b"too_many_pings"[..]),
                "cut at {i}"
            );
            for j in i..=bytes.len() {
                let state = feed_in_pieces(&bytes, &[i, j]);
                assert_eq!(state.peer_max_concurrent_streams(), Some(3), "{i}/{j}");
                assert_eq!(state.goaway_error_code(), Some(0xb), "{i}/{j}");
                assert_eq!(
                    state.goaway_debug_text().as_deref(),
                    Some("too_many_pings"),
                    "{i}/{j}"
                );
            }
        }
        // One byte at a time.
        let cuts: Vec<usize> = (1..bytes.len()).collect();
        let state = feed_in_pieces(&bytes, &cuts);
        assert_eq!(state.peer_max_concurrent_streams(), Some(3));
        assert!(state.goaway_received());
    }

    #[test]
    fn state_as_each_frame_arrives() {
        let bytes = conversation();
        let state = FrameState::new();
        let mut parser = Parser::default();
        // The first SETTINGS frame: 9 + 18 bytes.
        parser.feed(&bytes[..26], &state);
        assert!(!state.settings_received(), "one byte short");
        assert_eq!(
            state.peer_max_concurrent_streams(),
            Some(8),
            "entry 2 complete"
        );
        parser.feed(&bytes[26..27], &state);
        assert!(state.settings_received());
        assert!(!state.goaway_received());
        // Up to the last byte of the GOAWAY's error code.
        let goaway_at = bytes.len() - (9 + 8 + 14);
        parser.feed(&bytes[27..goaway_at + 16], &state);
        assert_eq!(state.peer_max_concurrent_streams(), Some(3));
        assert!(!state.goaway_received(), "error code incomplete");
        parser.feed(&bytes[goaway_at + 16..goaway_at + 17], &state);
        assert_eq!(state.goaway_error_code(), Some(0xb));
        assert_eq!(state.goaway_debug_data(), None, "debug data not read yet");
        parser.feed(&bytes[goaway_at + 17..bytes.len() - 1], &state);
        assert_eq!(state.goaway_debug_data(), None, "one byte short");
        parser.feed(&bytes[bytes.len() - 1..], &state);
        assert_eq!(state.goaway_debug_text().as_deref(), Some("too_many_pings"));
        assert_eq!(parser.header_len, 0, "at a frame boundary");
    }

    fn goaway(code: u32, debug: &[u8]) -> Vec<u8> {
        let mut payload = 0u32.to_be_bytes().to_vec();
        payload.extend(code.to_be_bytes());
        payload.extend(debug);
        frame(GOAWAY, 0, 0, &payload)
    }

    #[test]
    fn goaway_debug_data_kept_short_and_shown_only_if_printable() {
        // None sent: empty, and no text.
        let state = feed_in_pieces(&goaway(0, b""), &[]);
        assert_eq!(state.goaway_debug_data(), Some(Vec::new()));
        assert_eq!(state.goaway_debug_text(), None);
        // Not printable: kept, but no text.
        let state = feed_in_pieces(&goaway(2, b"line\nbreak"), &[]);
        assert_eq!(state.goaway_debug_data().unwrap(), b"line\nbreak");
        assert_eq!(state.goaway_debug_text(), None);
        let state = feed_in_pieces(&goaway(2, &[0xff, 0xfe]), &[]);
        assert_eq!(state.goaway_debug_text(), None);
        // Long: the first GOAWAY_DEBUG_MAX bytes, marked as cut; a character
        // cut in two is left out.
        let long = "é".repeat(GOAWAY_DEBUG_MAX); // 2 bytes each
        let state = feed_in_pieces(&goaway(0, long.as_bytes()), &[20, 90]);
        assert_eq!(
            state.goaway_debug_data().unwrap(),
            &long.as_bytes()[..GOAWAY_DEBUG_MAX]
        );
        let expected = format!("{}…", "é".repeat(GOAWAY_DEBUG_MAX / 2));
        assert_eq!(state.goaway_debug_text(), Some(expected));
        let odd = format!("x{long}");
        let state = feed_in_pieces(&goaway(0, odd.as_bytes()), &[]);
        let expected = format!("x{}…", "é".repeat(GOAWAY_DEBUG_MAX / 2 - 1));
        assert_eq!(state.goaway_debug_text(), Some(expected));
        // A later GOAWAY replaces the first's debug data.
        let mut two = goaway(0, b"first");
        two.extend(goaway(0xb, b""));
        let state = feed_in_pieces(&two, &[]);
        assert_eq!(state.goaway_error_code(), Some(0xb));
        assert_eq!(state.goaway_debug_data(), Some(Vec::new()));
    }

    // A server that answers a new connection with SETTINGS and GOAWAY in one
    // write: whoever waits for the first SETTINGS must see the GOAWAY too,
    // or it takes a draining connection for a usable one. The watcher
    // announces SETTINGS only once the whole read is parsed. Another thread
    // watches the flags while the parser works through a read with many
    // frames between the two (a few milliseconds of parsing: wide enough
    // for the watching thread to look in between, if it could).
    #[test]
    fn settings_are_announced_after_the_rest_of_their_read() {
        let mut read = frame(SETTINGS, 0, 0, &setting(0x3, 10));
        for _ in 0..100_000 {
            read.extend(frame(0x6, 0, 0, &[0; 8])); // PING
        }
        read.extend(goaway(0, b"shutting down"));
        for round in 0..3 {
            let state = Arc::new(FrameState::new());
            let ready = Arc::new(std::sync::Barrier::new(2));
            let watcher = std::thread::spawn({
                let (state, ready) = (Arc::clone(&state), Arc::clone(&ready));
                move || {
                    ready.wait();
                    while !state.settings_received() {
                        std::hint::spin_loop();
                    }
                    (state.goaway_received(), state.goaway_debug_text())
                }
            });
            ready.wait();
            Parser::default().feed(&read, &state);
            let (goaway, debug) = watcher.join().unwrap();
            assert!(
                goaway,
                "round {round}: SETTINGS seen before the GOAWAY of its read"
            );
            assert_eq!(debug.as_deref(), Some("shutting down"), "round {round}");
        }
    }

    #[test]
    fn settings_without_a_limit_and_empty_settings() {
        let state = feed_in_pieces(&frame(SETTINGS, 0, 0, &[]), &[]);
        assert!(state.settings_received());
        assert_eq!(state.peer_max_concurrent_streams(), None);
        let state = feed_in_pieces(&frame(SETTINGS, 0, 0, &setting(0x4, 1 << 20)), &[4]);
        assert!(state.settings_received());
        assert_eq!(state.peer_max_concurrent_streams(), None);
        // An ACK is not the peer's settings.
        let state = feed_in_pieces(&frame(SETTINGS, ACK, 0, &[]), &[]);
        assert!(!state.settings_received());
        // Limit 0 is a limit.
        let state = feed_in_pieces(&frame(SETTINGS, 0, 0, &setting(0x3, 0)), &[3, 11]);
        assert_eq!(state.peer_max_concurrent_streams(), Some(0));
        // u32::MAX is a limit too, not "none".
        let state = feed_in_pieces(&frame(SETTINGS, 0, 0, &setting(0x3, u32::MAX)), &[]);
        assert_eq!(state.peer_max_concurrent_streams(), Some(u32::MAX));
    }

    #[tokio::test]
    async fn eof_error_and_drop_end_the_state_and_wake_waiters() {
        use tokio::io::AsyncReadExt;

        // End of stream before any SETTINGS: the wait says false.
        let mut w = FrameWatcher::new(&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..]);
        let state = w.state();
        let waiting = tokio::spawn({
            let state = w.state();
            async move { state.first_settings().await }
        });
        let mut sink = Vec::new();
        w.read_to_end(&mut sink).await.unwrap();
        assert!(state.is_closed());
        assert!(!waiting.await.unwrap());

        // Dropping the watcher (the client closed the connection).
        let (client, _server) = tokio::io::duplex(64);
        let w = FrameWatcher::new(client);
        let state = w.state();
        assert!(!state.is_closed());
        drop(w);
        assert!(state.is_closed() && state.is_unusable());

        // A SETTINGS frame wakes the waiter with true.
        let (client, mut server) = tokio::io::duplex(64);
        let mut w = FrameWatcher::new(client);
        let state = w.state();
        let waiting = tokio::spawn({
            let state = w.state();
            async move { state.first_settings().await }
        });
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 3];
            while w.read(&mut buf).await.unwrap() > 0 {}
        });
        use tokio::io::AsyncWriteExt;
        server
            .write_all(&frame(SETTINGS, 0, 0, &setting(0x3, 100)))
            .await
            .unwrap();
        assert!(waiting.await.unwrap());
        assert_eq!(state.peer_max_concurrent_streams(), Some(100));
        drop(server);
        reader.await.unwrap();
        assert!(state.is_closed());
    }
}
