//! The parser fed a server's side of a connection cut at every point, and
//! the watcher's state as the stream ends.

use std::sync::Arc;

use super::parser::{ACK, GOAWAY, Parser, SETTINGS};
use super::state::{FrameState, GOAWAY_DEBUG_MAX};
use super::watcher::watcher;

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
    let mut w = watcher(&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..]);
    let state = super::state(&w);
    let waiting = tokio::spawn({
        let state = super::state(&w);
        async move { state.first_settings().await }
    });
    let mut sink = Vec::new();
    w.read_to_end(&mut sink).await.unwrap();
    assert!(state.is_closed());
    assert!(!waiting.await.unwrap());

    // Dropping the watcher (the client closed the connection).
    let (client, _server) = tokio::io::duplex(64);
    let w = watcher(client);
    let state = super::state(&w);
    assert!(!state.is_closed());
    drop(w);
    assert!(state.is_closed() && state.is_unusable());

    // A SETTINGS frame wakes the waiter with true.
    let (client, mut server) = tokio::io::duplex(64);
    let mut w = watcher(client);
    let state = super::state(&w);
    let waiting = tokio::spawn({
        let state = super::state(&w);
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

/// A server's first frame, `SETTINGS` with `MAX_CONCURRENT_STREAMS` = 8,
/// reaches the client unchanged and is learned.
#[tokio::test]
async fn a_settings_frame_read_whole_is_learned_and_passed_through() {
    use tokio::io::AsyncReadExt;

    let settings: &[u8] = &[0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0x0, 0x3, 0, 0, 0, 8];
    let mut watched = watcher(settings);
    let state = super::state(&watched);
    let mut bytes = Vec::new();
    watched.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(bytes, settings);
    assert_eq!(state.peer_max_concurrent_streams(), Some(8));
    assert!(state.settings_received() && state.is_closed() && !state.goaway_received());
}
