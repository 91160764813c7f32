//! The watcher over arbitrary bytes (random, and frames with random headers
//! and payloads) cut at arbitrary points: it never panics, passes every
//! byte through unchanged, and learns the same from any split of the same
//! bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use proptest::prelude::*;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::parser::Parser;
use super::state::FrameState;
use super::watcher::watcher;

/// Reads `bytes` in pieces: each read ends at the next cut (or earlier, if
/// the caller's buffer is smaller).
struct Pieces {
    bytes: Vec<u8>,
    cuts: Vec<usize>,
    at: usize,
}

impl AsyncRead for Pieces {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let end = this
            .cuts
            .iter()
            .copied()
            .find(|&c| c > this.at)
            .unwrap_or(this.bytes.len())
            .min(this.at + buf.remaining());
        buf.put_slice(&this.bytes[this.at..end]);
        this.at = end;
        Poll::Ready(Ok(()))
    }
}

/// What a state says, comparable.
fn learned(state: &FrameState) -> impl PartialEq + std::fmt::Debug {
    (
        state.settings_received(),
        state.peer_max_concurrent_streams(),
        state.goaway_received(),
        state.goaway_error_code(),
        state.goaway_debug_data(),
    )
}

/// A frame with an arbitrary type, flags and stream, its length header
/// true to its payload (or not, when `lie` is set).
fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(0x4u8), Just(0x7u8), any::<u8>()],
        any::<u8>(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::option::of(any::<u32>()),
    )
        .prop_map(|(kind, flags, stream, payload, lie)| {
            let len = lie.map_or(payload.len() as u32, |l| l & 0xff_ffff);
            let mut f = len.to_be_bytes()[1..].to_vec();
            f.extend([kind, flags]);
            f.extend(stream.to_be_bytes());
            f.extend(payload);
            f
        })
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec(any_frame(), 0..12).prop_map(|frames| frames.concat()),
    ]
}

/// Bytes and sorted cut points inside them.
fn bytes_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    any_bytes().prop_flat_map(|bytes| {
        let len = bytes.len();
        (
            Just(bytes),
            prop::collection::vec(0..=len, 0..16).prop_map(|mut cuts| {
                cuts.sort_unstable();
                cuts
            }),
        )
    })
}

proptest! {
    #[test]
    fn passes_every_byte_through_and_learns_the_same_from_any_split(
        (bytes, cuts) in bytes_and_cuts(),
        read_size in 1usize..64,
    ) {
        let mut watcher = watcher(Pieces { bytes: bytes.clone(), cuts, at: 0 });
        let state = super::state(&watcher);
        let mut out = Vec::new();
        let mut buf = vec![0; read_size];
        block_on(async {
            loop {
                let n = watcher.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
        });
        prop_assert_eq!(&out, &bytes);

        let whole = FrameState::new();
        Parser::default().feed(&bytes, &whole);
        prop_assert_eq!(learned(&state), learned(&whole));
    }
}

/// Runs a future that never waits (the reader is always ready).
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}
