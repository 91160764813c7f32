//! [`FrameWatcher`]: the IO wrapper that feeds what it reads to a [`Parser`].

use std::fmt;
use std::sync::Arc;

use super::parser::Parser;
use super::state::{DROPPED, EOF, FAILED, FrameState};
use connpool_tcp::observed::{Event, Observed, Observer};

/// An IO wrapper that passes bytes through unchanged and parses the frame
/// headers of what it reads (the peer's side of an HTTP/2 connection) into a
/// shared [`FrameState`]. See the [module docs](super).
///
/// Reads that end the stream (0 bytes into a non-empty buffer) or fail, a
/// failed write, and dropping the watcher all mark the state closed.
pub(crate) type FrameWatcher<T> = Observed<T, Frames>;

/// Watches `io` (a fresh connection: its first byte read must be the
/// start of a frame, as the server's side of an HTTP/2 connection is).
pub(crate) fn watcher<T>(io: T) -> FrameWatcher<T> {
    Observed::new(
        io,
        Frames {
            parser: Parser::default(),
            state: Arc::new(FrameState::new()),
        },
    )
}

/// What `watcher` learned, shared.
pub(crate) fn state<T>(watcher: &FrameWatcher<T>) -> Arc<FrameState> {
    Arc::clone(&watcher.observer.state)
}

/// The [`Observer`] of a [`FrameWatcher`]: the parser and what it learned.
pub(crate) struct Frames {
    parser: Parser,
    state: Arc<FrameState>,
}

impl fmt::Debug for Frames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frames")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        self.state.end(DROPPED);
    }
}

impl Observer for Frames {
    fn see(&mut self, event: Event<'_>) {
        match event {
            Event::Read { bytes, eof } if eof => {
                debug_assert!(bytes.is_empty());
                self.state.end(EOF);
            }
            Event::Read { bytes, .. } if !bytes.is_empty() => self.parser.feed(bytes, &self.state),
            Event::Failed(_) => self.state.end(FAILED),
            _ => {}
        }
    }
}
