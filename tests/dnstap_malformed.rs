//! Malformed dnstap senders against `dnsmonitor dnstap`: a wrong content
//! type in the handshake, a truncated frame, a 100 MB frame length,
//! protobuf garbage, and a valid frame whose DNS bytes are garbage. Each is
//! rejected with a log line naming the reason and a counter; a well-behaved
//! sender connected the whole time (over the unix socket) and one over TCP
//! are served throughout, and memory stays bounded.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dnsmonitor::dnstap::frames::{self, CONTENT_TYPE, ControlType};
use dnsmonitor::packet::{Payload, Transport};
use dnsmonitor::time::Clock;

mod common;
mod dnstap_support;
use dnstap_support::*;

/// A DNS query for `name` (A, IN), id `id`.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn frame_from(client: u8, dns: &[u8]) -> Vec<u8> {
    client_frame(&Payload {
        ts_us: Clock.unix_micros(),
        src: IpAddr::V4(Ipv4Addr::new(127, 0, 0, client)),
        dst: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        sport: 40000,
        dport: 53,
        transport: Transport::Udp,
        data: dns,
    })
}

/// Read one control frame (blocking, bounded).
fn read_control(s: &mut impl Read) -> frames::Control {
    let mut head = [0u8; 8];
    s.read_exact(&mut head).expect("control frame header");
    assert_eq!(&head[..4], &[0; 4], "escape");
    let len = u32::from_be_bytes(head[4..8].try_into().unwrap()) as usize;
    assert!(len <= frames::MAX_CONTROL_BYTES);
    let mut body = vec![0; len];
    s.read_exact(&mut body).unwrap();
    frames::parse_control(&body).unwrap()
}

/// READY → ACCEPT → START, as a bidirectional sender.
fn handshake<S: Read + Write>(s: &mut S) {
    s.write_all(&frames::control(ControlType::Ready, Some(CONTENT_TYPE)))
        .unwrap();
    let accept = read_control(s);
    assert_eq!(accept.kind, ControlType::Accept);
    assert!(accept.offers_dnstap());
    s.write_all(&frames::control(ControlType::Start, Some(CONTENT_TYPE)))
        .unwrap();
}

/// True once the peer closed (EOF or reset) within the time limit.
fn closed_by_peer(s: &mut std::os::unix::net::UnixStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return true,
            Ok(_) => continue,
        }
    }
}

fn vm_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn malformed_senders_are_rejected_and_counted_while_others_go_on() {
    use std::os::unix::net::UnixStream;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let events = dir.path().join("events.jsonl");
    let mut mon = start_dnstap(&[
        "--listen",
        &format!("unix:{}", sock.display()),
        "--listen",
        "tcp:127.0.0.1:0",
        "--events",
        events.to_str().unwrap(),
        "--alerts",
        "/dev/null",
    ]);
    let tcp_addr = mon
        .stderr()
        .lines()
        .find_map(|l| l.split("tcp:").nth(1).map(|a| a.trim().to_string()))
        .expect("the readiness line names the TCP address");
    // The well-behaved sender, connected throughout.
    let mut good = UnixStream::connect(&sock).unwrap();
    handshake(&mut good);
    good.write_all(&frames::data(&frame_from(10, &query(1, "first.corp.test"))))
        .unwrap();

    // 1. wrong content type
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(&frames::control(
        ControlType::Ready,
        Some(b"protobuf:other.Thing"),
    ))
    .unwrap();
    assert!(closed_by_peer(&mut s), "wrong content type: closed");
    // 2. a truncated frame (the sender goes away inside it)
    let mut s = UnixStream::connect(&sock).unwrap();
    handshake(&mut s);
    s.write_all(&100u32.to_be_bytes()).unwrap();
    s.write_all(&[1; 10]).unwrap();
    drop(s);
    // 3. a 100 MB frame length
    let rss_before = vm_rss_kib(mon.child.id());
    let mut s = UnixStream::connect(&sock).unwrap();
    handshake(&mut s);
    s.write_all(&(100u32 << 20).to_be_bytes()).unwrap();
    let _ = s.write_all(&[0u8; 4096]);
    assert!(closed_by_peer(&mut s), "100 MB length: closed");
    // 4. protobuf garbage
    let mut s = UnixStream::connect(&sock).unwrap();
    handshake(&mut s);
    s.write_all(&frames::data(b"\xff\xff\xff\xff not protobuf"))
        .unwrap();
    assert!(closed_by_peer(&mut s), "protobuf garbage: closed");
    // 5. a valid frame with garbage DNS bytes: counted, the connection stays
    let mut s = UnixStream::connect(&sock).unwrap();
    handshake(&mut s);
    s.write_all(&frames::data(&frame_from(11, b"\x00\x01garbage")))
        .unwrap();
    s.write_all(&frames::data(&frame_from(
        11,
        &query(2, "after-garbage.corp.test"),
    )))
    .unwrap();
    s.write_all(&frames::control(ControlType::Stop, None))
        .unwrap();
    assert_eq!(read_control(&mut s).kind, ControlType::Finish);
    // A TCP sender is served too.
    let mut t = std::net::TcpStream::connect(&tcp_addr).unwrap();
    handshake(&mut t);
    t.write_all(&frames::data(&frame_from(
        12,
        &query(3, "over-tcp.corp.test"),
    )))
    .unwrap();
    t.write_all(&frames::control(ControlType::Stop, None))
        .unwrap();
    assert_eq!(read_control(&mut t).kind, ControlType::Finish);
    // The good sender goes on after all that.
    good.write_all(&frames::data(&frame_from(10, &query(4, "last.corp.test"))))
        .unwrap();
    good.write_all(&frames::control(ControlType::Stop, None))
        .unwrap();
    assert_eq!(read_control(&mut good).kind, ControlType::Finish);
    let rss_after = vm_rss_kib(mon.child.id());
    assert!(
        rss_after < rss_before + 20 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB after a 100 MB frame length"
    );

    let st = mon.interrupt(Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "{}", mon.stderr());
    let err = mon.stderr();
    for (reason, text) in [
        (
            "wrong_content_type",
            "content type is not protobuf:dnstap.Dnstap (offered \"protobuf:other.Thing\"); connection closed",
        ),
        ("truncated", "closed inside a frame"),
        ("frame_too_long", "data frame longer than the 256 KiB limit"),
        ("protobuf", "frame is not a dnstap protobuf message"),
        ("bad_dns", "DNS bytes do not decode"),
    ] {
        assert!(err.contains(text), "no log line for {reason}:\n{err}");
        assert!(
            err.contains(&format!("dnstap/{reason}=1")),
            "no count for {reason}:\n{err}"
        );
    }
    assert!(err.contains("connections (4 closed for errors)"), "{err}");
    let names: Vec<String> = read_lines(&events)
        .iter()
        .map(|e| e["qname"].as_str().unwrap_or("").to_string())
        .collect();
    for n in [
        "first.corp.test",
        "after-garbage.corp.test",
        "over-tcp.corp.test",
        "last.corp.test",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
}
