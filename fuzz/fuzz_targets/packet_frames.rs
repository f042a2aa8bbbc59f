//! The packet layer on a *sequence* of frames (so IP fragment reassembly,
//! TCP reassembly, their timeouts and evictions are reached), each DNS
//! payload decoded and rendered as an event-log line, which must be valid
//! JSON whatever the bytes were.
//!
//! Input: linktype (u16 LE), one knob byte (small or default table
//! limits), then frames: time step in ms (u8), length (u16 LE), bytes.
//! The check itself is `checks::packet_frames` (shared with tests/fuzz_regressions.rs).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::packet_frames(data));
