//! What a newcomer and an operator see first (issue 17): the demo build,
//! alerts on a terminal, signals stopping a replay, files out of time
//! order, `check` and `synth` errors, the test-data and skipped-test
//! messages, the event schema and the summary's TCP line. The binary is run
//! as users run it; terminals are real pseudo-terminals (`script`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dnsmonitor::time::Clock;

const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn capture(name: &str) -> PathBuf {
    repo().join("captures").join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a bash script; its output and how long it took.
fn sh(script: &str) -> (Output, Duration) {
    let t0 = Clock.now();
    let out = Command::new("bash")
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out, Clock.now().saturating_duration_since(t0))
}

/// Every non-empty line of `text` starts with `prefix` (and there is one).
fn every_line_starts_with(text: &str, prefix: &str) {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no lines");
    for l in lines {
        assert!(l.starts_with(prefix), "{l}");
    }
}

/// Runs `cmd` (a shell command line) on a pseudo-terminal; its output.
fn on_terminal(cmd: &str) -> String {
    let out = Command::new("script")
        .args(["-qfec", cmd, "/dev/null"])
        .stdin(Stdio::null())
        .env_remove("NO_COLOR")
        .output()
        .expect("`script` (util-linux) gives the command a terminal");
    assert!(out.status.success(), "{cmd}: {}", text(&out.stdout));
    text(&out.stdout)
}

// ------------------------------------------------------- 1: the demo ----

#[test]
fn demo_says_a_build_is_running_and_shows_cargo_progress() {
    let dir = tempfile::tempdir().unwrap();
    let stubs = dir.path().join("bin");
    std::fs::create_dir(&stubs).unwrap();
    // A stand-in cargo: records its arguments and "builds" a dnsmonitor
    // that prints its own.
    let cargo = stubs.join("cargo");
    std::fs::write(
        &cargo,
        "#!/bin/sh\necho \"stub cargo $*\" >&2\nmkdir -p \"$CARGO_TARGET_DIR/release\"\n\
         printf '#!/bin/sh\\necho demo-ran \"$@\"\\n' >\"$CARGO_TARGET_DIR/release/dnsmonitor\"\n\
         chmod +x \"$CARGO_TARGET_DIR/release/dnsmonitor\"\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&cargo)
        .status()
        .unwrap();
    let path = format!("{}:{}", stubs.display(), std::env::var("PATH").unwrap());
    let out = Command::new(repo().join("scripts/demo.sh"))
        .arg("--workers")
        .arg("2")
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("building dnsmonitor (release) for the first time")
            && stderr.contains("minutes"),
        "{stderr}"
    );
    // Not --quiet: cargo's progress shows.
    assert!(stderr.contains("stub cargo build --release\n"), "{stderr}");
    assert_eq!(
        stdout,
        "demo-ran replay captures/loopback-flood.pcap --workers 2\n"
    );
}

// -------------------------------------------- 2: alerts on a terminal ----

#[test]
fn replay_on_a_terminal_prints_aligned_coloured_lines() {
    let flood = capture("loopback-flood.pcap");
    let screen = on_terminal(&format!("{BIN} replay {} --quiet", flood.display()));
    assert!(!screen.contains("{\"schema\""), "{screen}");
    // Coloured: the critical severity in bold red.
    assert!(screen.contains("\u{1b}[1m\u{1b}[31mCRITICAL"), "{screen:?}");
    let plain = common::strip_colour(&screen);
    let lines: Vec<&str> = plain
        .lines()
        .filter(|l| l.contains("client_flood"))
        .collect();
    assert!(lines.len() >= 3, "{plain}");
    for l in &lines {
        assert!(l.contains("client=127.0.0.66"), "{l}");
        assert!(l.contains(" queries/s (threshold "), "{l}");
        // Evidence: sample names, or for a resolved alert its peak.
        assert!(
            l.contains("samples=") || l.contains("peak_observed="),
            "{l}"
        );
    }
    // Aligned: the kind and the key start at the same column on every line.
    let cols: Vec<_> = lines
        .iter()
        .map(|l| (l.find("client_flood"), l.find("client=")))
        .collect();
    assert!(cols.windows(2).all(|w| w[0] == w[1]), "{plain}");
    for state in ["raised", "updated", "resolved"] {
        assert!(lines.iter().any(|l| l.contains(state)), "{state}: {plain}");
    }
}

#[test]
fn hostile_query_names_reach_the_terminal_escaped() {
    use dnsmonitor::synth::{FrameBuilder, PcapWriter};
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("hostile.pcap");
    // 400 q/s for 12 s from one client, for a name with ESC [2J and a
    // right-to-left override (U+202E as UTF-8) in its first label.
    let mut w = PcapWriter::create(&pcap).unwrap();
    let mut fb = FrameBuilder::new();
    let (client, server) = (
        "192.0.2.66:40000".parse().unwrap(),
        "192.0.2.53:53".parse().unwrap(),
    );
    for i in 0..4800u32 {
        let ts = 1_700_000_000_000_000 + i64::from(i) * 2_500;
        let frame = fb.query(
            client,
            server,
            i as u16,
            "x\\027[2J\\226\\128\\174moc.test",
            1,
            false,
        );
        w.write_frame(ts, frame).unwrap();
    }
    w.into_inner().unwrap();
    let screen = on_terminal(&format!("{BIN} replay {} --quiet", pcap.display()));
    assert!(
        !screen.contains("\u{1b}[2J") && !screen.contains('\u{202e}'),
        "{screen:?}"
    );
    let plain = common::strip_colour(&screen);
    assert!(
        plain.contains("samples=x\\027[2J\\226\\128\\174moc.test"),
        "{plain}"
    );
}

#[test]
fn alert_lines_do_not_continue_the_progress_bar() {
    let flood = capture("loopback-flood.pcap");
    // With the progress bar (no --quiet), paced so it is drawn.
    let screen = on_terminal(&format!("{BIN} replay {} --speed 20x", flood.display()));
    let mut alerts = 0;
    for line in screen.lines().filter(|l| l.contains("client=")) {
        // What stays on the screen: the text after the last line erase.
        let shown = line.rsplit("\r\u{1b}[2K").next().unwrap();
        let shown = common::strip_colour(shown);
        assert!(shown.starts_with("2026-11-25T"), "{line:?}");
        alerts += 1;
    }
    assert!(alerts >= 3, "{screen}");
}

#[test]
fn alerts_dash_and_format_json_keep_json_lines_on_a_terminal() {
    let flood = capture("loopback-flood.pcap");
    for extra in ["--alerts -", "--format json"] {
        let screen = on_terminal(&format!("{BIN} replay {} --quiet {extra}", flood.display()));
        every_line_starts_with(&screen, "{\"schema\":\"dnsmonitor.alert/1\"");
    }
}

#[test]
fn format_human_without_a_terminal_writes_plain_lines() {
    let flood = capture("loopback-flood.pcap");
    let out = run(&[
        "replay",
        flood.to_str().unwrap(),
        "--quiet",
        "--format",
        "human",
    ]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(
        stdout.lines().any(|l| l.contains("CRITICAL client_flood")),
        "{stdout}"
    );
    let bad = run(&["replay", flood.to_str().unwrap(), "--format", "yaml"]);
    assert_eq!(bad.status.code(), Some(2));
}

// ------------------------------------------------ 3: the shared data ----

#[test]
fn missing_test_data_names_the_folder() {
    let missing = Path::new("/nonexistent/shared/data");
    let err = std::panic::catch_unwind(|| common::shared_data_at(missing)).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("/nonexistent/shared/data") && msg.contains("README.md"),
        "{msg}"
    );
    assert!(common::shared_data().join("captures").is_dir());
}

// ------------------------------------------- 4: skipped service tests ----

#[test]
fn a_missing_service_fails_when_required_and_is_counted_when_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("skipped.log");
    let err = std::panic::catch_unwind(|| {
        common::cannot_run_with("no RabbitMQ on 127.0.0.1:5672", true, &log)
    })
    .unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("no RabbitMQ") && msg.contains("DNSMONITOR_SKIP_SERVICES=1"),
        "{msg}"
    );
    assert!(!log.exists());
    common::cannot_run_with("not root", false, &log);
    common::cannot_run_with("not root", false, &log);
    let noted = std::fs::read_to_string(&log).unwrap();
    assert_eq!(noted.lines().count(), 2, "{noted}");
    assert!(
        noted
            .lines()
            .all(|l| l.ends_with("\tnot root")
                && l.contains("a_missing_service_fails_when_required")),
        "{noted}"
    );
}

#[test]
fn the_test_command_requires_services_unless_told_to_skip() {
    let script = std::fs::read_to_string(repo().join("scripts/test.sh")).unwrap();
    assert!(script.contains("export DNSMONITOR_REQUIRE_SERVICES=1"));
    assert!(script.contains("DNSMONITOR_SKIP_SERVICES"));
    // Its end-of-run report, on a log as the tests write it.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("skipped-tests.log");
    for reason in ["not root", "no RabbitMQ on 127.0.0.1:5672"] {
        common::cannot_run_with(reason, false, &log);
    }
    common::cannot_run_with("not root", false, &log);
    let (out, _) = sh(&format!(
        "eval \"$(sed -n '/^report_skipped()/,/^}}/p' {})\"; SKIPPED_LOG={} SKIP=1 report_skipped",
        repo().join("scripts/test.sh").display(),
        log.display()
    ));
    let report = text(&out.stdout);
    assert!(report.contains("3 test(s) were SKIPPED"), "{report}");
    assert!(report.contains("      2 not root\n"), "{report}");
    assert!(
        report.contains("      1 no RabbitMQ on 127.0.0.1:5672\n"),
        "{report}"
    );
    let services = std::fs::read_to_string(repo().join("scripts/services.sh")).unwrap();
    assert!(services.contains("STRICT=${DNSMONITOR_SERVICES_STRICT:-1}"));
    assert!(!services.contains("No test uses RabbitMQ"));
}

#[test]
fn services_fail_when_rabbitmq_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    // A rabbitmq-server that cannot start, on a port where nothing answers.
    std::fs::write(
        dir.path().join("rabbitmq-server"),
        "#!/bin/sh\necho 'stub: cannot start' >&2\nexit 1\n",
    )
    .unwrap();
    let (out, took) = sh(&format!(
        "chmod +x {d}/rabbitmq-server; PATH={d}:$PATH RABBITMQ_NODE_PORT=1 {}",
        repo().join("scripts/services.sh").display(),
        d = dir.path().display()
    ));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("rabbitmq-server -detached failed"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

// ------------------------------------------------- 6: replay signals ----

/// A paced replay (70 s of capture at 10x) stopped by `signal` after 3 s
/// (30 s into the capture): it closes the windows, writes the alerts,
/// prints the summary, exits 0.
fn replay_stopped_by(signal: &str, background: bool) {
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let flood = capture("loopback-flood.pcap");
    let replay = format!(
        "{BIN} replay {} --speed 10x --alerts {}",
        flood.display(),
        alerts.display()
    );
    // `bash -c 'cmd &'`: a non-interactive shell starts background jobs with
    // SIGINT ignored, as a user's `cmd &` in a script.
    let script = if background {
        format!("{replay} & pid=$!; sleep 3; kill -{signal} $pid; wait $pid")
    } else {
        // The replay's own exit status, not timeout's 124.
        format!("exec timeout --preserve-status -s {signal} 3 {replay}")
    };
    let (out, took) = sh(&script);
    let stderr = text(&out.stderr);
    // Stopped early: the whole replay takes 7 s; a paced replay holds no
    // batch back, so the stop is prompt.
    assert!(took < Duration::from_secs(5), "{signal}: took {took:?}");
    assert_eq!(out.status.code(), Some(0), "{signal}: {stderr}");
    assert!(
        stderr.contains("--- dnsmonitor replay summary ---"),
        "{stderr}"
    );
    // The flood starts 10 s into the capture: its alert was written.
    let written = std::fs::read_to_string(&alerts).unwrap();
    assert!(
        written.contains("\"state\":\"raised\""),
        "{signal}: {written}"
    );
}

#[test]
fn sigint_to_a_background_replay_stops_it_cleanly() {
    replay_stopped_by("INT", true);
}

#[test]
fn timeout_sigint_and_sigterm_stop_a_replay_cleanly() {
    replay_stopped_by("INT", false);
    replay_stopped_by("TERM", false);
}

#[test]
fn a_second_signal_later_than_a_second_exits_at_once() {
    let flood = capture("loopback-flood.pcap");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("events");
    // A run stuck writing to a reader that never reads (event lines to a
    // full pipe, from the flood 1 s in at 10x) cannot finish its stop: a
    // user who insists is obeyed.
    let script = format!(
        "mkfifo {fifo}; sleep 30 < {fifo} & reader=$!; \
         {BIN} replay {} --speed 10x --alerts /dev/null --events - > {fifo} & pid=$!; \
         sleep 2; kill -INT $pid; sleep 1.5; kill -INT $pid; wait $pid; rc=$?; \
         kill $reader; exit $rc",
        flood.display(),
        fifo = fifo.display()
    );
    let (out, took) = sh(&script);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

// ------------------------------------------- 7: files out of time order ----

#[test]
fn files_given_out_of_time_order_are_read_in_time_order() {
    let (dig, flood) = (capture("loopback-dig.pcap"), capture("loopback-flood.pcap"));
    let out = run(&[
        "replay",
        flood.to_str().unwrap(),
        dig.to_str().unwrap(),
        "--events",
        "/dev/null",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "reading the files in the time order of their first packet: {}, {}",
            dig.display(),
            flood.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("late messages"), "{stderr}");
    // The same alerts as the files given in order.
    let ordered = run(&["replay", dig.to_str().unwrap(), flood.to_str().unwrap()]);
    assert_eq!(text(&out.stdout), text(&ordered.stdout));
    assert!(!text(&ordered.stderr).contains("time order"));
}

// ------------------------------------------------------- 8: check ----

#[test]
fn check_reports_every_error_in_line_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        "[window]\nsize_secs = 10\nslide_secs = 3\n\n[alerts]\nhold_secs = \"soon\"\n\n\
         [detectors.client_flood]\nwarnng_qps = 1.0\n",
    )
    .unwrap();
    let out = run(&["check", p.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<usize> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(|l| {
            let rest = l.split_once("p.toml:").unwrap().1;
            rest.split(':').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(lines, [3, 6, 9], "{stderr}");
    assert!(stderr.contains("3 error(s)"), "{stderr}");
    assert!(stderr.contains("warnng_qps"), "{stderr}");
}

#[test]
fn a_missing_blocklist_file_names_the_flag() {
    let dig = capture("loopback-dig.pcap");
    let out = run(&[
        "replay",
        dig.to_str().unwrap(),
        "--blocklist",
        "/nonexistent/list.txt",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--blocklist /nonexistent/list.txt: cannot read"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("detectors.blocklist_hit.lists"),
        "{stderr}"
    );
}

// ------------------------------------------------------- 9: synth ----

#[test]
fn synth_usage_errors_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.pcap");
    let truth = dir.path().join("x.json");
    let (o, t) = (out.to_str().unwrap(), truth.to_str().unwrap());
    for (bad, says) in [
        (&["--duration", "0"][..], "duration must be at least 1 s"),
        (
            &["--rate-scale", "-1"],
            "rate scale must be a positive number",
        ),
        (&["--clients", "5"], "clients must be between"),
        (
            &["--attack-secs", "0"],
            "attack length must be at least 1 s",
        ),
        (
            &["--intensity", "client_flood=-2"],
            "intensity of client_flood must be a positive number",
        ),
        (&["--intensity", "nope=2"], "intensity for unknown attack"),
    ] {
        let mut args = vec![
            "synth",
            "--scenario",
            "client_flood",
            "--out",
            o,
            "--truth",
            t,
        ];
        args.extend_from_slice(bad);
        let r = run(&args);
        let stderr = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains(says), "{bad:?}: {stderr}");
        assert!(!stderr.contains("cannot write"), "{bad:?}: {stderr}");
        assert!(!out.exists() && !truth.exists(), "{bad:?} wrote a file");
    }
    // Several scenarios after one --scenario, as the usage line shows.
    let r = run(&[
        "synth",
        "--scenario",
        "benign",
        "client_flood",
        "--duration",
        "100",
        "--out",
        o,
        "--truth",
        t,
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&truth).unwrap()).unwrap();
    assert_eq!(
        truth["scenarios"],
        serde_json::json!(["benign", "client_flood"])
    );
}

// ------------------------------------------------ 10: smaller things ----

#[test]
fn event_lines_carry_their_schema_first() {
    let dig = capture("loopback-dig.pcap");
    let out = run(&[
        "replay",
        dig.to_str().unwrap(),
        "--events",
        "-",
        "--alerts",
        "/dev/null",
    ]);
    every_line_starts_with(
        &text(&out.stdout),
        "{\"schema\":\"dnsmonitor.event/1\",\"frame\":",
    );
}

#[test]
fn the_summary_counts_tcp_packets_without_dns_payload() {
    let dig = capture("loopback-dig.pcap");
    let out = run(&["replay", dig.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    let n: u64 = stderr
        .split_once("tcp without dns payload: ")
        .and_then(|(_, r)| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no tcp line: {stderr}"));
    // 60 TCP packets in the capture: handshakes, ACKs and FINs around
    // the DNS messages.
    assert!(n > 0 && n < 60, "{stderr}");
}

#[test]
fn alerts_help_shows_its_own_default_exchange() {
    let out = run(&["alerts", "--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("[default: dnsmonitor.alerts]"), "{help}");
    assert!(!help.contains("[sink] exchange"), "{help}");
}
