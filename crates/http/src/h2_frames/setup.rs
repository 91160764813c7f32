//! The checks of a fresh HTTP/2 connection that the HTTP and gRPC managers make: its first
//! `SETTINGS` in time, and no `GOAWAY` or end of stream right after it.

use std::fmt;
use std::time::Duration;

use super::state::FrameState;

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
