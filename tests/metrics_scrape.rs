//! Scrape `/metrics` of a real replay over HTTP: promtool accepts it, and
//! the counters agree with the replay summary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("series {series} not in:\n{body}"))
}

#[test]
fn replay_metrics_pass_promtool_and_match_the_summary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_dnsmonitor"))
        .current_dir(root)
        .args([
            "replay",
            "captures/loopback-flood.pcap",
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-linger",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Readiness: the replay has ended and the server says it keeps serving.
    let mut lines = vec![];
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("replay finished and kept serving");
        if let Some(rest) = line.strip_prefix("metrics: still serving on http://") {
            break rest
                .trim_end_matches("/metrics until SIGINT/SIGTERM")
                .to_string();
        }
        lines.push(line);
    };
    let summary = lines.join("\n");
    let response = get(&addr, "/metrics");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // promtool (package prometheus, installed by scripts/install-deps.sh).
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: run scripts/install-deps.sh (Debian package prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Counters agree with the summary printed by the same run.
    assert!(summary.contains("packets: 18498 read"), "{summary}");
    assert!(
        summary.contains("dns messages: 18498 (9249 queries, 9249 responses"),
        "{summary}"
    );
    assert_eq!(value(body, "dnsmonitor_packets_total"), 18498.0);
    assert_eq!(
        value(body, "dnsmonitor_dns_messages_total{qr=\"query\"}"),
        9249.0
    );
    assert_eq!(
        value(body, "dnsmonitor_dns_messages_total{qr=\"response\"}"),
        9249.0
    );
    assert_eq!(
        value(body, "dnsmonitor_packet_bytes_total"),
        (1_879_319 - 24 - 16 * 18498) as f64
    );
    let raised = value(
        body,
        "dnsmonitor_alerts_total{kind=\"client_flood\",severity=\"warning\",state=\"raised\"}",
    );
    assert_eq!(raised, 1.0);
    assert!(summary.contains("client_flood/raised=1"), "{summary}");
    assert_eq!(
        value(body, "dnsmonitor_active_alerts{kind=\"client_flood\"}"),
        0.0
    );
    assert!(value(body, "dnsmonitor_windows_closed_total") >= 60.0);
    assert!(value(body, "process_resident_memory_bytes") > 0.0);
    // No query name or address ever becomes a label value.
    assert!(!body.contains("127.0.0.66") && !body.contains("corp.test"));

    // SIGINT ends the lingering server cleanly.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
