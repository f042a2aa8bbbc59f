//! Helpers shared by the dnstap tests: dnstap frames made from the DNS
//! payloads of a real pcap capture (through the crate's own packet
//! decoder), so a dnstap run can be compared with the pcap run of the same
//! traffic.
#![allow(dead_code)]

use std::path::Path;

use dnsmonitor::dnstap::message::{Dnstap, Message};
use dnsmonitor::packet::{PacketConfig, PacketDecoder, Payload, Transport};
use prost::Message as _;

fn addr(ip: std::net::IpAddr) -> Vec<u8> {
    match ip {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The CLIENT_QUERY or CLIENT_RESPONSE dnstap frame a resolver would log
/// for this payload (the query side is the client).
pub fn client_frame(p: &Payload<'_>) -> Vec<u8> {
    let response = p.data.get(2).is_some_and(|b| b & 0x80 != 0);
    let (client, cport, server, sport) = if response {
        (p.dst, p.dport, p.src, p.sport)
    } else {
        (p.src, p.sport, p.dst, p.dport)
    };
    let sec = p.ts_us.div_euclid(1_000_000) as u64;
    let nsec = (p.ts_us.rem_euclid(1_000_000) * 1000) as u32;
    let m = Message {
        r#type: if response { 6 } else { 5 },
        socket_family: Some(if client.is_ipv4() { 1 } else { 2 }),
        socket_protocol: Some(match p.transport {
            Transport::Udp => 1,
            Transport::Tcp => 2,
        }),
        query_address: Some(addr(client)),
        response_address: Some(addr(server)),
        query_port: Some(cport.into()),
        response_port: Some(sport.into()),
        query_time_sec: (!response).then_some(sec),
        query_time_nsec: (!response).then_some(nsec),
        query_message: (!response).then(|| p.data.to_vec()),
        response_time_sec: response.then_some(sec),
        response_time_nsec: response.then_some(nsec),
        response_message: response.then(|| p.data.to_vec()),
    };
    Dnstap {
        identity: Some(b"test-resolver".to_vec()),
        version: Some(b"dnsmonitor tests".to_vec()),
        extra: None,
        message: Some(m),
        r#type: 1,
    }
    .encode_to_vec()
}

/// The dnstap frames of every DNS payload of a pcap file, in order.
pub fn frames_of_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut cap = pcap::Capture::from_file(path).expect("open capture");
    let lt = cap.get_datalink().0;
    let mut dec = PacketDecoder::new(PacketConfig::default());
    let mut out = Vec::new();
    while let Ok(p) = cap.next_packet() {
        let ts = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
        dec.decode(lt, ts, p.data, |payload| out.push(client_frame(payload)));
    }
    out
}

// ------------------------------------------------------------ processes ----

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::{self};
use std::time::Duration;

use dnsmonitor::time::Clock;

pub const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");

/// The tools the live dnstap tests need, or which one is missing.
pub fn missing_tool(tools: &[&str]) -> Option<String> {
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} missing (scripts/install-deps.sh)"));
        }
    }
    None
}

pub use crate::common::proc::Proc;

/// A port free for UDP and TCP on `ip` (bound with port 0, then released).
pub fn free_port(ip: &str) -> u16 {
    for _ in 0..50 {
        let t = TcpListener::bind((ip, 0)).unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// One lookup with dig from `client` to `server:port`: (status, first answer).
pub fn dig(server: &str, port: u16, client: &str, name: &str) -> Option<(String, String)> {
    let out = Command::new("dig")
        .args([
            "-p",
            &port.to_string(),
            &format!("@{server}"),
            "-b",
            client,
            "+tries=1",
            "+time=2",
            name,
            "A",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))?
        .split(',')
        .next()?
        .to_string();
    let answer = text
        .lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION"))
        .nth(1)
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("")
        .to_string();
    Some((status, answer))
}

/// Local names unbound serves (everything else is refused).
pub const NAMES: &[(&str, &str)] = &[
    ("www.corp.test", "10.1.0.10"),
    ("mail.corp.test", "10.1.0.25"),
    ("vpn.corp.test", "10.1.0.44"),
];

/// Write an unbound config: local zones only, on `127.0.0.2:port`, dnstap
/// of client queries and responses to `socket`.
pub fn unbound_conf(dir: &Path, port: u16, socket: &Path) -> PathBuf {
    let mut data = String::new();
    for (n, a) in NAMES {
        data.push_str(&format!("  local-data: \"{n}. 300 A {a}\"\n"));
    }
    let conf = format!(
        "server:\n  interface: 127.0.0.2\n  port: {port}\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  \
         directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n  logfile: \"\"\n  \
         access-control: 127.0.0.0/8 allow\n  num-threads: 1\n  ratelimit: 0\n  ip-ratelimit: 0\n  \
         local-zone: \"corp.test.\" static\n{data}  local-zone: \".\" refuse\n\
         remote-control:\n  control-enable: no\n\
         dnstap:\n  dnstap-enable: yes\n  dnstap-socket-path: \"{s}\"\n  dnstap-send-identity: yes\n  \
         dnstap-log-client-query-messages: yes\n  dnstap-log-client-response-messages: yes\n",
        d = dir.display(),
        s = socket.display(),
    );
    let path = dir.join("unbound.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

/// Start unbound and wait until it answers (dig is the readiness check).
pub fn start_unbound(conf: &Path, port: u16) -> Proc {
    let mut cmd = Command::new("unbound");
    cmd.args(["-d", "-c"]).arg(conf).stdout(Stdio::null());
    let mut p = Proc::spawn("unbound", &mut cmd);
    let t0 = Clock.now();
    loop {
        if dig("127.0.0.2", port, "127.0.0.1", "www.corp.test")
            .is_some_and(|(st, a)| st == "NOERROR" && a == "10.1.0.10")
        {
            return p;
        }
        if let Ok(Some(st)) = p.child.try_wait() {
            panic!("unbound exited ({st}): {}", p.stderr());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "unbound does not answer: {}",
            p.stderr()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// JSON lines of a file (a line still being written is left out).
pub fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Start `dnsmonitor dnstap` with these arguments and wait for its
/// readiness line.
pub fn start_dnstap(args: &[&str]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.arg("dnstap").args(args).stdout(Stdio::null());
    cmd.env("DNSMONITOR_LOG", "info,lapin=off");
    let mut p = Proc::spawn("dnsmonitor dnstap", &mut cmd);
    p.wait_for_stderr("dnstap: listening on", Duration::from_secs(15));
    p
}

/// A small-window pipeline for live tests (4 s windows, 1 s slide).
pub fn write_pipeline(dir: &Path) -> PathBuf {
    let path = dir.join("pipeline.toml");
    std::fs::write(
        &path,
        "[window]\nsize_secs = 4\nslide_secs = 1\nallowed_lateness_secs = 1\n\n[alerts]\nhold_secs = 3\n",
    )
    .unwrap();
    path
}
