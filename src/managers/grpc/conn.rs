//! [`GrpcConn`]: the pooled handle to one channel over one HTTP/2 connection.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use tonic::transport::Channel;

use crate::managers::h2_frames::FrameState;

/// A pooled gRPC connection: a tonic [`Channel`] over exactly one HTTP/2
/// connection (it dereferences to the channel; clone the channel into any
/// generated client). Cheap to clone, one reference count: each borrower of
/// a shared connection holds its own handle, and the pool makes one per
/// checkout.
#[derive(Clone)]
pub struct GrpcConn {
    pub(super) inner: Arc<ConnInner>,
}

/// What the handles of one connection share. The channel is not cloned per
/// handle: a tonic `Channel` clone allocates (its buffer's sender state),
/// and borrowers clone the channel anyway to build a client.
pub(super) struct ConnInner {
    pub(super) channel: Channel,
    pub(super) frames: Arc<FrameState>,
    pub(super) local: SocketAddr,
    pub(super) peer: SocketAddr,
}

impl GrpcConn {
    /// The channel.
    pub fn channel(&self) -> &Channel {
        &self.inner.channel
    }

    /// The connection's local address (tells connections apart).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`, from its latest
    /// `SETTINGS` frame that set it; `None`: no limit set.
    pub fn peer_max_concurrent_streams(&self) -> Option<u32> {
        self.inner.frames.peer_max_concurrent_streams()
    }

    /// Whether the server sent `GOAWAY`: calls in flight finish, new ones
    /// fail; the pool lends this connection to no one new.
    pub fn is_draining(&self) -> bool {
        self.inner.frames.goaway_received()
    }

    /// Whether no new call can go through: draining, or the connection ended
    /// (the channel does not reconnect).
    pub fn is_closed(&self) -> bool {
        self.inner.frames.is_unusable()
    }

    /// What the frame watcher learned about the connection.
    pub fn frame_state(&self) -> &FrameState {
        &self.inner.frames
    }
}

impl Deref for GrpcConn {
    type Target = Channel;

    fn deref(&self) -> &Channel {
        &self.inner.channel
    }
}

impl fmt::Debug for GrpcConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcConn")
            .field("local", &self.inner.local)
            .field("peer", &self.inner.peer)
            .field("frames", &self.inner.frames)
            .finish_non_exhaustive()
    }
}
