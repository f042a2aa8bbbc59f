//! What each fuzz target checks, as plain functions: the libFuzzer targets
//! in fuzz_targets/ call them on generated inputs, and
//! tests/fuzz_regressions.rs calls them on every kept crash input
//! (fuzz/regressions/) and on real captures, blocklists and pipelines in
//! the normal test command. A panic is a finding.

use std::net::{IpAddr, Ipv4Addr};

use dnsmonitor::amqp::batch::PcapBatch;
use dnsmonitor::blocklist::{BlocklistBuilder, ListKind};
use dnsmonitor::config::Plan;
use dnsmonitor::dns::QName;
use dnsmonitor::packet::{PacketConfig, PacketDecoder, Payload, Transport};

/// Panics unless `line` is one valid JSON value.
fn json(line: &[u8]) {
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(line) {
        panic!(
            "event line is not JSON ({e}): {}",
            String::from_utf8_lossy(line)
        );
    }
}

/// The packet layer on a sequence of frames (fragment and TCP reassembly,
/// timeouts, evictions), each DNS payload decoded and rendered as an event
/// line that must be valid JSON.
///
/// Input: linktype (u16 LE), one knob byte (bit 0: tiny tables and
/// buffers; bit 1: more DNS ports), then frames: time step (u8; ms, or s
/// from 250 up), length (u16 LE), bytes.
pub fn packet_frames(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let linktype = i32::from(u16::from_le_bytes([data[0], data[1]]));
    let knobs = data[2];
    let mut cfg = PacketConfig::default();
    if knobs & 1 != 0 {
        cfg.max_fragment_datagrams = 2;
        cfg.max_tcp_flows = 2;
        cfg.max_tcp_buffer_bytes = 64;
        cfg.max_tcp_total_bytes = 100;
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
        ts += if step >= 250 {
            step * 1_000_000
        } else {
            step * 1_000
        };
        dec.decode(linktype, ts, frame, |p| {
            assert!(p.data.len() <= 65_535, "a DNS message is at most 64 KiB");
            if let Ok(m) = dnsmonitor::dns::decode(p.data) {
                line.clear();
                dnsmonitor::dns::event::write_event(&mut line, 1, p, &m);
                json(&line);
            }
        });
    }
}

/// The DNS decoder on one message: what it decodes renders as a JSON event
/// line, and its answers and names can be walked.
pub fn dns_decode(data: &[u8]) {
    let Ok(m) = dnsmonitor::dns::decode(data) else {
        return;
    };
    let _ = m.answers();
    if let Some(q) = &m.question {
        assert!(q.qname.wire_len() <= 255, "a name is at most 255 octets");
        let _ = q.qname.to_lowercase_string();
        let _ = q.qname.suffix_hashes().count();
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
    json(&line);
}

/// The packet-batch parser: an accepted body's records lie inside it and
/// agree with its count and newest time.
pub fn pcap_batch(data: &[u8]) {
    let Ok(b) = PcapBatch::parse(data) else {
        return;
    };
    let mut n = 0u64;
    let mut newest: Option<i64> = None;
    for r in b.records() {
        n += 1;
        newest = Some(newest.map_or(r.ts_us, |t| t.max(r.ts_us)));
        assert!(r.data.len() <= data.len());
    }
    assert_eq!(n, b.packets);
    assert_eq!(newest, b.max_ts_us);
}

/// The blocklist parsers through a whole list build: every domain loaded
/// is found again by lookup, unless an exception names it.
pub fn blocklist(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut b = BlocklistBuilder::new();
    let kind = if data.first() == Some(&b'!') {
        ListKind::Allow
    } else {
        ListKind::Block
    };
    if b.add_text("fuzz", &text, kind).is_err() {
        return;
    }
    let set = b.build();
    let domains: Vec<String> = set.domains().take(64).map(str::to_string).collect();
    // An exception for the very same name (AdBlock `@@||d^` in the list, or
    // an allow list) wins over the block entry; a more specific one wins
    // over a less specific one. Found by this check (fuzz/regressions/).
    let allowed: std::collections::HashSet<&str> = set.allowed_domains().collect();
    for d in domains {
        if allowed.contains(d.as_str()) {
            continue;
        }
        if let Ok(q) = QName::from_text(&d) {
            assert!(set.lookup(&q).is_some(), "loaded domain {d:?} not found");
        }
    }
}

/// The pipeline parser and validator: every error names the file. Inputs
/// that could name a file outside an empty directory (a `/` or `\\`, so no
/// escape spells one) are skipped: the check must not read the machine's
/// files.
pub fn pipeline(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains(['/', '\\']) {
        return;
    }
    let base = std::env::temp_dir().join("dnsmonitor-fuzz-empty");
    let _ = std::fs::create_dir_all(&base);
    if let Err(errors) = Plan::from_str(text, "fuzz.toml", &base, &[]) {
        let shown = errors.to_string();
        assert!(
            shown.contains("fuzz.toml"),
            "error without the file: {shown}"
        );
    }
}

/// The dnstap path on a Frame Streams byte stream, as the file reader and
/// the socket listener see one: frames parsed one after the other (control
/// frames too), each data frame decoded as a dnstap record and taken
/// through `Ingest` (the DNS message inside, every detector's observe),
/// its event line valid JSON. Returns the event lines.
pub fn dnstap(data: &[u8]) -> usize {
    use dnsmonitor::dnstap::frames::{self, Frame};
    use std::sync::{Arc, OnceLock};
    static PLAN: OnceLock<Arc<Plan>> = OnceLock::new();
    let plan = PLAN
        .get_or_init(|| Arc::new(Plan::default_plan(&[]).expect("the default pipeline")))
        .clone();
    let mut ingest = dnsmonitor::engine::ingest::Ingest::new(plan, true);
    let mut rest = data;
    let mut n = 0u64;
    while let Ok(Some((frame, used))) = frames::parse(rest) {
        assert!(used > 0 && used <= rest.len(), "a frame takes bytes it has");
        if let Frame::Data(d) = frame {
            n += 1;
            if let Ok(t) = dnsmonitor::dnstap::message::decode(d)
                && let Ok((m, kind)) = dnsmonitor::dnstap::message::inner(&t)
            {
                let _ = dnsmonitor::dnstap::message::message_time_us(m, kind);
            }
            let _ = dnsmonitor::dnstap::message::frame_time_us(d);
            let _ = dnsmonitor::dnstap::shard_key(d);
            ingest.process(0, n, dnsmonitor::dnstap::LINKTYPE_DNSTAP, 0, d, 0);
        }
        rest = &rest[used..];
    }
    for l in &ingest.event_buf {
        json(&l.line);
    }
    ingest.event_buf.len()
}
