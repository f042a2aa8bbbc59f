use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::*;

/// (family name, labels) of every sample line of an exposition.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, _value) = line.rsplit_once(' ').expect("sample line has a value");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').expect("label pair");
            map.insert(k.to_string(), v.trim_matches('"').to_string());
        }
        out.push((name.to_string(), map));
    }
    out
}

#[test]
fn table_names_follow_conventions() {
    let mut seen = BTreeSet::new();
    for m in MetricName::ALL {
        let s = m.spec();
        assert!(seen.insert(s.name), "duplicate {}", s.name);
        assert!(s.name.starts_with("dnsmonitor_"), "{}", s.name);
        assert!(
            s.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{}",
            s.name
        );
        assert_eq!(
            s.name.ends_with("_total"),
            s.metric_type == MetricType::Counter,
            "counters and only counters end in _total: {}",
            s.name
        );
        assert!(!s.help.is_empty());
    }
}

#[test]
fn render_contains_every_name() {
    let m = Metrics::new();
    let text = m.render();
    let names = m.names();
    for spec in MetricName::ALL.map(MetricName::spec) {
        assert!(names.iter().any(|n| n == spec.name), "{}", spec.name);
        assert!(
            text.contains(&format!(
                "# TYPE {} {}\n",
                spec.name,
                spec.metric_type.as_str()
            )),
            "{} missing from\n{text}",
            spec.name
        );
    }
    #[cfg(target_os = "linux")]
    for p in PROCESS_METRICS {
        assert!(names.iter().any(|n| n == p), "{p}");
        assert!(text.contains(&format!("# TYPE {p} ")), "{p}");
    }
    // names() is exactly what render() exports
    let rendered: BTreeSet<String> = samples(&text).into_iter().map(|(n, _)| n).collect();
    let listed: BTreeSet<String> = names.into_iter().collect();
    assert_eq!(rendered, listed);
}

#[test]
fn label_sets_are_the_closed_ones() {
    let m = Metrics::new();
    m.packets.inc_by(10);
    m.alerts
        .with_label_values(&["client_flood", "critical", "raised"])
        .inc();
    let kinds: BTreeSet<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let mut by_family: BTreeMap<String, BTreeSet<BTreeMap<String, String>>> = BTreeMap::new();
    for (name, labels) in samples(&m.render()) {
        by_family.entry(name).or_default().insert(labels);
    }
    let set = |name: &str| by_family.get(name).cloned().unwrap_or_default();
    let one = |k: &str, vs: &[&str]| -> BTreeSet<BTreeMap<String, String>> {
        vs.iter()
            .map(|v| BTreeMap::from([(k.to_string(), v.to_string())]))
            .collect()
    };

    assert_eq!(set("dnsmonitor_dns_messages_total"), one("qr", &QR));
    let mut parse = BTreeSet::new();
    for e in PacketError::ALL {
        parse.insert(BTreeMap::from([
            ("layer".to_string(), "packet".to_string()),
            ("reason".to_string(), e.as_str().to_string()),
        ]));
    }
    for e in DecodeError::ALL {
        parse.insert(BTreeMap::from([
            ("layer".to_string(), "dns".to_string()),
            ("reason".to_string(), e.as_str().to_string()),
        ]));
    }
    assert_eq!(set("dnsmonitor_parse_errors_total"), parse);
    let alerts = set("dnsmonitor_alerts_total");
    assert_eq!(alerts.len(), kinds.len() * 3 * 3);
    for l in &alerts {
        assert!(kinds.contains(l["kind"].as_str()));
        assert!(["info", "warning", "critical"].contains(&l["severity"].as_str()));
        assert!(["raised", "updated", "resolved"].contains(&l["state"].as_str()));
    }
    let kinds_vec: Vec<&str> = kinds.iter().copied().collect();
    assert_eq!(set("dnsmonitor_active_alerts"), one("kind", &kinds_vec));
    assert_eq!(
        set("dnsmonitor_capture_drops_total"),
        one("where", &["kernel", "interface"])
    );
    assert_eq!(
        set("dnsmonitor_state_evictions_total"),
        one(
            "table",
            &[
                "fragments",
                "tcp_flows",
                "tcp_bytes",
                "top_names",
                "window_keys",
                "pending_queries"
            ]
        )
    );
    assert_eq!(
        set("dnsmonitor_amqp_deliveries_total"),
        one("outcome", &["received", "acked", "rejected", "duplicate"])
    );
    assert_eq!(
        set("dnsmonitor_amqp_publishes_total"),
        one("outcome", &["confirmed", "failed", "dropped"])
    );
    assert_eq!(
        set("dnsmonitor_cluster_reforms_total"),
        one("cause", &["loss", "grow"])
    );
    assert_eq!(
        set("dnsmonitor_build_info"),
        one("version", &[env!("CARGO_PKG_VERSION")])
    );
    // label names are the table's
    for spec in MetricName::ALL.map(MetricName::spec) {
        for labels in set(spec.name) {
            let names: Vec<&str> = labels.keys().map(String::as_str).collect();
            let mut want = spec.labels.to_vec();
            want.sort();
            assert_eq!(names, want, "{}", spec.name);
        }
    }
    assert!(m.render().contains("dnsmonitor_packets_total 10\n"));
    assert!(m.render().contains(
        "dnsmonitor_alerts_total{kind=\"client_flood\",severity=\"critical\",state=\"raised\"} 1\n"
    ));
}

#[test]
fn with_labels_extends_the_sets() {
    let m = Metrics::with_labels(&["a", "b", "c"], &["p"], &[]);
    let text = m.render();
    assert!(text.contains("dnsmonitor_active_alerts{kind=\"c\"} 0\n"));
    assert!(text.contains("dnsmonitor_parse_errors_total{layer=\"packet\",reason=\"p\"} 0\n"));
    assert!(!text.contains("layer=\"dns\""));
}

#[test]
fn handles_share_one_registry() {
    let m = Metrics::new();
    let m2 = m.clone();
    std::thread::spawn(move || m2.windows_closed.inc_by(3))
        .join()
        .unwrap();
    assert_eq!(m.windows_closed.get(), 3);
    assert!(m.render().contains("dnsmonitor_windows_closed_total 3\n"));
    // two Metrics are independent (no global registry)
    assert_eq!(Metrics::new().windows_closed.get(), 0);
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Sends `request` and reads the whole response (the server closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn status(resp: &str) -> &str {
    resp.split("\r\n").next().unwrap_or("")
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

#[test]
fn server_serves_metrics_index_and_errors() {
    let m = Metrics::new();
    m.packets.inc_by(42);
    let server = MetricsServer::start(local(), m.clone()).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let r = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 200 OK");
    assert!(
        r.contains("Content-Type: text/plain; version=0.0.4\r\n"),
        "{r}"
    );
    assert!(body(&r).contains("dnsmonitor_packets_total 42\n"));
    let len: usize = r
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, body(&r).len());

    // An HTTP/1.0 client is answered in HTTP/1.0 (hyper).
    let r = exchange(addr, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.0 200 OK");
    assert!(body(&r).contains("href=\"/metrics\""));

    let r = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 200 OK");
    assert_eq!(body(&r), "");

    let r = exchange(addr, b"GET /other HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 404 Not Found");

    let r = exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 405 Method Not Allowed");

    let r = exchange(addr, b"garbage\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 400 Bad Request");

    // garbage without a blank line, then end of stream
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"\x00\x01\x02 hello").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(status(&out), "HTTP/1.1 400 Bad Request");

    // over MAX_REQUEST_BYTES without a blank line
    let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    big.resize(MAX_REQUEST_BYTES, b'a');
    let r = exchange(addr, &big);
    assert_eq!(status(&r), "HTTP/1.1 431 Request Header Fields Too Large");

    // still serving, counters live
    m.packets.inc();
    let r = exchange(addr, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n");
    assert!(body(&r).contains("dnsmonitor_packets_total 43\n"));
    server.stop();
}

#[test]
fn silent_client_does_not_block_others() {
    let timeout = Duration::from_millis(300);
    let server = MetricsServer::start_with_timeout(local(), Metrics::new(), timeout).unwrap();
    let addr = server.local_addr();
    // connects, sends nothing, keeps the connection open
    let idle = TcpStream::connect(addr).unwrap();
    // a client that trickles bytes forever is cut off at the deadline too
    let mut trickle = TcpStream::connect(addr).unwrap();
    trickle.write_all(b"GET /met").unwrap();
    let start = crate::time::Clock.now();
    let r = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 200 OK");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "served after {:?}",
        start.elapsed()
    );
    drop(idle);
    drop(trickle);
    server.stop();
}

#[test]
fn stop_joins_and_frees_the_port() {
    let server = MetricsServer::start(local(), Metrics::new()).unwrap();
    let addr = server.local_addr();
    server.stop();
    // the listener is closed: a new connection is refused
    assert!(TcpStream::connect(addr).is_err());
    // and the port can be bound again
    let again = MetricsServer::start(addr, Metrics::new()).unwrap();
    assert_eq!(again.local_addr(), addr);
    drop(again); // Drop stops too
}

#[test]
fn start_reports_bind_errors() {
    let server = MetricsServer::start(local(), Metrics::new()).unwrap();
    let err = MetricsServer::start(server.local_addr(), Metrics::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    server.stop();
}
