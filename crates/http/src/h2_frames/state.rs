//! What the watcher learned: [`FrameState`], and the lending rule read from it.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use connpool_core::Lending;

/// No `MAX_CONCURRENT_STREAMS` received yet (the value is a `u32`).
const NO_LIMIT: u64 = u64::MAX;
/// How many bytes of a `GOAWAY`'s debug data the watcher keeps
/// ([`FrameState::goaway_debug_data`]); the rest is skipped.
pub(crate) const GOAWAY_DEBUG_MAX: usize = 64;

/// Calls in a row whose response did not come by their deadline that make
/// a connection unusable: the server (or the network to it) is silent. The
/// rule the Redis manager applies to its replies.
pub(crate) const UNANSWERED_LIMIT: u32 = 3;

/// How the watched stream ended, in [`FrameState`].
const OPEN: u8 = 0;
pub(super) const EOF: u8 = 1;
pub(super) const FAILED: u8 = 2;
pub(super) const DROPPED: u8 = 3;

/// What the frame watcher of an HTTP/2 connection (the reader of the
/// server's `SETTINGS` and `GOAWAY` frames beneath hyper) learned about its
/// connection; shared (`Arc`) with whoever holds the connection. All reads
/// are lock-free.
pub struct FrameState {
    pub(super) max_concurrent_streams: AtomicU64,
    pub(super) settings: AtomicBool,
    pub(super) goaway: AtomicBool,
    pub(super) goaway_error: AtomicU32,
    /// The debug data of the last `GOAWAY` read whole: its first bytes, how
    /// many, and whether there were more.
    pub(super) goaway_debug: Mutex<Option<DebugData>>,
    ended: AtomicU8,
    pub(super) changed: Notify,
    /// Calls in a row that got no response head by their deadline (reset
    /// by any response): counted by the per-call service.
    unanswered: AtomicU32,
    /// Whether a `GOAWAY` `too_many_pings` of this connection was taken
    /// into account (once, whichever handle sees it first).
    #[cfg(feature = "grpc")]
    calm_noted: AtomicBool,
}

/// The kept start of a `GOAWAY`'s debug data.
#[derive(Clone, Copy)]
pub(super) struct DebugData {
    pub(super) bytes: [u8; GOAWAY_DEBUG_MAX],
    pub(super) len: usize,
    pub(super) truncated: bool,
}

impl FrameState {
    pub(super) fn new() -> Self {
        Self {
            max_concurrent_streams: AtomicU64::new(NO_LIMIT),
            settings: AtomicBool::new(false),
            goaway: AtomicBool::new(false),
            goaway_error: AtomicU32::new(0),
            goaway_debug: Mutex::new(None),
            ended: AtomicU8::new(OPEN),
            changed: Notify::new(),
            unanswered: AtomicU32::new(0),
            #[cfg(feature = "grpc")]
            calm_noted: AtomicBool::new(false),
        }
    }

    /// True the first time it is called: the gRPC manager's once per
    /// connection for a `too_many_pings`.
    #[cfg(feature = "grpc")]
    pub(crate) fn first_calm_notice(&self) -> bool {
        !self.calm_noted.swap(true, Ordering::AcqRel)
    }

    /// A call on the connection got no response head by its deadline.
    pub(crate) fn note_unanswered(&self) {
        self.unanswered.fetch_add(1, Ordering::Relaxed);
    }

    /// A call on the connection got its response head.
    pub(crate) fn note_answered(&self) {
        if self.unanswered.load(Ordering::Relaxed) != 0 {
            self.unanswered.store(0, Ordering::Relaxed);
        }
    }

    /// Whether [`UNANSWERED_LIMIT`] calls in a row went unanswered.
    pub(crate) fn is_silent(&self) -> bool {
        self.unanswered.load(Ordering::Relaxed) >= UNANSWERED_LIMIT
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
    /// 64 bytes; empty: it sent none), once that frame was
    /// read whole. grpc-go, for example, sends `too_many_pings`.
    #[cfg_attr(not(any(test, feature = "grpc")), allow(dead_code))]
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

    /// Whether the connection cannot take new requests: `GOAWAY` received,
    /// the stream ended, or calls in a row went unanswered.
    pub fn is_unusable(&self) -> bool {
        self.goaway_received() || self.is_closed() || self.is_silent()
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

    pub(super) fn end(&self, how: u8) {
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

/// `Lending::shared` at the peer's stream limit (none: `usize::MAX`, for the
/// pool to clamp).
pub(crate) fn lend_by_stream_limit<C: Clone>(frames: &FrameState) -> Lending<C> {
    Lending::shared(
        frames
            .peer_max_concurrent_streams()
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX)),
    )
}
