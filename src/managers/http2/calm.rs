//! [`CalmDown`]: gRPC's keepalive back-off (gRFC A8). A server that finds a
//! client's keepalive PINGs too frequent closes the connection with
//! `GOAWAY ENHANCE_YOUR_CALM` and the debug data `too_many_pings`; the
//! client then doubles its PING interval for new connections to that
//! server, as grpc-go and grpc-java do, so it stops being cut off.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use parking_lot::Mutex;

use crate::managers::h2_frames::FrameState;

/// The `ENHANCE_YOUR_CALM` error code of HTTP/2.
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// The PING interval of new connections, per server address, after its
/// `too_many_pings`. Shared by a manager's clones.
#[derive(Debug, Default)]
pub(crate) struct CalmDown {
    intervals: Mutex<HashMap<SocketAddr, Duration>>,
}

impl CalmDown {
    /// The PING interval for a new connection to `peer`: `configured`,
    /// doubled for each time `peer` said `too_many_pings`.
    pub(crate) fn interval_for(
        &self,
        peer: SocketAddr,
        configured: Option<Duration>,
    ) -> Option<Duration> {
        configured.map(|d| {
            self.intervals
                .lock()
                .get(&peer)
                .copied()
                .unwrap_or(d)
                .max(d)
        })
    }

    /// Looks at a connection to `peer` dialed with a PING interval of
    /// `used`: if the server cut it off with `too_many_pings`, doubles the
    /// interval of new connections to `peer` (once per interval: the other
    /// connections cut off for the same interval change nothing more) and
    /// says so at `warn`.
    pub(crate) fn heed(&self, frames: &FrameState, peer: SocketAddr, used: Option<Duration>) {
        let Some(used) = used else {
            return;
        };
        if frames.goaway_error_code() != Some(ENHANCE_YOUR_CALM)
            || frames.goaway_debug_text().as_deref() != Some("too_many_pings")
        {
            return;
        }
        let doubled = used.saturating_mul(2);
        let mut intervals = self.intervals.lock();
        let now = intervals.entry(peer).or_insert(used);
        if *now >= doubled {
            return;
        }
        *now = doubled;
        drop(intervals);
        tracing::warn!(
            %peer,
            interval = ?doubled,
            "the server sent GOAWAY too_many_pings: new connections to it send keepalive PINGs half as often"
        );
    }
}
