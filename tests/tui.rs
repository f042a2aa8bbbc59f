//! `--tui`, for real: tmux runs `dnsmonitor replay --tui` of a synth
//! capture with a client flood on a 160x45 terminal; `capture-pane` reads
//! what a person would see, `send-keys` types. Every wait polls the screen
//! (or a file) against a deadline. tmux is a Debian package installed by
//! scripts/install-deps.sh.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dnsmonitor::time::Clock;

const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");

/// A tmux server of its own (`-L`), killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(tag: &str) -> Tmux {
        let v = Command::new("tmux").arg("-V").output();
        assert!(
            v.is_ok_and(|o| o.status.success()),
            "tmux is needed (Debian package tmux; scripts/install-deps.sh installs it)"
        );
        Tmux {
            socket: format!("dnsmonitor-tui-{}-{tag}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let o = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env("TERM", "xterm-256color")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// Start `script` (bash) in a detached 160x45 session.
    fn start(&self, script: &str) {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "160",
            "-y",
            "45",
            "bash",
            "-c",
            script,
        ]);
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", "t", keys]);
    }

    /// Poll the screen until `ready` holds; panics with the last screen
    /// after `secs`.
    fn wait_for(&self, what: &str, secs: u64, ready: impl Fn(&str) -> bool) -> String {
        let clock = Clock;
        let t0 = clock.now();
        loop {
            let s = self.screen();
            if ready(&s) {
                return s;
            }
            if clock.now().saturating_duration_since(t0) > Duration::from_secs(secs) {
                panic!("no {what} within {secs} s; the screen:\n{s}");
            }
            clock.sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// A 40 s synth capture: background traffic, and 10.66.0.1 flooding from
/// 12 s to 28 s (at 600 q/s with `--rate-scale 0.2`).
fn flood_capture(dir: &Path) -> PathBuf {
    let pcap = dir.join("flood.pcap");
    let o = Command::new(BIN)
        .args(["synth", "--scenario", "client_flood", "--duration", "40"])
        .args(["--rate-scale", "0.2", "--out"])
        .arg(&pcap)
        .arg("--truth")
        .arg(dir.join("flood.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    pcap
}

/// Wait for the file `path` (written when the command exits) and read it.
fn wait_file(path: &Path, secs: u64) -> String {
    let clock = Clock;
    let t0 = clock.now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        assert!(
            clock.now().saturating_duration_since(t0) < Duration::from_secs(secs),
            "{} not written within {secs} s",
            path.display()
        );
        clock.sleep(Duration::from_millis(100));
    }
}

/// The replay of `capture` with `args` under tmux; stderr and the exit
/// status go to files in `dir`.
fn start_replay(tmux: &Tmux, dir: &Path, capture: &Path, args: &str) {
    tmux.start(&format!(
        "cd {dir}; {BIN} replay {capture} {args} --tui 2>stderr.txt; echo $? > status.txt; sleep 600",
        dir = dir.display(),
        capture = capture.display(),
    ));
}

fn has_row(screen: &str, title: &str) -> bool {
    // A table is filled when its title names the report interval.
    screen.contains(&format!("{title} to 20"))
}

#[test]
fn paced_replay_screen_shows_the_attack_and_q_quits_with_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let capture = flood_capture(dir.path());
    let tmux = Tmux::new("paced");
    start_replay(&tmux, dir.path(), &capture, "--speed 4x");

    // The flood (12 s in, 3 s at 4x) is raised on the screen, the tables
    // fill from the report stream, the RCODE mix from the metrics.
    let s = tmux.wait_for("flood alert and filled tables", 60, |s| {
        s.contains("client=10.66.0.1")
            && (s.contains("WARNING") || s.contains("CRITICAL"))
            && has_row(s, "top clients")
            && has_row(s, "top registered domains")
            && has_row(s, "top query names")
    });
    assert!(s.contains(" LIVE "), "{s}");
    assert!(s.contains("rcode mix") && s.contains("noerror"), "{s}");
    assert!(s.contains("open alerts: 1"), "{s}");
    assert!(s.contains("packets/s"), "{s}");
    // The flooding client tops the clients table once its interval closed.
    let s = tmux.wait_for("the flooder at the top of the clients", 60, |s| {
        s.lines()
            .find(|l| l.contains("top clients to"))
            .and_then(|_| {
                let i = s.lines().position(|l| l.contains("top clients to"))?;
                s.lines().nth(i + 1)
            })
            .is_some_and(|row| row.trim_start_matches('│').starts_with("10.66.0.1"))
    });

    // Pause freezes the screen; sorting still works on what is shown.
    tmux.keys("p");
    let paused = tmux.wait_for("pause", 10, |s| s.contains(" PAUSED "));
    tmux.keys("s");
    tmux.wait_for("tables sorted by name", 10, |s| s.contains(", by name"));
    let packets = |s: &str| {
        s.split("│ packets ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    };
    let frozen = packets(&paused);
    Clock.sleep(Duration::from_millis(1500));
    assert_eq!(packets(&tmux.screen()), frozen, "a paused screen moved");
    tmux.keys("p");
    tmux.wait_for("resume", 10, |s| {
        s.contains(" LIVE ") && packets(s) != frozen
    });
    drop(s);

    // q stops the run: windows closed, summary printed, exit 0, terminal
    // given back (no screen left).
    tmux.keys("q");
    let status = wait_file(&dir.path().join("status.txt"), 30);
    let stderr = std::fs::read_to_string(dir.path().join("stderr.txt")).unwrap();
    assert_eq!(status.trim(), "0", "{stderr}");
    assert!(
        stderr.contains("--- dnsmonitor replay summary ---"),
        "{stderr}"
    );
    assert!(stderr.contains("client_flood/raised=1"), "{stderr}");
    let after = tmux.screen();
    assert!(!after.contains("q quit · p pause"), "{after}");
}

#[test]
fn screen_stays_after_the_input_ends_until_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let capture = flood_capture(dir.path());
    let tmux = Tmux::new("ended");
    start_replay(&tmux, dir.path(), &capture, "");
    let s = tmux.wait_for("the end of the input", 60, |s| {
        s.contains("INPUT ENDED") && has_row(s, "top query names")
    });
    // The final counts (every packet), the flood still open at the end.
    assert!(s.contains("open alerts: 1"), "{s}");
    assert!(s.contains("alert states 6"), "{s}");
    assert!(
        !dir.path().join("status.txt").exists(),
        "the screen left before q"
    );
    // Ctrl-C is a key on a raw terminal: it quits as q does.
    tmux.keys("C-c");
    let status = wait_file(&dir.path().join("status.txt"), 30);
    let stderr = std::fs::read_to_string(dir.path().join("stderr.txt")).unwrap();
    assert_eq!(status.trim(), "0", "{stderr}");
    assert!(stderr.contains("still active at end: 1"), "{stderr}");
    let packets = stderr
        .split("packets: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    assert!(
        s.contains(&format!("│ packets {packets} ")),
        "{packets}: {s}"
    );
}

#[test]
fn tui_needs_a_terminal_and_standard_output_to_itself() {
    let o = Command::new(BIN)
        .args(["replay", "captures/loopback-dig.pcap", "--tui"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--tui needs a terminal"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(BIN)
        .args([
            "replay",
            "captures/loopback-dig.pcap",
            "--tui",
            "--alerts",
            "-",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--alerts - cannot go to standard output"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
