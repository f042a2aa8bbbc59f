//! A cluster of real dnsmonitor processes forming through a real ZooKeeper
//! (127.0.0.1:2181, started by scripts/services.sh): the same alerts at
//! every scale, `cluster status` and `cluster push`, clear errors for a
//! bad `--zookeeper`, a bad push and members that disagree, members
//! that re-form by themselves after a member loss (and grow back), a push
//! `--at` refused in time when a member never answers, a clustered
//! `consume` with one event time and one end of stream (`--exit-on-eos`),
//! and `live` members (each capturing its own share of lo, with dnsmasq,
//! dig and dnsperf) that re-form after a loss and switch at a pushed
//! event time.
//! Without a ZooKeeper the tests fail (`common::cannot_run`; only with
//! DNSMONITOR_SKIP_SERVICES=1 are they SKIPPED, and counted). Each test
//! uses a cluster name of its own.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::amqp::{tempdir, wait_output};
use common::proc::Proc;

const ZK: &str = "127.0.0.1:2181";

fn zk_up() -> bool {
    let addr: SocketAddr = ZK.parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        true
    } else {
        common::cannot_run("no ZooKeeper on 127.0.0.1:2181 (run scripts/services.sh)");
        false
    }
}

/// A cluster name no other test (or run) uses.
fn unique() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dnsmonitor"))
}

fn capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/loopback-flood.pcap")
}

/// The flags of a member of `cluster` at size `n`.
fn member_args(cluster: &str, n: usize) -> Vec<String> {
    [
        "--zookeeper",
        ZK,
        "--cluster",
        cluster,
        "--processes",
        &n.to_string(),
        "--advertise",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, 120)
}

/// Run an admin command (bounded by its own ZooKeeper timeout) with its
/// standard output kept.
fn admin(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// `cluster status --json` of `cluster` on the test ZooKeeper.
fn status_json(cluster: &str) -> Output {
    admin(bin().args([
        "cluster",
        "status",
        "--json",
        "--zookeeper",
        ZK,
        "--cluster",
        cluster,
    ]))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A `consume` member `name` of a cluster of `n` on queue `q` (a small
/// prefetch, so members share the batches; a 5 s idle timeout), writing
/// its alerts to `alerts`.
fn consume_member(name: &'static str, q: &str, cluster: &str, n: usize, alerts: &Path) -> Proc {
    let mut c = bin();
    c.args([
        "consume",
        "--queue",
        q,
        "--no-alert-exchange",
        "--idle-timeout",
        "5",
    ])
    .args(["--prefetch", "2", "--alerts"])
    .arg(alerts)
    .args(member_args(cluster, n))
    .env("DNSMONITOR_AMQP_URI", common::amqp::URI)
    .stdout(Stdio::null());
    Proc::spawn(name, &mut c)
}

/// Replay the capture in one process; the alert file's bytes.
fn replay_alone(dir: &Path, tag: &str, workers: usize, extra: &[&str]) -> Vec<u8> {
    let out = dir.join(format!("{tag}.jsonl"));
    let o = run(bin()
        .arg("replay")
        .arg(capture())
        .args(["-q", "--workers", &workers.to_string(), "--alerts"])
        .arg(&out)
        .args(extra));
    assert!(o.status.success(), "{tag}: {}", stderr(&o));
    std::fs::read(&out).unwrap()
}

/// Replay the capture on `n` member processes of a new cluster; each
/// member's alert file, by process index, and their stderr.
fn replay_cluster(dir: &Path, tag: &str, n: usize, extra: &[&str]) -> (Vec<Vec<u8>>, Vec<String>) {
    let cluster = unique();
    let children: Vec<(PathBuf, std::process::Child)> = (0..n)
        .map(|i| {
            let out = dir.join(format!("{tag}-{i}.jsonl"));
            let child = bin()
                .arg("replay")
                .arg(capture())
                .args(["-q", "--alerts"])
                .arg(&out)
                .args(member_args(&cluster, n))
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();
    let mut by_index = vec![Vec::new(); n];
    let mut errs = Vec::new();
    for (out, child) in children {
        let o = wait_output(child, 120);
        let e = stderr(&o);
        assert!(o.status.success(), "{tag} member: {e}");
        // "this is process I at ..."
        let i: usize = e
            .split("this is process ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no process index in: {e}"));
        by_index[i] = std::fs::read(&out).unwrap();
        errs.push(e);
    }
    (by_index, errs)
}

/// A member of a cluster of `n` replaying the capture in real time
/// (`--speed 1x`), its alerts in `dir/NAME.jsonl`.
fn paced_member(dir: &Path, cluster: &str, n: usize, name: &'static str) -> Proc {
    let mut c = bin();
    c.arg("replay")
        .arg(capture())
        .args(["-q", "--speed", "1x", "--alerts"])
        .arg(dir.join(format!("{name}.jsonl")))
        .args(member_args(cluster, n))
        .stdout(Stdio::null());
    Proc::spawn(name, &mut c)
}

#[test]
fn same_alerts_for_1x1_1x2_and_2_processes() {
    if !zk_up() {
        return;
    }
    let dir = tempdir("cluster-scale");
    let one = replay_alone(&dir, "1x1", 1, &[]);
    let two = replay_alone(&dir, "1x2", 2, &[]);
    assert!(
        one.iter().filter(|&&b| b == b'\n').count() >= 3,
        "the capture raises alerts: {}",
        String::from_utf8_lossy(&one)
    );
    assert_eq!(one, two, "1 process x 2 workers");
    let (members, errs) = replay_cluster(&dir, "2x1", 2, &[]);
    assert_eq!(
        String::from_utf8_lossy(&members[0]),
        String::from_utf8_lossy(&one),
        "2 processes x 1 worker: process 0's alerts"
    );
    assert!(members[1].is_empty(), "process 1 writes no alerts");
    assert!(
        errs.iter().any(|e| e.contains("formed with 2 members")),
        "{errs:?}"
    );
    // And 2 processes x 2 workers (4 workers in all).
    let (members, _) = replay_cluster(&dir, "2x2", 2, &["--workers", "2"]);
    assert_eq!(members[0], one, "2 processes x 2 workers");
}

#[test]
fn status_lists_running_members_and_standbys() {
    if !zk_up() {
        return;
    }
    let cluster = unique();
    let dir = tempdir("cluster-status");
    // Paced at recorded speed: the capture lasts 70 s, time enough to look.
    let start = |name: &'static str| paced_member(&dir, &cluster, 1, name);
    let mut first = start("first");
    first.wait_for_stderr("formed with 1 members", Duration::from_secs(60));
    let mut second = start("second");
    second.wait_for_stderr("waiting as a standby", Duration::from_secs(60));
    let o = status_json(&cluster);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["schema"], "dnsmonitor.cluster-status/1");
    assert_eq!(doc["cluster"], cluster.as_str());
    let members = doc["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{doc}");
    assert_eq!(members[0]["state"], "running", "{doc}");
    assert_eq!(members[0]["index"], 0, "{doc}");
    assert_eq!(members[1]["state"], "standby", "{doc}");
    assert!(members[1]["index"].is_null(), "{doc}");
    for m in members {
        assert!(
            m["address"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{doc}"
        );
        assert_eq!(m["pipeline_version"], members[0]["pipeline_version"]);
        assert!(m["since"].as_str().unwrap().ends_with('Z'), "{doc}");
    }
    drop(first);
    drop(second);
}

#[test]
fn a_bad_zookeeper_gives_a_clear_error_and_no_hang() {
    if !zk_up() {
        return;
    }
    let cases: [(&str, i32, &str); 4] = [
        ("127.0.0.1", 2, "has no port"),
        ("127.0.0.1:2181/", 0, ""),
        ("127.0.0.1:1", 1, "cannot reach ZooKeeper at 127.0.0.1:1"),
        (
            "127.0.0.1:2181/no-such-chroot",
            2,
            "chroot `/no-such-chroot` does not exist",
        ),
    ];
    for (zk, code, says) in cases {
        if code == 0 {
            continue;
        }
        let o = run(bin()
            .arg("replay")
            .arg(capture())
            .args(["-q", "--alerts", "/dev/null"])
            .args([
                "--zookeeper",
                zk,
                "--cluster",
                &unique(),
                "--processes",
                "1",
            ])
            .args(["--advertise", "127.0.0.1:0"]));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{zk}: {e}");
        assert!(e.contains(says), "{zk}: {e}");
    }
    // Flags that need --zookeeper, and --zookeeper without the rest.
    let o = run(bin().arg("replay").arg(capture()).args(["--cluster", "x"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("need --zookeeper"), "{}", stderr(&o));
    let o = run(bin().arg("replay").arg(capture()).args([
        "--zookeeper",
        ZK,
        "--cluster",
        "x",
        "--processes",
        "2",
    ]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("needs --advertise"), "{}", stderr(&o));
}

#[test]
fn members_that_never_arrive_end_the_wait_with_an_error() {
    if !zk_up() {
        return;
    }
    let dir = tempdir("cluster-never");
    let p = dir.join("p.toml");
    std::fs::write(&p, "[cluster]\nform_timeout_secs = 1\n").unwrap();
    let o = run(bin()
        .arg("replay")
        .arg(capture())
        .args(["-q", "--alerts", "/dev/null", "-p"])
        .arg(&p)
        .args(member_args(&unique(), 3)));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("1 of 3 members registered within 1 s"), "{e}");
}

#[test]
fn a_bad_push_is_refused_with_check_errors() {
    if !zk_up() {
        return;
    }
    let cluster = unique();
    let dir = tempdir("cluster-badpush");
    let p = dir.join("bad.toml");
    std::fs::write(&p, "[window]\nsize_secs = 10\nslide_secs = 3\n").unwrap();
    let o = run(bin()
        .args(["cluster", "push", "--zookeeper", ZK, "--cluster", &cluster])
        .arg(&p));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("bad.toml:3:"), "{e}");
    assert!(e.contains("window.slide_secs"), "{e}");
    assert!(e.contains("nothing pushed"), "{e}");
    // Nothing was stored.
    let o = run(bin().args([
        "cluster",
        "status",
        "--zookeeper",
        ZK,
        "--cluster",
        &cluster,
    ]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no such cluster"), "{}", stderr(&o));
}

#[test]
fn a_pushed_version_runs_and_members_that_disagree_are_refused() {
    if !zk_up() {
        return;
    }
    let cluster = unique();
    let dir = tempdir("cluster-push");
    let strict = dir.join("strict.toml");
    std::fs::write(
        &strict,
        "[detectors.client_flood]\nwarning_qps = 20.0\ncritical_qps = 40.0\n",
    )
    .unwrap();
    let list = dir.join("list.txt");
    std::fs::write(&list, "www.corp.test\n").unwrap();
    let o = admin(
        bin()
            .args(["cluster", "push", "--zookeeper", ZK, "--cluster", &cluster])
            .arg(&strict)
            .arg("--blocklist")
            .arg(&list),
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("pushed version 1"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // A member without --pipeline runs the pushed version: the alerts of
    // that pipeline and list in one process.
    let want = replay_alone(
        &dir,
        "local",
        1,
        &["-p", strict.to_str().unwrap(), "-b", list.to_str().unwrap()],
    );
    let default = replay_alone(&dir, "default", 1, &[]);
    assert_ne!(want, default, "the pushed pipeline changes the alerts");
    let out = dir.join("pushed.jsonl");
    let o = run(bin()
        .arg("replay")
        .arg(capture())
        .args(["-q", "--alerts"])
        .arg(&out)
        .args(member_args(&cluster, 1)));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("running pushed version 1"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&out).unwrap(), want);
    // A member started with another pipeline is refused.
    let o = run(bin()
        .arg("replay")
        .arg(capture())
        .args(["-q", "--alerts", "/dev/null"])
        .args(member_args(&cluster, 1))
        .args(["-p", "pipelines/default.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR")));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("is not the version pushed to the cluster (version 1"),
        "{e}"
    );
    // Status shows the version.
    let o = status_json(&cluster);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["config"]["version"], 1, "{doc}");
    assert_eq!(doc["config"]["blocklists"][0]["name"], "list.txt", "{doc}");
}

#[test]
fn members_with_different_worker_counts_do_not_form() {
    if !zk_up() {
        return;
    }
    let cluster = unique();
    let dir = tempdir("cluster-workers");
    let short = short_wait(&dir, "short.toml", "");
    let spawn = |workers: &str| {
        bin()
            .arg("replay")
            .arg(capture())
            .args(["-q", "--alerts", "/dev/null", "--workers", workers])
            .args(member_args(&cluster, 2))
            .arg("-p")
            .arg(&short)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("1");
    let b = spawn("2");
    refused_to_form(
        [wait_output(a, 120), wait_output(b, 120)],
        "give every member the same --workers",
    );
}

/// A pipeline of `body` whose `[cluster]` forming wait is 5 s (the table
/// is not part of the pipeline version members compare).
fn short_wait(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{body}[cluster]\nform_timeout_secs = 5\n")).unwrap();
    p
}

/// Two members that disagree: each one that sees the other's data refuses
/// with exit 2 and `why`; the other may find it gone already (it refused
/// and left) and then end its bounded wait with exit 1. At least one
/// refuses.
fn refused_to_form(outs: [Output; 2], why: &str) {
    let mut refused = 0;
    for o in outs {
        let e = stderr(&o);
        match o.status.code() {
            Some(2) => {
                assert!(e.contains(why), "{e}");
                refused += 1;
            }
            Some(1) => assert!(e.contains("1 of 2 members registered within 5 s"), "{e}"),
            c => panic!("exit {c:?}: {e}"),
        }
        assert!(
            !e.contains("node not exists"),
            "a member that left is not an error: {e}"
        );
    }
    assert!(refused >= 1, "nobody said why the cluster did not form");
}

#[test]
fn members_with_different_pipelines_do_not_form() {
    if !zk_up() {
        return;
    }
    let cluster = unique();
    let dir = tempdir("cluster-differ");
    let other = short_wait(&dir, "other.toml", "[alerts]\nhold_secs = 7\n");
    let same = short_wait(&dir, "same.toml", "");
    let spawn = |extra: &[&Path]| {
        bin()
            .arg("replay")
            .arg(capture())
            .args(["-q", "--alerts", "/dev/null"])
            .args(member_args(&cluster, 2))
            .args(extra.iter().flat_map(|p| ["-p".as_ref(), p.as_os_str()]))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&[&same]);
    let b = spawn(&[&other]);
    refused_to_form(
        [wait_output(a, 120), wait_output(b, 120)],
        "runs pipeline version",
    );
}

/// Two paced members (`speed`) form, the second gets `signal`, and the
/// first re-forms alone (2 members wanted, no standby) within a minute,
/// without exiting: the first (its stderr says why), the second, and the
/// folder of their alert files.
fn first_re_forms_alone_when_the_second_gets(
    signal: i32,
    tag: &str,
    speed: &str,
) -> (Proc, Proc, PathBuf, String) {
    let cluster = unique();
    let dir = tempdir(tag);
    let start = |name: &'static str| {
        let mut c = bin();
        c.arg("replay")
            .arg(capture())
            .args(["-q", "--speed", speed, "--alerts"])
            .arg(dir.join(format!("{name}.jsonl")))
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(member_args(&cluster, 2))
            .stdout(Stdio::null());
        Proc::spawn(name, &mut c)
    };
    let mut a = start("a");
    let mut b = start("b");
    a.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    b.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    b.signal(signal);
    a.wait_for_stderr("formed with 1 members (re-form 1,", Duration::from_secs(60));
    let e = a.stderr();
    assert!(
        e.contains("re-forming with the members present (re-form 1 of this process)"),
        "{e}"
    );
    assert!(
        e.contains("1 short of --processes 2"),
        "it says it runs below its size: {e}"
    );
    assert!(
        !e.contains("panicked"),
        "one clear line, no panic trace: {e}"
    );
    (a, b, dir, cluster)
}

/// The metrics address a member serves now (a re-formed member serves on
/// a new port when it was given port 0).
fn last_metrics_addr(stderr: &str) -> String {
    stderr
        .rsplit("serving on http://")
        .next()
        .and_then(|r| r.split('/').next())
        .expect("metrics address")
        .to_string()
}

/// Member loss in a replay: the survivor re-forms alone, replays the files
/// again from the start, and its alerts are those of a 1-process replay.
#[test]
fn a_killed_member_makes_the_other_re_form_and_replay_alone() {
    if !zk_up() {
        return;
    }
    let (mut a, _b, dir, _) =
        first_re_forms_alone_when_the_second_gets(libc::SIGKILL, "cluster-kill", "8x");
    let e = a.stderr();
    assert!(e.contains("the connection to process"), "{e}");
    let text = common::amqp::scrape(&last_metrics_addr(&e));
    assert_eq!(
        common::amqp::metric(&text, "dnsmonitor_cluster_reforms_total{cause=\"loss\"}"),
        1
    );
    assert_eq!(
        common::amqp::metric(&text, "dnsmonitor_cluster_process_index"),
        0
    );
    let st = a.wait(Duration::from_secs(120));
    assert!(st.success(), "{}", a.stderr());
    let want = replay_alone(&dir, "alone", 1, &[]);
    let got = std::fs::read(dir.join("a.jsonl")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "the survivor's alerts"
    );
}

#[test]
fn a_pushed_version_a_member_cannot_load_is_refused_counted_and_shown() {
    if !zk_up() {
        return;
    }
    let cluster = unique();
    let dir = tempdir("cluster-refuse");
    // Valid where it is pushed from (the list is beside it), invalid on a
    // member (a pushed pipeline's relative paths do not exist there).
    std::fs::write(dir.join("beside.txt"), "evil.test\n").unwrap();
    let p = dir.join("relative.toml");
    std::fs::write(&p, "[detectors.blocklist_hit]\nlists = [\"beside.txt\"]\n").unwrap();
    let mut c = bin();
    c.arg("replay")
        .arg(capture())
        .args(["-q", "--speed", "1x", "--alerts"])
        .arg(dir.join("a.jsonl"))
        .args(["--metrics-listen", "127.0.0.1:0"])
        .args(member_args(&cluster, 1))
        .stdout(Stdio::null());
    let mut member = Proc::spawn("member", &mut c);
    member.wait_for_stderr("formed with 1 members", Duration::from_secs(60));
    let o = admin(
        bin()
            .args(["cluster", "push", "--zookeeper", ZK, "--cluster", &cluster])
            .arg(&p),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    member.wait_for_stderr("refused pushed version 1", Duration::from_secs(60));
    let e = member.stderr();
    assert!(e.contains("beside.txt"), "the error names the list: {e}");
    let addr = e
        .split("serving on http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("metrics address")
        .to_string();
    let text = common::amqp::scrape(&addr);
    assert_eq!(
        common::amqp::metric(&text, "dnsmonitor_cluster_config_refused_total"),
        1
    );
    assert_eq!(common::amqp::metric(&text, "dnsmonitor_cluster_members"), 1);
    assert_eq!(
        common::amqp::metric(&text, "dnsmonitor_cluster_process_index"),
        0
    );
    assert_eq!(
        common::amqp::metric(
            &text,
            "dnsmonitor_zookeeper_session_state{session_state=\"connected\"}"
        ),
        1
    );
    let o = status_json(&cluster);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let refused = doc["members"][0]["refused"].as_str().unwrap_or_default();
    assert!(refused.starts_with("version 1:"), "{doc}");
    // It keeps running what it ran.
    assert!(member.child.try_wait().unwrap().is_none(), "still running");
    drop(member);
}

/// A ZooKeeper of the test's own (so restarting it disturbs nobody), on a
/// free port, stopped on drop.
struct OwnZooKeeper {
    dir: PathBuf,
    port: u16,
}

impl OwnZooKeeper {
    const SCRIPT: &'static str = "/usr/share/zookeeper/bin/zkServer.sh";

    fn start(dir: &Path) -> OwnZooKeeper {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("zoo.cfg"),
            format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\n\
                 clientPortAddress=127.0.0.1\nmaxClientCnxns=0\n\
                 4lw.commands.whitelist=ruok,srvr,stat,mntr\nadmin.enableServer=false\n\
                 minSessionTimeout=1000\nmaxSessionTimeout=60000\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let zk = OwnZooKeeper {
            dir: dir.to_path_buf(),
            port,
        };
        zk.server("start");
        zk
    }

    fn server(&self, what: &str) {
        let o = Command::new(Self::SCRIPT)
            .arg(what)
            .arg(self.dir.join("zoo.cfg"))
            .env("ZOO_LOG_DIR", &self.dir)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (scripts/install-deps.sh installs zookeeper)",
                    Self::SCRIPT
                )
            });
        assert!(o.status.success(), "zkServer.sh {what}: {}", stderr(&o));
        if what == "start" {
            self.wait_ready();
        }
    }

    /// Until it answers `ruok` with `imok` (bounded).
    fn wait_ready(&self) {
        let clock = dnsmonitor::time::Clock;
        let t0 = clock.now();
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let mut answer = String::new();
                if s.write_all(b"ruok").is_ok()
                    && s.read_to_string(&mut answer).is_ok()
                    && answer == "imok"
                {
                    return;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "own ZooKeeper on port {} not ready",
                self.port
            );
            clock.sleep(Duration::from_millis(100));
        }
    }

    fn hosts(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnZooKeeper {
    fn drop(&mut self) {
        let _ = Command::new(Self::SCRIPT)
            .arg("stop")
            .arg(self.dir.join("zoo.cfg"))
            .env("ZOO_LOG_DIR", &self.dir)
            .output();
    }
}

#[test]
fn a_zookeeper_restart_does_not_stop_the_cluster() {
    if !zk_up() {
        return;
    }
    let dir = tempdir("cluster-zk-restart");
    let zk = OwnZooKeeper::start(&dir.join("zk"));
    let cluster = unique();
    let want = replay_alone(&dir, "alone", 1, &[]);
    // Paced (the capture lasts 70 s; at 8x about 9 s): time to restart.
    let start = |name: &'static str| {
        let mut c = bin();
        c.arg("replay")
            .arg(capture())
            .args(["-q", "--speed", "8x", "--alerts"])
            .arg(dir.join(format!("{name}.jsonl")))
            .args(["--zookeeper", &zk.hosts(), "--cluster", &cluster])
            .args(["--processes", "2", "--advertise", "127.0.0.1:0"])
            .stdout(Stdio::null());
        Proc::spawn(name, &mut c)
    };
    let mut a = start("a");
    let mut b = start("b");
    a.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    b.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    zk.server("stop");
    zk.server("start");
    let o = admin(bin().args([
        "cluster",
        "status",
        "--json",
        "--zookeeper",
        &zk.hosts(),
        "--cluster",
        &cluster,
    ]));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let states: Vec<&str> = doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["running", "running"], "{doc}");
    for p in [&mut a, &mut b] {
        let st = p.wait(Duration::from_secs(120));
        assert!(st.success(), "{}: {}", p.name, p.stderr());
    }
    let index0 = if a.stderr().contains("this is process 0") {
        "a"
    } else {
        "b"
    };
    let got = std::fs::read(dir.join(format!("{index0}.jsonl"))).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

/// Two `consume` members share a queue as competing consumers: process 0
/// writes the alerts of `replay` on the same capture, both members ack what
/// they processed (nothing is left in the queue), and both stop cleanly.
#[test]
fn two_consume_members_share_a_queue_and_alert_like_replay() {
    use common::amqp::{broker_up, channel, publish, rt};
    if !zk_up() || !broker_up() {
        return;
    }
    let QueueCase {
        q,
        _cleanup,
        dir,
        want,
        bs,
    } = queue_case("cluster-consume", 1000, "sensor-cluster", false);
    let rt = rt();
    let cluster = unique();
    let start = |name: &'static str| {
        let alerts = dir.join(format!("{name}.jsonl"));
        consume_member(name, &q, &cluster, 2, &alerts)
    };
    let mut a = start("a");
    let mut b = start("b");
    a.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    b.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    // Published once both consume (a small prefetch shares the batches):
    // a member that has received nothing yet holds event time back (see
    // README, Cluster).
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        publish(&ch, &q, &bs).await;
    });
    let first = if a.stderr().contains("this is process 0") {
        "a"
    } else {
        "b"
    };
    // Once every sensor is idle, event time follows the clock and every
    // window closes: process 0's alerts become those of replay.
    let out = dir.join(format!("{first}.jsonl"));
    let clock = dnsmonitor::time::Clock;
    let t0 = clock.now();
    while std::fs::read(&out).unwrap_or_default() != want {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "process 0's alerts:\n{}\nreplay's:\n{}\n{}\n{}",
            String::from_utf8_lossy(&std::fs::read(&out).unwrap_or_default()),
            String::from_utf8_lossy(&want),
            a.stderr(),
            b.stderr()
        );
        clock.sleep(Duration::from_millis(200));
    }
    // Both stop (the run of each ends when every member's input ended).
    a.signal(libc::SIGINT);
    b.signal(libc::SIGINT);
    for p in [&mut a, &mut b] {
        let st = p.wait(Duration::from_secs(60));
        assert!(st.success(), "{}: {}", p.name, p.stderr());
    }
    assert_eq!(std::fs::read(&out).unwrap(), want);
    assert_eq!(queue_left(&q), 0, "every batch was acked");
    all_took_part(&[&a, &b]);
}

/// Member loss with `consume`: three members share a queue while a
/// sensor-like publisher sends the capture's batches one by one; one
/// member (not process 0) is killed (SIGKILL) mid-run. The two survivors
/// re-form by themselves, without exiting, and RabbitMQ delivers again
/// what was not acknowledged: every alert `replay` raises on the capture
/// is written (the same line, so the same id), the queue ends empty, and
/// the survivors stop cleanly on SIGINT.
#[test]
fn after_a_member_is_killed_the_survivors_re_form_and_lose_nothing() {
    use common::amqp::{broker_up, channel, publish};
    if !zk_up() || !broker_up() {
        return;
    }
    let QueueCase {
        q,
        _cleanup,
        dir,
        want,
        bs,
    } = queue_case("cluster-loss", 500, "sensor-loss", false);
    let want = String::from_utf8(want).unwrap();
    let cluster = unique();
    let alerts = dir.join("alerts.jsonl");
    let start = |name: &'static str| consume_member(name, &q, &cluster, 3, &alerts);
    let mut members: Vec<Proc> = ["a", "b", "c"].into_iter().map(start).collect();
    for p in &mut members {
        p.wait_for_stderr("formed with 3 members", Duration::from_secs(60));
    }
    // The sensor: one batch every 200 ms (about 7 s for the capture), on
    // while a member is killed and the others re-form.
    let sensor = {
        let q = q.clone();
        std::thread::spawn(move || {
            let rt = common::amqp::rt();
            rt.block_on(async {
                let (_conn, ch) = channel().await;
                for b in bs.chunks(1) {
                    publish(&ch, &q, b).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        })
    };
    // Kill a member that is not process 0 once it has taken batches.
    let victim = members
        .iter()
        .position(|p| !p.stderr().contains("this is process 0"))
        .unwrap();
    let mut dead = members.remove(victim);
    dead.wait_for_stderr("prefetched batches wait", Duration::from_secs(60));
    dead.signal(libc::SIGKILL);
    let clock = dnsmonitor::time::Clock;
    let killed = clock.now();
    for p in &mut members {
        p.wait_for_stderr("formed with 2 members (re-form 1,", Duration::from_secs(60));
        let e = p.stderr();
        assert!(
            e.contains("re-forming with the members present"),
            "{}: {e}",
            p.name
        );
        assert!(!e.contains("panicked"), "{}: {e}", p.name);
    }
    eprintln!(
        "re-formed {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    drop(dead);
    sensor.join().unwrap();
    // Every alert of replay appears in the (appended) alert file.
    let t0 = clock.now();
    loop {
        let got = std::fs::read_to_string(&alerts).unwrap_or_default();
        let missing: Vec<&str> = want
            .lines()
            .filter(|l| !got.lines().any(|g| g == *l))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "missing alerts:\n{}\ngot:\n{got}\n{}\n{}",
            missing.join("\n"),
            members[0].stderr(),
            members[1].stderr()
        );
        clock.sleep(Duration::from_millis(200));
    }
    for p in &members {
        p.signal(libc::SIGINT);
    }
    for p in &mut members {
        let st = p.wait(Duration::from_secs(60));
        assert!(st.success(), "{}: {}", p.name, p.stderr());
    }
    assert_eq!(queue_left(&q), 0, "every batch was acked in the end");
}

/// A member that stops answering without closing its connections (SIGSTOP:
/// a hung host) is noticed through ZooKeeper once its session expires: the
/// other re-forms alone instead of waiting for ever. A member that joins
/// then makes it re-form again to grow back to its size; both stop cleanly.
#[test]
fn a_hung_member_is_noticed_through_zookeeper_and_a_new_one_grows_the_cluster_back() {
    if !zk_up() {
        return;
    }
    // Session timeout (6 s) plus the grace (3 s), well inside the wait.
    let (mut a, b, dir, cluster) =
        first_re_forms_alone_when_the_second_gets(libc::SIGSTOP, "cluster-hung", "1x");
    let e = a.stderr();
    assert!(e.contains("left (its ZooKeeper session ended)"), "{e}");
    b.signal(libc::SIGKILL);
    let mut c = paced_member(&dir, &cluster, 2, "c");
    c.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    a.wait_for_stderr("formed with 2 members (re-form 2,", Duration::from_secs(60));
    let e = a.stderr();
    assert!(
        e.contains("registered while the cluster runs below --processes"),
        "{e}"
    );
    let text = common::amqp::scrape(&last_metrics_addr(&e));
    for (cause, n) in [("loss", 1), ("grow", 1)] {
        assert_eq!(
            common::amqp::metric(
                &text,
                &format!("dnsmonitor_cluster_reforms_total{{cause=\"{cause}\"}}")
            ),
            n,
            "{cause}"
        );
    }
    let o = status_json(&cluster);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let members = doc["members"].as_array().unwrap();
    let states: Vec<&str> = members
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["running", "running"], "{doc}");
    let mut reforms: Vec<u64> = members
        .iter()
        .map(|m| m["reforms"].as_u64().unwrap())
        .collect();
    reforms.sort();
    assert_eq!(reforms, [0, 2], "{doc}");
    // A member's run ends once every member's input has: stop both.
    a.signal(libc::SIGINT);
    c.signal(libc::SIGINT);
    for p in [&mut a, &mut c] {
        let st = p.wait(Duration::from_secs(60));
        assert!(st.success(), "{}: {}", p.name, p.stderr());
    }
}

/// The capture read by one process (one worker) with `new` scheduled from
/// pane `at_pane` through the same `Reload` path: the alerts.
fn alone_with_switch(old: &str, new: &str, at_pane: u64) -> Vec<u8> {
    use dnsmonitor::dataflow::reload::Reload;
    use dnsmonitor::dataflow::{self, Input, Outputs, RunOptions};
    use std::sync::Arc;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let old = Arc::new(common::plan(old, repo, &[]));
    let reload = Arc::new(Reload::new(old.clone()));
    let new = common::plan(new, repo, &[]);
    reload.schedule(Arc::new(new), at_pane).expect("compatible");
    let a = common::SharedBuf::default();
    let outputs = Outputs::json_lines(Box::new(a.clone()), None, None);
    let opts = RunOptions {
        workers: 1,
        reload: Some(reload),
        ..RunOptions::default()
    };
    let input = Input::Files(vec![capture()]);
    dataflow::run(old, input, opts, outputs).expect("run");
    a.text().into_bytes()
}

#[test]
fn a_threshold_pushed_mid_run_switches_every_member_at_its_event_time() {
    if !zk_up() {
        return;
    }
    let cluster = unique();
    let dir = tempdir("cluster-push-at");
    // Default thresholds raise the flood (18:01:02 .. 18:01:24.4) at
    // 18:01:12; raised ones from 18:01:15 on end it there.
    let old = "[detectors.client_flood]\nwarning_qps = 100.0\ncritical_qps = 300.0\n";
    let new = "[detectors.client_flood]\nwarning_qps = 100000.0\ncritical_qps = 200000.0\n";
    let p = dir.join("raised.toml");
    std::fs::write(&p, new).unwrap();
    let started = dir.join("default.toml");
    std::fs::write(&started, old).unwrap();
    let member = |name: &'static str| {
        let mut c = bin();
        c.arg("replay")
            .arg(capture())
            .args(["-q", "--speed", "1x", "--alerts"])
            .arg(dir.join(format!("{name}.jsonl")))
            .args(["--metrics-listen", "127.0.0.1:0", "--pipeline"])
            .arg(&started)
            .args(member_args(&cluster, 2))
            .stdout(Stdio::null());
        Proc::spawn(name, &mut c)
    };
    let mut members = [member("a"), member("b")];
    for m in members.iter_mut() {
        m.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    }
    let push = |at: &str| {
        let o = admin(
            bin()
                .args(["cluster", "push", "--zookeeper", ZK, "--cluster", &cluster])
                .args(["--at", at])
                .arg(&p),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // Version 1 at a time the members' input has passed (the capture
    // starts at 18:00:59.7): too late for them, refused by every member.
    let said = push("2026-11-25T18:00:30Z");
    assert!(
        said.contains("switch to it at event time 2026-11-25T18:00:30Z"),
        "{said}"
    );
    for m in members.iter_mut() {
        m.wait_for_stderr("refused pushed version 1", Duration::from_secs(30));
        let e = m.stderr();
        assert!(e.contains("already past that event time"), "{e}");
        let addr = last_metrics_addr(&e);
        let text = common::amqp::scrape(&addr);
        assert_eq!(
            common::amqp::metric(&text, "dnsmonitor_cluster_config_refused_total"),
            1
        );
    }
    let o = status_json(&cluster);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["config"]["at"], "2026-11-25T18:00:30Z", "{doc}");
    for m in doc["members"].as_array().unwrap() {
        let refused = m["refused"].as_str().unwrap_or_default();
        assert!(refused.starts_with("version 1:"), "{doc}");
    }
    // Version 2 ahead of them: every member switches at 18:01:15.
    push("2026-11-25T18:01:14.5Z");
    for m in members.iter_mut() {
        m.wait_for_stderr(
            "in force from event time 2026-11-25T18:01:15Z in every member",
            Duration::from_secs(30),
        );
    }
    for m in members.iter_mut() {
        assert!(m.wait(Duration::from_secs(120)).success(), "{}", m.stderr());
    }
    let index = |m: &Proc| -> usize {
        let e = m.stderr();
        e.split("this is process ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no process index in: {e}"))
    };
    let first = if index(&members[0]) == 0 { "a" } else { "b" };
    let got = std::fs::read(dir.join(format!("{first}.jsonl"))).unwrap();
    let pane = 1_795_629_600 + 75; // 2026-11-25T18:01:15Z, slide 1 s
    let want = alone_with_switch(old, new, pane);
    let alerts = common::alerts_json(&String::from_utf8_lossy(&want));
    assert!(
        alerts.iter().any(|a| a["state"] == "raised"),
        "old thresholds before 18:01:15"
    );
    let after: Vec<_> = alerts
        .iter()
        .filter(|a| a["event_time"].as_str().unwrap() > "2026-11-25T18:01:15Z")
        .collect();
    assert!(
        after.len() == 1 && after[0]["state"] == "resolved",
        "the new thresholds from 18:01:15 on: {after:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "process 0's alerts against one process switching at the same pane"
    );
}

/// `cluster push --at` with a member that never answers (SIGSTOP after it
/// formed: hung, but its ZooKeeper session outlives the test's stop, so
/// it is not noticed as lost): the other member, ready itself, answers
/// for the silent one once `[cluster] ready_timeout_secs` has passed, so
/// it refuses the version within that time (logged, counted, shown in
/// `cluster status`) and its readers go on instead of waiting at the pane
/// for ever. The stopped member, continued, reads that answer and refuses
/// too (all or none): neither switches, and process 0's alerts are those
/// of one process running the old version throughout.
#[test]
fn a_member_that_never_answers_a_push_at_makes_every_member_refuse_it_in_time() {
    if !zk_up() {
        return;
    }
    let cluster = unique();
    let dir = tempdir("cluster-ready-timeout");
    // A switch at 18:01:15 would end the flood's alert there (see
    // a_threshold_pushed_mid_run_switches_every_member_at_its_event_time).
    let old = "[detectors.client_flood]\nwarning_qps = 100.0\ncritical_qps = 300.0\n";
    let new = "[detectors.client_flood]\nwarning_qps = 100000.0\ncritical_qps = 200000.0\n";
    let p = dir.join("raised.toml");
    std::fs::write(&p, new).unwrap();
    let started = dir.join("started.toml");
    std::fs::write(
        &started,
        format!("{old}[cluster]\nsession_timeout_secs = 20\nready_timeout_secs = 2\n"),
    )
    .unwrap();
    let member = |name: &'static str| {
        let mut c = bin();
        c.arg("replay")
            .arg(capture())
            .args(["-q", "--speed", "1x", "--alerts"])
            .arg(dir.join(format!("{name}.jsonl")))
            .args(["--metrics-listen", "127.0.0.1:0", "--pipeline"])
            .arg(&started)
            .args(member_args(&cluster, 2))
            .stdout(Stdio::null());
        Proc::spawn(name, &mut c)
    };
    let mut a = member("a");
    let mut b = member("b");
    a.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    b.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    b.signal(libc::SIGSTOP);
    let clock = dnsmonitor::time::Clock;
    let pushed = clock.now();
    let o = admin(
        bin()
            .args(["cluster", "push", "--zookeeper", ZK, "--cluster", &cluster])
            .args(["--at", "2026-11-25T18:01:14.5Z"])
            .arg(&p),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    a.wait_for_stderr("refused pushed version 1", Duration::from_secs(15));
    let took = pushed.elapsed();
    eprintln!(
        "the ready member refused {:.2} s after the push",
        took.as_secs_f64()
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "refused after the 2 s ready timeout, not long after: {took:?}"
    );
    let e = a.stderr();
    assert!(
        e.contains("no answer within 2 s ([cluster] ready_timeout_secs"),
        "it says why: {e}"
    );
    assert!(!e.contains("in force from event time"), "{e}");
    let text = common::amqp::scrape(&last_metrics_addr(&e));
    assert_eq!(
        common::amqp::metric(&text, "dnsmonitor_cluster_config_refused_total"),
        1
    );
    let o = status_json(&cluster);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let refused: Vec<&str> = doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["refused"].as_str())
        .collect();
    assert!(
        refused.len() == 1 && refused[0].contains("ready_timeout_secs"),
        "the ready member shows it (the stopped one cannot yet): {doc}"
    );
    // The stopped member comes back: it finds its answer written, and
    // refuses the version as well.
    b.signal(libc::SIGCONT);
    b.wait_for_stderr("refused pushed version 1", Duration::from_secs(30));
    assert!(b.stderr().contains("ready_timeout_secs"), "{}", b.stderr());
    for m in [&mut a, &mut b] {
        let st = m.wait(Duration::from_secs(120));
        assert!(st.success(), "{}: {}", m.name, m.stderr());
        assert!(
            !m.stderr().contains("in force from event time"),
            "{}: {}",
            m.name,
            m.stderr()
        );
    }
    let first = if a.stderr().contains("this is process 0") {
        "a"
    } else {
        "b"
    };
    let got = std::fs::read(dir.join(format!("{first}.jsonl"))).unwrap();
    let want = replay_alone(&dir, "alone", 1, &["--pipeline", started.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "process 0's alerts: the old version throughout"
    );
}

/// Process 0 of `a` and `b` (by their "this is process N" line).
fn process_0<'p>(a: &'p Proc, b: &'p Proc) -> &'p Proc {
    if a.stderr().contains("this is process 0") {
        a
    } else {
        b
    }
}

/// `--exit-on-eos` in a cluster: two `consume` members share a queue (a
/// sensor's batches are split between them, its end-of-stream batch
/// reaches one), and both end by themselves once the sensor ended, exit
/// 0, with process 0's alerts those of `replay` and every batch acked.
#[test]
fn exit_on_eos_ends_every_consume_member_when_the_sensors_ended() {
    use common::amqp::{broker_up, channel, publish, rt};
    if !zk_up() || !broker_up() {
        return;
    }
    let QueueCase {
        q,
        _cleanup,
        dir,
        want,
        bs,
    } = queue_case("cluster-eos", 1000, "sensor-eos", true);
    let rt = rt();
    let cluster = unique();
    let start = |name: &'static str| {
        let alerts = dir.join(format!("{name}.jsonl"));
        let mut c = bin();
        c.args(["consume", "--queue", &q, "--no-alert-exchange"])
            .args(["--idle-timeout", "5", "--prefetch", "2", "--exit-on-eos"])
            .arg("--alerts")
            .arg(&alerts)
            .args(member_args(&cluster, 2))
            .env("DNSMONITOR_AMQP_URI", common::amqp::URI)
            .stdout(Stdio::null());
        Proc::spawn(name, &mut c)
    };
    let mut a = start("a");
    let mut b = start("b");
    a.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    b.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    let clock = dnsmonitor::time::Clock;
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        publish(&ch, &q, &bs).await;
    });
    let published = clock.now();
    for p in [&mut a, &mut b] {
        let st = p.wait(Duration::from_secs(90));
        assert!(st.success(), "{}: {}", p.name, p.stderr());
        assert!(
            p.stderr()
                .contains("this member's input ends (--exit-on-eos)"),
            "{}: {}",
            p.name,
            p.stderr()
        );
    }
    eprintln!(
        "both members ended {:.1} s after the publish",
        published.elapsed().as_secs_f64()
    );
    let first = if process_0(&a, &b).name == "a" {
        "a"
    } else {
        "b"
    };
    let got = std::fs::read(dir.join(format!("{first}.jsonl"))).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "process 0's alerts against replay"
    );
    assert_eq!(queue_left(&q), 0, "every batch was acked");
    all_took_part(&[&a, &b]);
}

/// Event time in a clustered `consume` when one member receives nothing:
/// `a` and `b` read a queue each and only `a`'s gets batches. `b` follows
/// the time of `a`'s sensor (the members exchange it) instead of holding
/// every window open, so process 0, whichever it is, writes the alerts of
/// `replay` on the capture; both stop cleanly and `a`'s queue ends empty.
#[test]
fn a_consume_member_without_batches_does_not_hold_event_time() {
    use common::amqp::{Cleanup, batches, broker_up, channel, declare_queue, frames, publish, rt};
    if !zk_up() || !broker_up() {
        return;
    }
    let qa = common::amqp::unique("cluster-busy");
    let qb = common::amqp::unique("cluster-empty");
    let _c = Cleanup {
        queues: vec![qa.clone(), qb.clone()],
        exchanges: vec![],
    };
    let dir = tempdir("cluster-idle-member");
    let want = replay_alone(&dir, "replay", 1, &[]);
    let bs = batches(&frames(&capture()), 1000, "sensor-busy", false);
    let rt = rt();
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        declare_queue(&ch, &qa, None).await;
        declare_queue(&ch, &qb, None).await;
    });
    let cluster = unique();
    let mut a = consume_member("a", &qa, &cluster, 2, &dir.join("a.jsonl"));
    let mut b = consume_member("b", &qb, &cluster, 2, &dir.join("b.jsonl"));
    a.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    b.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        publish(&ch, &qa, &bs).await;
    });
    let first = if process_0(&a, &b).name == "a" {
        "a"
    } else {
        "b"
    };
    let out = dir.join(format!("{first}.jsonl"));
    let clock = dnsmonitor::time::Clock;
    let t0 = clock.now();
    while std::fs::read(&out).unwrap_or_default() != want {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "process 0 ({first}) alerts:\n{}\nreplay's:\n{}\n{}\n{}",
            String::from_utf8_lossy(&std::fs::read(&out).unwrap_or_default()),
            String::from_utf8_lossy(&want),
            a.stderr(),
            b.stderr()
        );
        clock.sleep(Duration::from_millis(200));
    }
    eprintln!(
        "process 0 ({first}) wrote replay's alerts {:.1} s after the publish",
        t0.elapsed().as_secs_f64()
    );
    a.signal(libc::SIGINT);
    b.signal(libc::SIGINT);
    for p in [&mut a, &mut b] {
        let st = p.wait(Duration::from_secs(60));
        assert!(st.success(), "{}: {}", p.name, p.stderr());
    }
    assert!(b.stderr().contains("queue: 0 batches"), "{}", b.stderr());
    assert_eq!(std::fs::read(&out).unwrap(), want);
    assert_eq!(queue_left(&qa), 0, "every batch was acked");
}

// ------------------------------------------------------- live members ----
//
// `live` members capture `lo` each with a filter of its own: dnsmasq
// answers on a free port of 127.0.0.1 and member `a` sees the clients of
// 127.0.1.0/24, member `b` those of 127.0.2.0/24 (dig -b, dnsperf -a), so
// each member captures its own share of the traffic, as members on their
// own hosts would. Nothing leaves 127.0.0.0/8.

/// A consume case: a fresh queue, declared and removed at the end, a temp
/// dir, `replay`'s alerts on the capture (what process 0 must write) and
/// the capture's batches of `per` packets from sensor `sensor`.
struct QueueCase {
    q: String,
    _cleanup: common::amqp::Cleanup,
    dir: PathBuf,
    want: Vec<u8>,
    bs: Vec<common::amqp::Batch>,
}

fn queue_case(tag: &str, per: usize, sensor: &str, eos: bool) -> QueueCase {
    use common::amqp::{Cleanup, batches, channel, declare_queue, frames, rt};
    let q = common::amqp::unique(tag);
    let _cleanup = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let dir = tempdir(tag);
    let want = replay_alone(&dir, "replay", 1, &[]);
    let bs = batches(&frames(&capture()), per, sensor, eos);
    rt().block_on(async {
        let (_conn, ch) = channel().await;
        declare_queue(&ch, &q, None).await;
    });
    QueueCase {
        q,
        _cleanup,
        dir,
        want,
        bs,
    }
}

/// How many batches are still ready in queue `q`.
fn queue_left(q: &str) -> u32 {
    use common::amqp::{channel, ready_count, rt};
    rt().block_on(async {
        let (_conn, ch) = channel().await;
        ready_count(&ch, q).await
    })
}

/// Competing consumers: every member took batches from the queue.
fn all_took_part(members: &[&Proc]) {
    for p in members {
        assert!(
            !p.stderr().contains("queue: 0 batches"),
            "both took part: {}: {}",
            p.name,
            p.stderr()
        );
    }
}

/// The live tests run one at a time (two cores; dnsperf floods).
fn live_serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether the live members can run here (root to capture on lo, the DNS
/// tools of scripts/install-deps.sh, ZooKeeper); says why not.
fn live_can_run() -> bool {
    if !zk_up() {
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::cannot_run("not root: capturing on lo needs CAP_NET_RAW");
        return false;
    }
    for tool in ["dnsmasq", "dig", "dnsperf"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            common::cannot_run(&format!("{tool} missing (scripts/install-deps.sh)"));
            return false;
        }
    }
    true
}

/// The names dnsmasq answers (and dnsperf asks for).
const LIVE_NAMES: &[(&str, &str)] = &[
    ("www.corp.test", "10.1.0.10"),
    ("mail.corp.test", "10.1.0.25"),
    ("api.shop.test", "10.2.0.5"),
];

/// One A lookup with dig from `client`; the first answer, if any.
fn dig(port: u16, client: &str, name: &str) -> Option<String> {
    let out = Command::new("dig")
        .args(["-p", &port.to_string(), "@127.0.0.1", "-b", client])
        .args(["+tries=1", "+time=2", "+short", name, "A"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

/// dnsmasq on 127.0.0.1:`port` (local names only), once it answers.
fn start_dnsmasq(port: u16, dir: &Path) -> Proc {
    let mut cmd = Command::new("dnsmasq");
    cmd.args(["-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts"])
        .args(["--listen-address=127.0.0.1", "--bind-interfaces"])
        .arg(format!("--port={port}"))
        .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
        .args(["--user=root", "--group=root", "--local-ttl=300"])
        .args(["--local=/corp.test/", "--local=/shop.test/"])
        .stdout(Stdio::null());
    for (name, addr) in LIVE_NAMES {
        cmd.arg(format!("--host-record={name},{addr}"));
    }
    let mut p = Proc::spawn("dnsmasq", &mut cmd);
    let clock = dnsmonitor::time::Clock;
    let t0 = clock.now();
    while dig(port, "127.0.0.1", LIVE_NAMES[0].0).as_deref() != Some(LIVE_NAMES[0].1) {
        if let Ok(Some(st)) = p.child.try_wait() {
            panic!("dnsmasq exited ({st}): {}", p.stderr());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "dnsmasq does not answer: {}",
            p.stderr()
        );
        clock.sleep(Duration::from_millis(100));
    }
    p
}

/// Lookups from `client` over the names; every one must be answered.
fn lookups(port: u16, client: &str) {
    for (name, addr) in LIVE_NAMES {
        assert_eq!(
            dig(port, client, name).as_deref(),
            Some(*addr),
            "{client} {name}"
        );
    }
}

/// A dnsperf flood of `qps` queries a second for `secs` from `client`.
fn flood(dir: &Path, port: u16, client: &str, qps: u32, secs: u32) -> Proc {
    let q = dir.join("queries.txt");
    let text: String = LIVE_NAMES.iter().map(|(n, _)| format!("{n} A\n")).collect();
    std::fs::write(&q, text).unwrap();
    let mut cmd = Command::new("dnsperf");
    cmd.args([
        "-s",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-a",
        client,
        "-d",
    ])
    .arg(&q)
    .args(["-Q", &qps.to_string(), "-l", &secs.to_string()])
    .stdout(Stdio::null());
    Proc::spawn("dnsperf", &mut cmd)
}

/// The pipeline of the live members: the dnsmasq port, a short window
/// (4 s, 1 s slide) and hold, and `extra` (detector thresholds).
fn live_pipeline(dir: &Path, name: &str, port: u16, extra: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "[capture]\ndns_ports = [{port}]\n\n\
             [window]\nsize_secs = 4\nslide_secs = 1\nallowed_lateness_secs = 1\n\n\
             [alerts]\nhold_secs = 3\n\n{extra}"
        ),
    )
    .unwrap();
    p
}

/// A `live` member of a cluster of 2 capturing on lo the clients of
/// `net` (127.0.N.0/24) talking to the dnsmasq port; its alerts in
/// `dir/NAME.jsonl`, its metrics on a port of its own.
fn live_member(
    dir: &Path,
    cluster: &str,
    name: &'static str,
    port: u16,
    net: u8,
    pipeline: &Path,
) -> Proc {
    let mut c = bin();
    c.args(["live", "--interface", "lo", "--filter"])
        .arg(format!("udp port {port} and net 127.0.{net}.0/24"))
        .arg("--pipeline")
        .arg(pipeline)
        .arg("--alerts")
        .arg(dir.join(format!("{name}.jsonl")))
        .args(["--metrics-listen", "127.0.0.1:0"])
        .args(member_args(cluster, 2))
        .stdout(Stdio::null());
    Proc::spawn(name, &mut c)
}

/// The alerts written to `path` so far (a line still being written is
/// left for later).
fn alerts_in(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Poll `path` until an alert matches `pred` (at most `limit`); it.
fn wait_for_alert(
    path: &Path,
    limit: Duration,
    procs: &[&Proc],
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let clock = dnsmonitor::time::Clock;
    let t0 = clock.now();
    loop {
        if let Some(a) = alerts_in(path).into_iter().find(|a| pred(a)) {
            return a;
        }
        assert!(
            t0.elapsed() < limit,
            "no {what} within {limit:?} in {}:\n{}\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_default(),
            procs
                .iter()
                .map(|p| format!("{}:\n{}", p.name, p.stderr()))
                .collect::<Vec<_>>()
                .join("\n")
        );
        clock.sleep(Duration::from_millis(100));
    }
}

fn is_flood_of(a: &serde_json::Value, client: &str, state: &str) -> bool {
    a["kind"] == "client_flood" && a["key"]["client"] == client && a["state"] == state
}

/// An alert's event time, microseconds.
fn event_time_us(a: &serde_json::Value) -> i64 {
    a["event_time"]
        .as_str()
        .and_then(dnsmonitor::time::parse_rfc3339)
        .unwrap_or_else(|| panic!("no event_time: {a}"))
}

/// The process index of the newest "formed" line of a member.
fn index_now(p: &Proc) -> usize {
    let e = p.stderr();
    e.rsplit("this is process ")
        .next()
        .filter(|_| e.contains("this is process "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no process index in: {e}"))
}

/// Member loss with `live`: two members capture their own share of lo;
/// a flood from process 1's share is raised by process 0 (keyed state
/// crosses the members). Process 0 (the outputs) is killed with SIGKILL:
/// the survivor re-forms by itself as the new process 0 (one member, one
/// short of its size), captures again, and a flood from a client that
/// sends only after the re-form is raised in the survivor's own alert
/// file (appended to: it wrote nothing while it was process 1). The
/// re-form shows in its metrics and in `cluster status`, and it exits 0
/// on SIGINT.
#[test]
fn live_members_re_form_after_a_member_is_killed_and_keep_capturing() {
    if !live_can_run() {
        return;
    }
    let _serial = live_serial();
    let dir = tempdir("cluster-live-loss");
    let port = common::free_port();
    let _dnsmasq = start_dnsmasq(port, &dir);
    let pipeline = live_pipeline(&dir, "live.toml", port, "");
    let cluster = unique();
    let mut a = live_member(&dir, &cluster, "a", port, 1, &pipeline);
    let mut b = live_member(&dir, &cluster, "b", port, 2, &pipeline);
    for m in [&mut a, &mut b] {
        m.wait_for_stderr("live: capturing on lo", Duration::from_secs(30));
        m.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    }
    // Both shares have traffic (each member's capture moves event time).
    lookups(port, "127.0.1.10");
    lookups(port, "127.0.2.10");
    let (first, mut second, net) = if index_now(&a) == 0 {
        (a, b, 2)
    } else {
        (b, a, 1)
    };
    let first_alerts = dir.join(format!("{}.jsonl", first.name));
    let second_alerts = dir.join(format!("{}.jsonl", second.name));

    // A flood only process 1 captures, raised by process 0.
    let before = format!("127.0.{net}.66");
    let mut perf = flood(&dir, port, &before, 400, 3);
    wait_for_alert(
        &first_alerts,
        Duration::from_secs(30),
        &[&first, &second],
        "client_flood raised by process 0 for process 1's client",
        |x| is_flood_of(x, &before, "raised"),
    );
    assert!(
        perf.wait(Duration::from_secs(30)).success(),
        "{}",
        perf.stderr()
    );
    assert_eq!(
        std::fs::read_to_string(&second_alerts).unwrap_or_default(),
        "",
        "process 1 writes nothing"
    );

    // Kill process 0: process 1 re-forms alone and becomes process 0.
    let clock = dnsmonitor::time::Clock;
    first.signal(libc::SIGKILL);
    let killed = clock.now();
    second.wait_for_stderr("formed with 1 members (re-form 1,", Duration::from_secs(60));
    let took = killed.elapsed();
    let formed_us = clock.unix_micros();
    drop(first);
    let e = second.stderr();
    assert!(
        e.contains("re-forming with the members present (re-form 1 of this process)"),
        "{e}"
    );
    assert!(e.contains("1 short of --processes 2"), "{e}");
    assert!(!e.contains("panicked"), "no panic trace: {e}");
    assert_eq!(
        e.matches("live: capturing on lo").count(),
        2,
        "the new image opened its capture: {e}"
    );
    assert_eq!(index_now(&second), 0, "{e}");
    eprintln!("re-formed {:.1} s after the kill", took.as_secs_f64());

    // Traffic sent only now, from a client never seen before.
    let after = format!("127.0.{net}.88");
    lookups(port, &format!("127.0.{net}.10"));
    let sent = clock.now();
    let mut perf = flood(&dir, port, &after, 400, 3);
    let raised = wait_for_alert(
        &second_alerts,
        Duration::from_secs(30),
        &[&second],
        "client_flood raised by the survivor after the re-form",
        |x| is_flood_of(x, &after, "raised"),
    );
    eprintln!(
        "the survivor raised the new flood {:.1} s after it began",
        sent.elapsed().as_secs_f64()
    );
    assert!(
        event_time_us(&raised) > formed_us,
        "the alert is for traffic after the re-form: {raised}"
    );
    assert!(
        perf.wait(Duration::from_secs(30)).success(),
        "{}",
        perf.stderr()
    );

    let text = common::amqp::scrape(&last_metrics_addr(&second.stderr()));
    assert_eq!(
        common::amqp::metric(&text, "dnsmonitor_cluster_reforms_total{cause=\"loss\"}"),
        1
    );
    assert_eq!(
        common::amqp::metric(&text, "dnsmonitor_cluster_process_index"),
        0
    );
    assert_eq!(common::amqp::metric(&text, "dnsmonitor_cluster_members"), 1);
    let o = status_json(&cluster);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let members = doc["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{doc}");
    assert_eq!(members[0]["state"], "running", "{doc}");
    assert_eq!(members[0]["index"], 0, "{doc}");
    assert_eq!(members[0]["reforms"], 1, "{doc}");
    assert_eq!(
        members[0]["pid"].as_u64(),
        Some(second.pid() as u64),
        "the same process, re-executed: {doc}"
    );

    let st = second.interrupt(Duration::from_secs(30));
    assert_eq!(st.code(), Some(0), "{}", second.stderr());
}

/// `cluster push --at` applied by `live` members: two members capture
/// their own share of lo and run a pipeline whose client_flood thresholds
/// no flood here reaches; a flood from process 1's share goes on while a
/// version with the default (low) thresholds is pushed for an event time
/// a few seconds ahead. Both members switch at that pane (their logs, and
/// `cluster status` shows the pushed version in force on both), and
/// process 0's alerts follow the new thresholds from then on: the flood,
/// not raised before the pane although it ran at the same rate for
/// seconds, is raised at a window ending at the pane or later.
#[test]
fn live_members_switch_to_a_version_pushed_at_an_event_time() {
    if !live_can_run() {
        return;
    }
    let _serial = live_serial();
    let dir = tempdir("cluster-live-push");
    let port = common::free_port();
    let _dnsmasq = start_dnsmasq(port, &dir);
    let high = "[detectors.client_flood]\nwarning_qps = 100000.0\ncritical_qps = 200000.0\n";
    let low = "[detectors.client_flood]\nwarning_qps = 100.0\ncritical_qps = 300.0\n";
    let started = live_pipeline(&dir, "high.toml", port, high);
    let pushed = live_pipeline(&dir, "low.toml", port, low);
    let cluster = unique();
    let mut a = live_member(&dir, &cluster, "a", port, 1, &started);
    let mut b = live_member(&dir, &cluster, "b", port, 2, &started);
    for m in [&mut a, &mut b] {
        m.wait_for_stderr("formed with 2 members", Duration::from_secs(60));
    }
    lookups(port, "127.0.1.10");
    lookups(port, "127.0.2.10");
    let (mut first, mut second, net) = if index_now(&a) == 0 {
        (a, b, 2)
    } else {
        (b, a, 1)
    };
    let first_alerts = dir.join(format!("{}.jsonl", first.name));

    // A flood from process 1's share, long enough to run on both sides
    // of the switch (the windows before it are full of it).
    let client = format!("127.0.{net}.66");
    let mut perf = flood(&dir, port, &client, 400, 14);
    let clock = dnsmonitor::time::Clock;
    let flood_us = clock.unix_micros();
    // 3 s into the flood, windows holding it have been judged with the
    // old thresholds (a window closes about 1 s after its end).
    clock.sleep(Duration::from_secs(3));
    // The switch: a whole second 4 to 5 s ahead of the members' event
    // time (a live capture's is the wall clock).
    let at_us = (clock.unix_micros() / 1_000_000 + 5) * 1_000_000;
    let at = dnsmonitor::time::rfc3339(at_us);
    let o = admin(
        bin()
            .args(["cluster", "push", "--zookeeper", ZK, "--cluster", &cluster])
            .args(["--at", &at])
            .arg(&pushed),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let said = format!("pushed version 1 in force from event time {at} in every member");
    for m in [&mut first, &mut second] {
        m.wait_for_stderr(&said, Duration::from_secs(30));
        assert!(!m.stderr().contains("refused"), "{}", m.stderr());
    }
    eprintln!(
        "both members put version 1 in force {:.1} s before its event time",
        (at_us - clock.unix_micros()) as f64 / 1e6
    );
    let o = status_json(&cluster);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["config"]["version"], 1, "{doc}");
    assert_eq!(doc["config"]["at"], at.as_str(), "{doc}");
    let members = doc["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{doc}");
    for m in members {
        assert_eq!(m["config_version"], 1, "in force on both: {doc}");
        assert_eq!(
            m["pipeline_version"], doc["config"]["pipeline_version"],
            "{doc}"
        );
        assert!(m["refused"].is_null(), "{doc}");
    }
    for m in [&first, &second] {
        let text = common::amqp::scrape(&last_metrics_addr(&m.stderr()));
        assert_eq!(
            common::amqp::metric(&text, "dnsmonitor_cluster_config_version"),
            1,
            "{}",
            m.name
        );
    }

    // The new thresholds from the pane on: process 0 raises the flood.
    let raised = wait_for_alert(
        &first_alerts,
        Duration::from_secs(30),
        &[&first, &second],
        "client_flood raised after the switch",
        |x| is_flood_of(x, &client, "raised"),
    );
    assert!(
        perf.wait(Duration::from_secs(30)).success(),
        "{}",
        perf.stderr()
    );
    // Raised at the first window judged with the new thresholds (the
    // window of the pane: it ends one slide after it, as the members
    // say), full of the flood; so were the windows before it, up to the
    // one ending at the pane, judged with the old thresholds: no alert.
    let e = first.stderr();
    let new_windows = e
        .split(&said)
        .nth(1)
        .and_then(|r| r.split("windows ending from ").nth(1))
        .and_then(|r| r.split(" on;").next())
        .and_then(dnsmonitor::time::parse_rfc3339)
        .unwrap_or_else(|| panic!("no 'windows ending from' in: {e}"));
    assert_eq!(new_windows, at_us + 1_000_000, "{e}");
    assert_eq!(
        event_time_us(&raised),
        new_windows,
        "raised at the first window of the new version: {raised}"
    );
    assert!(
        at_us - flood_us >= 5_000_000,
        "the flood ran for seconds before the switch"
    );
    assert!(
        raised["evidence"]["queries"].as_u64().unwrap_or(0) >= 4 * 100,
        "the window before the pane held the flood: {raised}"
    );
    for x in alerts_in(&first_alerts) {
        if x["kind"] == "client_flood" {
            assert!(event_time_us(&x) >= new_windows, "before the switch: {x}");
        }
    }
    for m in [&mut first, &mut second] {
        m.signal(libc::SIGINT);
    }
    for m in [&mut first, &mut second] {
        let st = m.wait(Duration::from_secs(30));
        assert_eq!(st.code(), Some(0), "{}: {}", m.name, m.stderr());
    }
    assert_eq!(
        std::fs::read_to_string(dir.join(format!("{}.jsonl", second.name))).unwrap_or_default(),
        "",
        "process 1 writes nothing"
    );
}
