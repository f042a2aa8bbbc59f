//! The packet layer on a *sequence* of frames (so IP fragment reassembly,
//! TCP reassembly, their timeouts and evictions are reached), each DNS
//! payload decoded and rendered as an event-log line, which must be valid
//! JSON whatever the bytes were.
//!
//! Input: linktype (u16 LE), one knob byte (small or default table
//! limits), then frames: time step in ms (u8), length (u16 LE), bytes.
#![no_main]

use dnsmonitor::packet::{PacketConfig, PacketDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let linktype = i32::from(u16::from_le_bytes([data[0], data[1]]));
    let knobs = data[2];
    let mut cfg = PacketConfig::default();
    if knobs & 1 != 0 {
        // Tiny tables and buffers: the eviction and budget paths.
        cfg.max_fragment_datagrams = 2;
        cfg.max_tcp_flows = 2;
        cfg.max_tcp_buffer_bytes = 64;
    }
    if knobs & 2 != 0 {
        cfg.dns_ports = vec![53, 5353, 0];
    }
    let mut dec = PacketDecoder::new(cfg);
    let mut rest = &data[3..];
    let mut ts: i64 = 1_700_000_000_000_000;
    let mut line = Vec::new();
    while rest.len() >= 3 {
        let step = i64::from(rest[0]);
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let frame = &rest[3..3 + len];
        rest = &rest[3 + len..];
        // Large steps cross the fragment and flow timeouts.
        ts += if step >= 250 { step * 1_000_000 } else { step * 1_000 };
        dec.decode(linktype, ts, frame, |p| {
            assert!(p.data.len() <= 65_535, "a DNS message is at most 64 KiB");
            if let Ok(m) = dnsmonitor::dns::decode(p.data) {
                line.clear();
                dnsmonitor::dns::event::write_event(&mut line, 1, p, &m);
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(&line) {
                    panic!("event line is not JSON ({e}): {}", String::from_utf8_lossy(&line));
                }
            }
        });
    }
});
