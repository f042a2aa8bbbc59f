//! The DNS decoder on one message: never a panic; what it decodes renders
//! as a JSON event line, and its answers and names can be walked.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use dnsmonitor::packet::{Payload, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = dnsmonitor::dns::decode(data) else {
        return;
    };
    let _ = m.answers();
    if let Some(q) = &m.question {
        let text = q.qname.to_lowercase_string();
        assert!(q.qname.wire_len() <= 255, "a name is at most 255 octets");
        let _ = q.qname.suffix_hashes().count();
        let _ = text.len();
    }
    let p = Payload {
        ts_us: 1_700_000_000_000_000,
        src: IpAddr::V4(Ipv4Addr::LOCALHOST),
        dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
        sport: 53,
        dport: 40000,
        transport: Transport::Udp,
        data,
    };
    let mut line = Vec::new();
    dnsmonitor::dns::event::write_event(&mut line, 1, &p, &m);
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&line) {
        panic!("event line is not JSON ({e}): {}", String::from_utf8_lossy(&line));
    }
});
