//! Watching an HTTP/2 connection from below: [`FrameWatcher`](watcher::FrameWatcher), an IO wrapper
//! that reads the frame headers of the server → client byte stream as they
//! pass, and [`FrameState`], what it learned.
//!
//! hyper and tonic keep what the peer said about the connection to
//! themselves: whether it sent `GOAWAY`, and when its first `SETTINGS`
//! arrived. A pool needs both: the first says that the connection is
//! *draining* and must not be lent again, the second that the peer speaks
//! HTTP/2 at all (a dial waits for it). hyper's
//! `client::conn::http2::Connection::current_max_send_streams` does report
//! the peer's stream limit, but only on the connection future, which its
//! driver task owns and polls; the `SendRequest` handles the pool lends
//! cannot ask it. Since the watcher parses the `SETTINGS` frames anyway (to
//! see the first one), it reads `SETTINGS_MAX_CONCURRENT_STREAMS` from
//! them as well, which is what the pool lends by.
//!
//! The watcher sits between the client and the socket, passes every byte
//! through untouched, and parses only the 9-byte
//! frame headers (24-bit length, type, flags, stream id), skipping payloads
//! except the few bytes of `SETTINGS` and `GOAWAY` it needs (and the first
//! [`GOAWAY_DEBUG_MAX`](state::GOAWAY_DEBUG_MAX) bytes of a `GOAWAY`'s debug data). It keeps a fixed
//! amount of state (frames split across reads at any byte are handled) and
//! allocates nothing per read.
//!
//! The first `SETTINGS` is announced only once the whole read it came in is
//! parsed: whoever waited for it ([`FrameState::first_settings`]) also sees a
//! `GOAWAY` the server sent in the same write.
//!
//! The `http` and `grpc` managers use it; it works with any client that
//! takes a tokio [`AsyncRead`](tokio::io::AsyncRead) +
//! [`AsyncWrite`](tokio::io::AsyncWrite) (or, through
//! `hyper_util::rt::TokioIo`, hyper's IO traits).
//!
//! (The unit test `a_settings_frame_read_whole_is_learned_and_passed_through`
//! shows it on a server's first frame.)

mod parser;
#[cfg(test)]
mod prop_tests;
mod setup;
mod state;
#[cfg(test)]
mod tests;
mod watcher;

pub(crate) use setup::{
    DeadOnArrival, SettingsWait, await_settings, dead_on_arrival, fmt_dead_on_arrival,
};
pub use state::FrameState;
pub(crate) use state::lend_by_stream_limit;
pub(crate) use watcher::{state, watcher};
