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
        eprintln!("skipped: not root: capturing on lo needs CAP_NET_RAW");
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
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("live: capturing on lo") {
        match std::io::Read::read(&mut err, &mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => panic!("live ended early: {}", String::from_utf8_lossy(&seen)),
        }
    }
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
    use dnsmonitor::sinks::amqp::redact;
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
    let e = match dnsmonitor::sinks::amqp::AmqpAlertSink::connect(uri, "", None) {
        Ok(_) => panic!("connected over amqps:// without TLS"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("not supported") && !e.contains(":guest@"), "{e}");
}
