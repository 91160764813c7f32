//! The frame parser: [`Parser`] reads frame headers, and the `SETTINGS` and
//! `GOAWAY` payloads, into a [`FrameState`].

use std::sync::atomic::Ordering;

use super::state::{DebugData, FrameState, GOAWAY_DEBUG_MAX};

/// Frame type `SETTINGS` (RFC 9113 §6.5).
pub(super) const SETTINGS: u8 = 0x4;
/// Frame type `GOAWAY` (RFC 9113 §6.8).
pub(super) const GOAWAY: u8 = 0x7;
/// The `ACK` flag of a `SETTINGS` frame.
pub(super) const ACK: u8 = 0x1;
/// `SETTINGS_MAX_CONCURRENT_STREAMS`.
const MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// The frame parser: where in the byte stream it is. Fixed size.
#[derive(Debug)]
pub(super) struct Parser {
    header: [u8; 9],
    /// Header bytes collected (0..9); 9: inside the payload.
    pub(super) header_len: usize,
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
    pub(super) fn feed(&mut self, bytes: &[u8], state: &FrameState) {
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
