//! The fuzz targets' checks (fuzz/checks.rs) in the normal test command,
//! without libFuzzer: every kept crash input (fuzz/regressions/TARGET/*)
//! must pass, and so must real inputs run through the same checks —
//! captures as frame sequences (with default and tiny reassembly tables),
//! packet batches and every truncation of one, the repository's and the
//! shared blocklists, the shipped pipelines. Long fuzzing is
//! scripts/fuzz.sh (README, "Fuzzing").

mod common;
mod dnstap_support;

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A target's check.
type Check = fn(&[u8]);

#[test]
fn kept_crash_inputs_pass() {
    let reg = Path::new(ROOT).join("fuzz/regressions");
    let targets: [(&str, Check); 6] = [
        ("packet_frames", checks::packet_frames),
        ("dns_decode", checks::dns_decode),
        ("pcap_batch", checks::pcap_batch),
        ("blocklist", checks::blocklist),
        ("pipeline", checks::pipeline),
        ("dnstap", |d| {
            checks::dnstap(d);
        }),
    ];
    for (name, check) in targets {
        for f in files(&reg.join(name)) {
            let data = std::fs::read(&f).unwrap();
            eprintln!("{}", f.display());
            check(&data);
        }
    }
}

/// The first 4096 frames of a capture cut into inputs of
/// `checks::packet_frames`: 64 frames each.
fn frame_inputs(path: &Path, knobs: u8) -> Vec<Vec<u8>> {
    let frames = common::amqp::frames(path);
    frames
        .chunks(64)
        .take(64)
        .map(|chunk| {
            let mut v = (chunk[0].0 as u16).to_le_bytes().to_vec();
            v.push(knobs);
            let mut prev = chunk[0].1;
            for (_, ts, data, _) in chunk {
                let step = ((ts - prev) / 1000).clamp(0, 249) as u8;
                prev = *ts;
                v.push(step);
                v.extend_from_slice(&(data.len() as u16).to_le_bytes());
                v.extend_from_slice(data);
            }
            v
        })
        .collect()
}

#[test]
fn real_captures_pass_the_packet_checks() {
    let mut caps = files(&Path::new(ROOT).join("captures"));
    caps.push(common::shared(
        "captures/attacks/stopddos-amp.dns.RRSIG.fragmented.pcap",
    ));
    let mut n = 0;
    for cap in caps
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
    {
        for knobs in [0, 1] {
            for input in frame_inputs(cap, knobs) {
                checks::packet_frames(&input);
                n += 1;
            }
        }
    }
    assert!(n > 250, "{n} inputs");
}

#[test]
fn packet_batches_and_their_truncations_pass() {
    use dnsmonitor::amqp::batch::BatchWriter;
    let frames = common::amqp::frames(&Path::new(ROOT).join("captures/loopback-dig.pcap"));
    let mut w = BatchWriter::new(frames[0].0, 65535);
    for (_, ts, data, len) in &frames {
        w.push(*ts, data, *len);
    }
    let body = w.into_bytes();
    for end in 0..=body.len() {
        checks::pcap_batch(&body[..end]);
    }
    // Every single-byte change of the headers.
    for at in 0..64.min(body.len()) {
        let mut b = body.clone();
        b[at] ^= 0xff;
        checks::pcap_batch(&b);
    }
}

#[test]
fn real_blocklists_and_pipelines_pass() {
    let mut lists = files(&Path::new(ROOT).join("blocklists"));
    lists.extend(files(&common::shared("blocklists/labeled")));
    let mut n = 0;
    for l in lists.iter().filter(|p| p.is_file()) {
        let data = std::fs::read(l).unwrap();
        // The first 64 KiB (the checks look up up to 64 domains).
        checks::blocklist(&data[..data.len().min(64 * 1024)]);
        n += 1;
    }
    assert!(n >= 3, "{n} lists");
    for p in files(&Path::new(ROOT).join("pipelines")) {
        let text = std::fs::read_to_string(&p).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.contains(['/', '\\'])).collect();
        checks::pipeline(kept.join("\n").as_bytes());
    }
}

/// A Frame Streams stream (START control frame, then one data frame per
/// record), as a dnstap file or socket carries it.
fn frame_stream(records: &[Vec<u8>]) -> Vec<u8> {
    let ctype = b"protobuf:dnstap.Dnstap";
    let mut ctl = 2u32.to_be_bytes().to_vec();
    ctl.extend(1u32.to_be_bytes());
    ctl.extend((ctype.len() as u32).to_be_bytes());
    ctl.extend(ctype);
    let mut out = 0u32.to_be_bytes().to_vec();
    out.extend((ctl.len() as u32).to_be_bytes());
    out.extend(ctl);
    for r in records {
        out.extend((r.len() as u32).to_be_bytes());
        out.extend(r);
    }
    out
}

/// The dnstap check on real traffic: every DNS message of the captures,
/// as the dnstap records a resolver would log, gives one event line each;
/// every truncation of a stream passes too.
#[test]
fn real_traffic_as_dnstap_passes() {
    for name in [
        "captures/loopback-dig.pcap",
        "captures/synth/mixed-seed1.pcap",
    ] {
        let records = dnstap_support::frames_of_pcap(&Path::new(ROOT).join(name));
        assert!(records.len() > 100, "{name}");
        for chunk in records.chunks(500).take(8) {
            let stream = frame_stream(chunk);
            assert_eq!(checks::dnstap(&stream), chunk.len(), "{name}");
        }
        let stream = frame_stream(&records[..16]);
        for cut in 0..stream.len() {
            checks::dnstap(&stream[..cut]);
        }
    }
}
