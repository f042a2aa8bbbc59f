//! `replay` of dnstap files (Frame Streams, unidirectional): recognised by
//! content, mixed freely with pcap files, and mapped onto the same DNS
//! messages as the pcap path. The dnstap files here are made from the DNS
//! payloads of the committed loopback captures (CLIENT_QUERY and
//! CLIENT_RESPONSE, as a resolver logs them), so the two runs must agree
//! message for message and alert for alert.

use std::path::{Path, PathBuf};
use std::process::Command;

use dnsmonitor::config::Plan;
use dnsmonitor::dnstap::{self, DnstapError, MessageType};
use serde_json::Value;

mod common;
mod dnstap_support;

const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");

fn plan() -> Plan {
    Plan::default_plan(&[]).unwrap()
}

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// A dnstap file with the DNS payloads of `pcap`, under `dir`.
fn dnstap_of(pcap: &Path, dir: &Path) -> (PathBuf, usize) {
    let frames = dnstap_support::frames_of_pcap(pcap);
    let out = dir.join(format!(
        "{}.fstrm",
        pcap.file_stem().unwrap().to_string_lossy()
    ));
    dnstap::file::write(&out, &frames).unwrap();
    (out, frames.len())
}

/// Event lines without the frame number (a pcap frame holds one message,
/// a dnstap frame too, but they are numbered differently), sorted.
fn events_without_frame(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .map(|l| {
            let mut j: Value = serde_json::from_str(l).unwrap();
            j.as_object_mut().unwrap().remove("frame");
            j.as_object_mut().unwrap().remove("source");
            j.to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn replay_of_dnstap_equals_replay_of_the_same_pcap() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture("loopback-flood.pcap");
    let (fstrm, n) = dnstap_of(&pcap, dir.path());
    assert!(n > 10_000, "only {n} messages in the flood capture");
    for workers in [1, 2] {
        let a = common::replay(std::slice::from_ref(&pcap), plan(), workers, true);
        let b = common::replay(std::slice::from_ref(&fstrm), plan(), workers, true);
        assert_eq!(b.summary.dns_messages, a.summary.dns_messages);
        assert_eq!(b.summary.dns_messages, n as u64);
        assert_eq!(b.summary.queries, a.summary.queries);
        assert!(
            a.alerts.contains("client_flood"),
            "the flood capture raises client_flood:\n{}",
            a.alerts
        );
        assert_eq!(b.alerts, a.alerts, "alerts differ ({workers} workers)");
        assert_eq!(
            events_without_frame(&b.events),
            events_without_frame(&a.events),
            "event logs differ ({workers} workers)"
        );
        let d = &b.summary.dnstap;
        assert_eq!(d.frames, n as u64);
        assert_eq!(
            d.messages[MessageType::ClientQuery as usize],
            a.summary.queries
        );
        assert_eq!(
            d.messages[MessageType::ClientResponse as usize],
            a.summary.responses
        );
        assert_eq!(d.errors.iter().sum::<u64>(), 0);
    }
}

#[test]
fn dnstap_and_pcap_files_mix_in_one_replay() {
    let dir = tempfile::tempdir().unwrap();
    let dig = capture("loopback-dig.pcap");
    let flood = capture("loopback-flood.pcap");
    let (fstrm, n) = dnstap_of(&dig, dir.path());
    // Named like a pcap file: recognised by content, not by name.
    let disguised = dir.path().join("really-dnstap.pcap");
    std::fs::rename(&fstrm, &disguised).unwrap();
    let alone = common::replay(std::slice::from_ref(&flood), plan(), 1, true);
    let mixed = common::replay(&[disguised, flood], plan(), 1, true);
    assert_eq!(
        mixed.summary.dns_messages,
        alone.summary.dns_messages + n as u64
    );
    assert_eq!(mixed.summary.dnstap.frames, n as u64);
    assert!(mixed.events.contains("\"qname\":\"www.corp.test\""));
}

#[test]
fn broken_dnstap_files_are_named_with_frame_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (fstrm, _) = dnstap_of(&capture("loopback-dig.pcap"), dir.path());
    let all = std::fs::read(&fstrm).unwrap();
    // Cut inside a data frame: the frames before it count, the file is
    // reported as ended early (exit status 3, like a truncated pcap).
    let cut = dir.path().join("cut.fstrm");
    std::fs::write(&cut, &all[..all.len() / 2]).unwrap();
    let out = Command::new(BIN)
        .args(["replay", "--alerts", "/dev/null"])
        .arg(&cut)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr:\n{err}");
    assert!(
        err.contains("cut.fstrm ended early: ") && err.contains("byte offset"),
        "stderr:\n{err}"
    );
    // A 100 MB frame length right after START: refused, not allocated.
    let huge = dir.path().join("huge.fstrm");
    let mut b = dnstap::frames::control(
        dnstap::frames::ControlType::Start,
        Some(dnstap::frames::CONTENT_TYPE),
    );
    b.extend_from_slice(&(100u32 << 20).to_be_bytes());
    b.extend_from_slice(&[0u8; 64]);
    std::fs::write(&huge, &b).unwrap();
    let out = Command::new(BIN)
        .args(["replay", "--alerts", "/dev/null"])
        .arg(&huge)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr:\n{err}");
    assert!(
        err.contains(DnstapError::FrameTooLong.describe()),
        "stderr:\n{err}"
    );
    // Frame Streams with another content type: refused before the run.
    let other = dir.path().join("other.fstrm");
    std::fs::write(
        &other,
        dnstap::frames::control(dnstap::frames::ControlType::Start, Some(b"text/x-log")),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["replay", "--alerts", "/dev/null"])
        .arg(&other)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("text/x-log") && err.contains("other.fstrm"),
        "stderr:\n{err}"
    );
}

#[test]
fn malformed_messages_in_a_file_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = dnstap_support::frames_of_pcap(&capture("loopback-dig.pcap"));
    let mut frames = vec![good[0].clone(), b"\xff\xff\xff garbage".to_vec()];
    // A valid dnstap frame whose DNS bytes are garbage.
    let mut bad_dns: dnstap::message::Dnstap = dnstap::message::decode(&good[1]).unwrap();
    let m = bad_dns.message.as_mut().unwrap();
    let dns = m
        .query_message
        .as_mut()
        .or(m.response_message.as_mut())
        .unwrap();
    dns.truncate(5);
    frames.push(prost::Message::encode_to_vec(&bad_dns));
    frames.push(good[2].clone());
    let f = dir.path().join("m.fstrm");
    dnstap::file::write(&f, &frames).unwrap();
    let r = common::replay(&[f], plan(), 1, true);
    let d = &r.summary.dnstap;
    assert_eq!(d.frames, 4);
    assert_eq!(d.errors[DnstapError::Protobuf as usize], 1);
    assert_eq!(d.errors[DnstapError::BadDns as usize], 1);
    assert_eq!(r.summary.dns_messages, 2);
    assert_eq!(r.events.lines().count(), 2);
}
