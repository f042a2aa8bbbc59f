//! Hostile input and operations (issue #15), through the binary as users
//! run it: outputs that fail, secrets in broker URIs, input that cannot be
//! seeked, corrupt captures, junk blocklists, untrusted text printed on a
//! terminal, limits without a ceiling. Each test fails on the code before
//! its fix.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dnsmonitor::time::Clock;

const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");

fn bin() -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(root()).env_remove("DNSMONITOR_AMQP_URI");
    c
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn flood() -> PathBuf {
    root().join("captures/loopback-flood.pcap")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run dnsmonitor")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Wait for a child at most `limit`; kill it (and fail) past that.
fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let clock = Clock;
    let t0 = clock.now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st;
        }
        if clock.now().duration_since(t0) > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dnsmonitor did not finish within {limit:?}");
        }
        clock.sleep(Duration::from_millis(50));
    }
}

/// Read `r` until `marker` has come (a readiness line); panic if it ends first.
fn read_until(r: &mut impl std::io::Read, marker: &str) {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains(marker) {
        match r.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => panic!(
                "ended before {marker:?}: {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

// ------------------------------------------------------ 1: failed outputs ----

#[test]
fn replay_into_a_full_disk_exits_non_zero_and_names_the_output() {
    let f = flood();
    let f = f.to_str().unwrap();
    for (flag, what) in [
        ("--alerts", "alert"),
        ("--events", "event"),
        ("--reports", "report"),
    ] {
        let o = run(&["replay", "-q", f, flag, "/dev/full"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{flag} /dev/full: {err}");
        assert!(
            err.contains(&format!("the {what} output failed")) && err.contains("No space left"),
            "{flag}: {err}"
        );
    }
    // A reader that goes away (`| head`) is not a failure.
    let mut child = bin()
        .args(["replay", "-q", "--events", "-", f])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let st = wait_bounded(&mut child, Duration::from_secs(60));
    assert_eq!(st.code(), Some(0));
}

/// A DNS query for example.com (type A), as a UDP payload.
fn dns_query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    q
}

#[test]
fn live_stops_as_soon_as_an_output_fails() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::cannot_run("not root: capturing on lo needs CAP_NET_RAW");
        return;
    }
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = {
        let l = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let pipeline = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        pipeline.path(),
        format!("[capture]\ndns_ports = [{port}]\n"),
    )
    .unwrap();
    let mut child = bin()
        .args(["live", "-i", "lo", "--filter"])
        .arg(format!("udp port {port}"))
        .arg("--pipeline")
        .arg(pipeline.path())
        .args(["--events", "/dev/full", "--alerts", "/dev/null"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    // Wait for the capture to be open.
    read_until(&mut err, "live: capturing on lo");
    let collect = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        rest
    });
    let clock = Clock;
    let t0 = clock.now();
    let mut id = 0u16;
    // Queries keep arriving: without the fix the capture goes on forever.
    while child.try_wait().unwrap().is_none() && clock.now().duration_since(t0).as_secs() < 20 {
        id = id.wrapping_add(1);
        let _ = sock.send_to(&dns_query(id), ("127.0.0.1", port));
        clock.sleep(Duration::from_millis(20));
    }
    let st = wait_bounded(&mut child, Duration::from_secs(5));
    let rest = collect.join().unwrap();
    assert_eq!(st.code(), Some(1), "{rest}");
    assert!(rest.contains("the event output failed"), "{rest}");
}

// ------------------------------------------- 3, 4: broker URIs, secrets ----

/// URIs whose password lapin cannot find (a `/` or `#` in it, no `@`, no
/// scheme): the secret is `S3cr3t`.
const BAD_URIS: &[&str] = &[
    "amqp://guest:S3cr3t/PW@127.0.0.1:5672/%2f",
    "amqp://guest:S3cr3t#PW@127.0.0.1:5672/%2f",
    "amqp://guest:S3cr3t?PW@127.0.0.1:5672/%2f",
    "amqp://guest:S3cr3tPW127.0.0.1:5672/%2f",
    "guest:S3cr3t@127.0.0.1:5672",
];

#[test]
fn a_password_is_never_printed_when_the_uri_does_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("amqp.uri");
    let f = flood();
    for uri in BAD_URIS {
        std::fs::write(&file, format!("{uri}\n")).unwrap();
        let runs = [
            bin()
                .args(["consume", "--queue", "x"])
                .env("DNSMONITOR_AMQP_URI", uri)
                .output()
                .unwrap(),
            bin()
                .args(["alerts", "--amqp-file"])
                .arg(&file)
                .output()
                .unwrap(),
            bin()
                .args(["replay", "-q"])
                .arg(&f)
                .env("DNSMONITOR_AMQP_URI", uri)
                .output()
                .unwrap(),
            bin()
                .args(["sensor", "--queue", "x", "--file"])
                .arg(&f)
                .arg("--amqp-file")
                .arg(&file)
                .output()
                .unwrap(),
        ];
        for o in runs {
            let (out, err) = (stdout(&o), stderr(&o));
            assert!(
                !err.contains("S3cr3t") && !out.contains("S3cr3t"),
                "{uri}: {err}"
            );
            assert!(err.contains("invalid AMQP URI"), "{uri}: {err}");
            assert_eq!(o.status.code(), Some(2), "{uri}: {err}");
        }
    }
}

#[test]
fn redact_hides_whatever_could_be_a_password() {
    use dnsmonitor::amqp::error::redact;
    for uri in BAD_URIS {
        let r = redact(uri);
        assert!(!r.contains("S3cr3t") && !r.contains("PW"), "{uri} -> {r}");
    }
    assert_eq!(
        redact("amqp://guest:S3cr3t/PW@127.0.0.1:5672/%2f"),
        "amqp://guest:***@127.0.0.1:5672/%2f"
    );
    assert_eq!(
        redact("amqp://a/b:S3cr3t@127.0.0.1/%2f"),
        "amqp://***@127.0.0.1/%2f"
    );
    assert_eq!(
        redact("amqp://127.0.0.1:5672/%2f"),
        "amqp://127.0.0.1:5672/%2f"
    );
    assert_eq!(redact("amqp://[::1]:5672/%2f"), "amqp://[::1]:5672/%2f");
}

#[test]
fn amqps_is_refused_rather_than_sent_in_clear() {
    let uri = "amqps://guest:guest@127.0.0.1:5672/%2f";
    let o = bin()
        .args(["replay", "-q"])
        .arg(flood())
        .env("DNSMONITOR_AMQP_URI", uri)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("amqps:// (TLS) is not supported"), "{err}");
    assert!(o.stdout.is_empty(), "replay ran anyway");
    // The library refuses it too, before opening a socket.
    let e = match dnsmonitor::amqp::sink::AmqpAlertSink::connect(uri, "", None) {
        Ok(_) => panic!("connected over amqps:// without TLS"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("not supported") && !e.contains(":guest@"), "{e}");
}

// ------------------------------------------ 5: input that cannot be seeked ----

/// Run `dnsmonitor` with `input` written to its standard input; bounded.
fn run_with_stdin(args: &[&str], input: Vec<u8>) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sin = child.stdin.take().unwrap();
    // A reader that stops early makes this write fail: that is its business.
    std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut sin, &input);
    });
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let (o, e) = (read(Box::new(out)), read(Box::new(err)));
    let status = wait_bounded(&mut child, Duration::from_secs(90));
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

#[test]
fn replay_reads_standard_input_and_fifos() {
    let f = flood();
    let want = run(&["replay", "-q", f.to_str().unwrap()]);
    assert!(want.status.success());
    assert_eq!(stdout(&want).lines().count(), 7, "{}", stdout(&want));
    let bytes = std::fs::read(&f).unwrap();
    for workers in ["1", "2"] {
        let o = run_with_stdin(&["replay", "-q", "-w", workers, "-"], bytes.clone());
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), stdout(&want), "stdin, {workers} worker(s)");
    }
    // /dev/stdin on a pipe is a stream too.
    let o = run_with_stdin(&["replay", "-q", "/dev/stdin"], bytes.clone());
    assert_eq!(stdout(&o), stdout(&want), "{}", stderr(&o));

    // A FIFO: opened once (it used to be opened to check, then again to
    // read, which waits forever for a second writer).
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("capture.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&fifo) {
                let _ = std::io::Write::write_all(&mut w, &bytes);
            }
        })
    };
    let o = run_with_stdin(&["replay", "-q", "-w", "2", fifo.to_str().unwrap()], vec![]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), stdout(&want));
    writer.join().unwrap();

    // Not a capture on standard input: a clear error naming it.
    let o = run_with_stdin(&["replay", "-"], b"hello\n".to_vec());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read capture <stdin>"),
        "{}",
        stderr(&o)
    );
}

// ------------------------------------------------ 8: corruption mid-file ----

/// Byte offset of each record header of a classic (little-endian) pcap.
fn record_offsets(pcap: &[u8]) -> Vec<usize> {
    let mut at = 24;
    let mut v = vec![];
    while at + 16 <= pcap.len() {
        v.push(at);
        let incl = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + incl;
    }
    v
}

#[test]
fn corruption_mid_file_names_the_record_and_offset_and_exits_3() {
    let mut bytes = std::fs::read(flood()).unwrap();
    let offsets = record_offsets(&bytes);
    assert_eq!(offsets.len(), 18_498);
    // Record 101 claims 4 GB of data.
    let at = offsets[100];
    bytes[at + 8..at + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("corrupt.pcap");
    std::fs::write(&bad, &bytes).unwrap();
    let o = bin().arg("replay").arg(&bad).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "{} ended early: record 101 at byte offset {at}:",
            bad.display()
        )),
        "{err}"
    );
    // It goes on at the next record: only the corrupt one is lost, and the
    // flood is still seen whole.
    let next = offsets[101];
    assert!(
        err.contains(&format!(
            "skipped {} bytes, went on at byte offset {next}",
            next - at
        )),
        "{err}"
    );
    assert!(err.contains("packets: 18497 read"), "{err}");
    let states = |o: &Output| -> Vec<String> {
        common::alerts_json(&stdout(o))
            .iter()
            .map(|a| format!("{} {} {}", a["kind"], a["state"], a["event_time"]))
            .collect()
    };
    let good = run(&["replay", "-q", flood().to_str().unwrap()]);
    assert_eq!(states(&o), states(&good));
    assert_eq!(states(&o).len(), 7);

    // Garbage in the middle (a run of 0xff over records 200..=202): it
    // goes on at the first record after it.
    let mut garbled = std::fs::read(flood()).unwrap();
    let (from, to) = (offsets[199] + 5, offsets[202] + 3);
    garbled[from..to].fill(0xff);
    std::fs::write(&bad, &garbled).unwrap();
    let o = bin().arg("replay").arg(&bad).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("went on at byte offset {}", offsets[203])),
        "{err}"
    );
    assert!(err.contains("packets: 18494 read"), "{err}");

    // A sensor publishing that file says so too, and exits 3.
    use common::amqp::{Cleanup, URI, broker_up, unique};
    if broker_up() {
        let q = unique("hostile-sensor");
        let _c = Cleanup {
            queues: vec![q.clone()],
            exchanges: vec![],
        };
        let o = bin()
            .args(["sensor", "--queue", &q, "--file"])
            .arg(&bad)
            .env("DNSMONITOR_AMQP_URI", URI)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(
            err.contains("18494 packets") && err.contains("ended early: record 200 at byte offset"),
            "{err}"
        );
    }
    // The same through standard input, even with --quiet.
    let o = run_with_stdin(&["replay", "-q", "-"], bytes);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("<stdin> ended early: record 101"),
        "{}",
        stderr(&o)
    );
}

// ------------------------------------------ 11: timestamps past 2038 ----

#[test]
fn a_record_in_2100_is_read_as_2100_not_1963() {
    use dnsmonitor::synth::{FrameBuilder, PcapWriter, qtype};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("2100.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&p).unwrap()).unwrap();
    let mut fb = FrameBuilder::new();
    let (c, s) = (
        "10.0.0.9:4000".parse().unwrap(),
        "192.0.2.53:53".parse().unwrap(),
    );
    // 2100-01-01T00:00:00Z: past 2^31 seconds, below 2^32.
    let t = 4_102_444_800_000_000;
    w.write_frame(t, fb.query(c, s, 1, "example.com", qtype::A, false))
        .unwrap();
    w.into_inner().unwrap();
    let o = run(&["replay", "-q", "--events", "-", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("\"ts\":\"2100-01-01T00:00:00"), "{out}");
}

// ------------------------------------------------ 9: rejected list lines ----

#[test]
fn rejected_blocklist_lines_are_reported_and_junk_lists_refused() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("mixed.txt");
    std::fs::write(
        &list,
        "evil.example\na..b\n1.2.3.4\n\x1b[31mred\x07.example\nbad.example\n",
    )
    .unwrap();
    let pipeline = dir.path().join("p.toml");
    std::fs::write(
        &pipeline,
        "[detectors.blocklist_hit]\nlists = [\"mixed.txt\"]\n",
    )
    .unwrap();
    let l = list.display().to_string();
    for o in [
        bin().arg("check").arg(&pipeline).output().unwrap(),
        bin()
            .args(["replay", "-q", "-b"])
            .arg(&list)
            .arg(flood())
            .output()
            .unwrap(),
    ] {
        let err = stderr(&o);
        assert!(o.status.success(), "{err}");
        for line in [2, 3, 4] {
            assert!(err.contains(&format!("{l}:{line}: ")), "{err}");
        }
        assert!(!err.contains(&format!("{l}:1:")), "{err}");
        assert!(
            err.contains("3 blocklist line(s) rejected in 1 list(s)"),
            "{err}"
        );
        assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    }

    // 2 MB of binary data is not a list of "a few entries".
    let junk = dir.path().join("junk.bin");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..2_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect();
    let nul = bytes.iter().position(|&b| b == 0).unwrap();
    std::fs::write(&junk, &bytes).unwrap();
    // A list that is refused: a usage error, with the reason on stderr.
    let refused = |list: &Path| -> String {
        let o = bin()
            .args(["replay", "-q", "-b"])
            .arg(list)
            .arg("captures/loopback-dig.pcap")
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        err
    };
    let err = refused(&junk);
    assert!(
        err.contains(&format!(
            "{}: not a text list: NUL byte at byte offset {nul}",
            junk.display()
        )),
        "{err}"
    );
    // Text of which no line is usable.
    let csv = dir.path().join("names.csv");
    std::fs::write(&csv, "label,qname\n1,a.example\n0,b.example\n").unwrap();
    let err = refused(&csv);
    assert!(
        err.contains("no usable entry: all 3 lines rejected") && err.contains(":1: "),
        "{err}"
    );
}

// ------------------------------------- 10: what `dnsmonitor alerts` prints ----

/// Bytes that act on a terminal: ESC, BEL, a bidi override.
fn raw_terminal_bytes(s: &str) -> bool {
    s.contains(['\u{1b}', '\u{7}', '\u{202e}'])
}

#[test]
fn alerts_prints_only_alerts_and_nothing_that_acts_on_a_terminal() {
    use common::amqp::{Cleanup, URI, broker_up, unique};
    use std::io::BufRead;
    if !broker_up() {
        return;
    }
    let exchange = unique("hostile-alerts");
    let _c = Cleanup {
        queues: vec![],
        exchanges: vec![exchange.clone()],
    };
    let mut child = bin()
        .args(["alerts", "--exchange", &exchange])
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.starts_with("alerts: listening"), "{first}");
    let out = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            let _ = tx.send(l.unwrap());
        }
    });

    let (good, v) = publish_hostile_bodies(&exchange);
    let mut got = vec![];
    while got.len() < 3 {
        match lines.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => got.push(l),
            Err(_) => break,
        }
    }
    // More lines would come within a moment if non-alerts were printed.
    if let Ok(l) = lines.recv_timeout(Duration::from_millis(500)) {
        got.push(l);
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let st = wait_bounded(&mut child, Duration::from_secs(10));
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert!(st.success(), "{rest}");
    assert_eq!(got.len(), 3, "{got:#?}\n{rest}");
    // A clean alert goes out byte for byte; the others as one escaped line
    // holding the same JSON value.
    assert_eq!(got[0], good);
    for l in &got {
        assert!(!raw_terminal_bytes(l), "{l:?}");
    }
    for l in &got[1..] {
        let back: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(back, v, "{l}");
    }
    assert!(!raw_terminal_bytes(&rest), "{rest:?}");
    assert!(
        rest.contains("skipped messages that are not alerts: 1 report, 1 not JSON, 1 JSON that is not an alert"),
        "{rest}"
    );
    assert!(
        rest.contains("not an alert (not JSON): \\u{1b}[2J\\u{7}not json"),
        "{rest}"
    );
}

/// Publish to `exchange` (routing key `client_flood.critical`): a clean
/// alert, a report, a non-JSON body with ESC and BEL, JSON with a newline
/// that is not an alert, and an alert whose key holds U+202E, ESC and BEL
/// (once on one line, once pretty-printed over many). Returns the clean
/// alert's line and the hostile alert's value.
fn publish_hostile_bodies(exchange: &str) -> (String, serde_json::Value) {
    use common::amqp::{channel, rt, test_alert};
    use dnsmonitor::alert::State;
    use dnsmonitor::detect::{Kind, Severity};
    let good =
        test_alert(Kind::ClientFlood, Severity::Critical, State::Raised, 66, 0).to_json_line();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["key"]["client"] = "\u{202e}moc.live\u{1b}[2J\u{7}".into();
    let bodies = [
        good.clone(),
        "{\"schema\":\"dnsmonitor.report/1\",\"report\":\"top_qnames\",\"top\":[]}".into(),
        "\u{1b}[2J\u{7}not json at all".into(),
        "{\"a\":\n1}".into(),
        v.to_string(),
        serde_json::to_string_pretty(&v).unwrap(),
    ];
    rt().block_on(async {
        let (_conn, ch) = channel().await;
        for b in &bodies {
            ch.basic_publish(
                exchange.into(),
                "client_flood.critical".into(),
                Default::default(),
                b.as_bytes(),
                Default::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
    });
    (good, v)
}

#[test]
fn alerts_on_a_terminal_prints_escaped_readable_lines() {
    use common::amqp::{Cleanup, URI, broker_up, unique};
    use std::io::Read;
    if !broker_up() {
        return;
    }
    if Command::new("script").arg("--version").output().is_err() {
        common::cannot_run("no `script` (util-linux) to give the command a terminal");
        return;
    }
    let exchange = unique("hostile-tty");
    let _c = Cleanup {
        queues: vec![],
        exchanges: vec![exchange.clone()],
    };
    // `script` runs the command on a pseudo-terminal; SIGINT after 8 s.
    let cmd = format!("timeout -s INT 8 {BIN} alerts --exchange {exchange}");
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    read_until(&mut out, "alerts: listening");
    publish_hostile_bodies(&exchange);
    let st = wait_bounded(&mut child, Duration::from_secs(30));
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    // 124: `timeout` stopped it (it exits 0 on SIGINT; timeout says 124).
    assert_eq!(st.code(), Some(124), "{rest}");
    assert!(
        !rest.contains('\u{202e}') && !rest.contains('\u{7}') && !rest.contains("\u{1b}[2J"),
        "{rest:?}"
    );
    let plain = common::strip_colour(&rest);
    let lines: Vec<&str> = plain
        .lines()
        .filter(|l| l.contains("client_flood"))
        .collect();
    assert_eq!(lines.len(), 3, "{rest}");
    let words: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        words[1..5],
        ["raised", "CRITICAL", "client_flood", "client=192.0.2.66"],
        "{rest}"
    );
    for l in &lines[1..] {
        assert!(
            l.contains("client=\\u{202e}moc.live\\u{1b}[2J\\u{7}"),
            "{l}"
        );
    }
    assert!(
        rest.contains("skipped messages that are not alerts: 1 report, 1 not JSON, 1 JSON that is not an alert"),
        "{rest}"
    );
}

#[test]
fn the_terminal_form_of_an_alert_escapes_bidi_and_controls() {
    use dnsmonitor::amqp::subscriber::{NotAlert, alert_line};
    let body = r#"{"schema":"dnsmonitor.alert/1","kind":"client_flood","severity":"critical","state":"raised","key":{"client":"\u202emoc.live\u001b[2J"},"observed":1,"unit":"queries/s","threshold":1}"#;
    let line = alert_line(body, true).unwrap();
    assert!(!raw_terminal_bytes(&line), "{line:?}");
    assert!(
        line.contains("client=\\u{202e}moc.live\\u{1b}[2J"),
        "{line}"
    );
    let report = r#"{"schema":"dnsmonitor.report/1","report":"top_qnames"}"#;
    assert_eq!(alert_line(report, true), Err(NotAlert::Report));
    assert_eq!(alert_line("\u{7}", false), Err(NotAlert::NotJson));
}

// --------------------------------- 11: outputs, escaping in check, limits ----

#[test]
fn two_outputs_on_one_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let same = dir.path().join(".").join("out.jsonl");
    let f = flood();
    for (a, b) in [("--events", "--alerts"), ("--reports", "--events")] {
        let o = bin()
            .args(["replay", "-q"])
            .arg(&f)
            .arg(a)
            .arg(&out)
            .arg(b)
            .arg(&same)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{a} {b}: {err}");
        assert!(err.contains("is the same file as"), "{err}");
        assert!(!out.exists(), "an output was created before the refusal");
    }
    // Nor may an output overwrite the capture being read.
    let copy = dir.path().join("in.pcap");
    std::fs::copy(&f, &copy).unwrap();
    let o = bin()
        .args(["replay", "-q"])
        .arg(&copy)
        .arg("--events")
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&f).unwrap());
    // /dev/null and `-` may take several outputs.
    let o = run(&[
        "replay",
        "-q",
        "captures/loopback-dig.pcap",
        "--alerts",
        "/dev/null",
        "--events",
        "/dev/null",
        "--reports",
        "-",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn check_escapes_what_the_pipeline_file_says() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, "[window]\n\"\\u001b[2J\\u0007\\u202e\" = 1\n").unwrap();
    let o = bin().arg("check").arg(&p).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!raw_terminal_bytes(&err), "{err:?}");
    assert!(
        err.contains("unknown field `\\u{1b}[2J\\u{7}\\u{202e}`"),
        "{err}"
    );
    // Names from a valid file are printed too.
    std::fs::write(
        &p,
        "[source]\nqueue = \"q\\u001b[2J\"\n[sink]\ntype = \"amqp\"\nexchange = \"x\\u202e\"\n",
    )
    .unwrap();
    let o = bin().arg("check").arg(&p).output().unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!raw_terminal_bytes(&out), "{out:?}");
    assert!(
        out.contains("queue q\\u{1b}[2J") && out.contains("exchange x\\u{202e}"),
        "{out}"
    );
}

#[test]
fn limits_without_a_ceiling_are_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        "[capture]\nmax_tcp_flows = 18446744073709551615\nmax_fragment_datagrams = 100000000\nfragment_timeout_secs = 9223372036854775807\ntcp_flow_timeout_secs = 86401\n\n[alerts]\nhold_secs = 99999999999999\n\n[source]\nidle_timeout_secs = 18446744073709551615\n",
    )
    .unwrap();
    let o = bin().arg("check").arg(&p).output().unwrap();
    let err = stderr(&o);
    // Not a panic (exit 101): every key named with its line.
    assert_eq!(o.status.code(), Some(2), "{err}");
    let file = p.display().to_string();
    for (line, key) in [
        (2, "capture.max_tcp_flows"),
        (3, "capture.max_fragment_datagrams"),
        (4, "capture.fragment_timeout_secs"),
        (5, "capture.tcp_flow_timeout_secs"),
        (8, "alerts.hold_secs"),
        (11, "source.idle_timeout_secs"),
    ] {
        assert!(
            err.contains(&format!("{file}:{line}:")) && err.contains(&format!("key `{key}`")),
            "{key}: {err}"
        );
    }
    assert!(err.contains("must be between 1 and 16777216"), "{err}");

    // A replay pace that would sleep for ages is refused up front.
    for speed in ["1e-300x", "0.0001x", "1e300x"] {
        let o = run(&["replay", "captures/loopback-dig.pcap", "--speed", speed]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{speed}: {err}");
        assert!(err.contains("out of range"), "{err}");
    }
    let o = run(&[
        "replay",
        "-q",
        "captures/loopback-dig.pcap",
        "--speed",
        "1000000x",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Many TCP flows, each holding the start of a large DNS message that never
/// completes (about 10 KB apiece, 4 MB in all), against a 1 MiB total
/// budget (`capture.max_tcp_total_bytes`): the least recently active flows
/// are evicted and counted, and a flow that arrives afterwards still
/// delivers its query. Before, the only bound was 65 536 flows of 128 KiB.
#[test]
fn tcp_flows_holding_partial_messages_stay_under_the_byte_budget() {
    use dnsmonitor::synth::{FrameBuilder, PcapWriter, tcp_flags};
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("partial.pcap");
    let mut w = PcapWriter::create(&pcap).unwrap();
    let mut fb = FrameBuilder::new();
    let server: std::net::SocketAddr = "127.0.0.1:53".parse().unwrap();
    let t0 = 1_700_000_000_000_000;
    // A message announced as 60 000 bytes, 10 000 of them sent.
    let mut start = vec![0xea, 0x60];
    start.extend_from_slice(&[0x41; 9998]);
    let flows = 400u32;
    for i in 0..flows {
        let client = format!("127.0.{}.{}:{}", 1 + i / 250, 1 + i % 250, 40000 + i)
            .parse()
            .unwrap();
        let f = fb.tcp_segment(
            client,
            server,
            1,
            1,
            tcp_flags::PSH | tcp_flags::ACK,
            &start,
        );
        w.write_frame(t0 + i64::from(i) * 1000, f).unwrap();
    }
    let q = dns_query(7);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    let client = "127.0.9.9:50000".parse().unwrap();
    let f = fb.tcp_segment(
        client,
        server,
        1,
        1,
        tcp_flags::PSH | tcp_flags::ACK,
        &framed,
    );
    w.write_frame(t0 + 1_000_000, f).unwrap();
    drop(w);
    let p = dir.path().join("p.toml");
    std::fs::write(&p, "[capture]\nmax_tcp_total_bytes = 1048576\n").unwrap();
    let o = bin()
        .arg("replay")
        .arg(&pcap)
        .arg("--pipeline")
        .arg(&p)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("dns messages: 1 ("), "{err}");
    let evicted: u64 = err
        .split(" tcp byte-budget evictions")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte-budget count: {err}"));
    // 104 flows of 10 000 bytes fit in 1 MiB; every other one was evicted.
    assert_eq!(evicted, u64::from(flows) - 104, "{err}");

    // The budget has a floor (one flow's buffer) and a ceiling.
    for v in ["0", "1000", "18446744073709551615"] {
        std::fs::write(&p, format!("[capture]\nmax_tcp_total_bytes = {v}\n")).unwrap();
        let o = bin().arg("check").arg(&p).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{v}: {err}");
        assert!(err.contains("key `capture.max_tcp_total_bytes`"), "{err}");
    }
}

/// The flood capture rewritten as pcapng (section, interface, one enhanced
/// packet block per frame) and the offset of each packet block.
fn flood_as_pcapng() -> (Vec<u8>, Vec<usize>) {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = (12 + body.len().next_multiple_of(4)) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + body.len().next_multiple_of(4) - body.len(), 0);
        out.extend_from_slice(&len.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0A0D_0D0A, &shb);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&65535u32.to_le_bytes());
    block(&mut out, 1, &idb);
    let mut offsets = vec![];
    for (_, ts, data, orig) in common::amqp::frames(&flood()) {
        offsets.push(out.len());
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ts as u64 >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&orig.to_le_bytes());
        epb.extend_from_slice(&data);
        block(&mut out, 6, &epb);
    }
    (out, offsets)
}

/// pcapng goes on after a corrupt block too (it used to drop the rest of
/// the file): a packet block claiming 4 GB, then a run of garbage over
/// three blocks. The bad block is named with its record number and byte
/// offset, reading goes on at the next good block, the flood's alerts are
/// those of the clean file, and the exit code is 3.
#[test]
fn pcapng_goes_on_after_a_corrupt_block() {
    let (clean, offsets) = flood_as_pcapng();
    assert_eq!(offsets.len(), 18_498);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("clean.pcapng");
    std::fs::write(&good, &clean).unwrap();
    let o = bin().arg("replay").arg(&good).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let states = |o: &Output| -> Vec<String> {
        common::alerts_json(&stdout(o))
            .iter()
            .map(|a| format!("{} {} {}", a["kind"], a["state"], a["event_time"]))
            .collect()
    };
    let expected = states(&o);
    assert_eq!(expected.len(), 7);

    let bad = dir.path().join("corrupt.pcapng");
    let mut bytes = clean.clone();
    let at = offsets[100];
    bytes[at + 4..at + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    std::fs::write(&bad, &bytes).unwrap();
    let o = bin().arg("replay").arg(&bad).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "{} ended early: record 101 at byte offset {at}:",
            bad.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("went on at byte offset {}", offsets[101])),
        "{err}"
    );
    assert!(err.contains("packets: 18497 read"), "{err}");
    assert_eq!(states(&o), expected);

    // Garbage over blocks 200..=202, then a second corrupt block later on
    // (found by our own reader after the first resync).
    let mut garbled = clean.clone();
    garbled[offsets[199] + 5..offsets[202] + 3].fill(0xff);
    let later = offsets[5000];
    garbled[later + 4..later + 8].copy_from_slice(&7u32.to_le_bytes());
    std::fs::write(&bad, &garbled).unwrap();
    let o = bin().arg("replay").arg(&bad).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("went on at byte offset {}", offsets[203])),
        "{err}"
    );
    assert!(
        err.contains(&format!("byte offset {later}: "))
            && err.contains(&format!("went on at byte offset {}", offsets[5001])),
        "{err}"
    );
    assert!(err.contains("packets: 18493 read"), "{err}");
}
