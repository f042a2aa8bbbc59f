//! The cluster's command line: the flags with which `replay`, `live` and
//! `consume` join a cluster (and which plan a member runs), and the
//! `dnsmonitor cluster status|push` commands. The membership itself is
//! `dnsmonitor::cluster`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

use dnsmonitor::amqp::source::AmqpSource;
use dnsmonitor::cluster::event_time::{EXCHANGE_EVERY, EventTime, InputTime};
use dnsmonitor::cluster::net::Endpoints;
use dnsmonitor::cluster::reform::{self, Carried, Cause};
use dnsmonitor::cluster::store;
use dnsmonitor::cluster::zk::Zk;
use dnsmonitor::cluster::{
    ClusterError, ClusterOptions, MemberState, Membership, ZkTarget, pipeline_version,
};
use dnsmonitor::config::{DEFAULT_PIPELINE, Plan};
use dnsmonitor::dataflow::reload::{Reload, pane_at};
use dnsmonitor::escape::for_terminal;
use dnsmonitor::metrics::Metrics;
use dnsmonitor::sinks::watch::OutputWatch;
use dnsmonitor::sources::{FrameSource, RawPacket, ReadStatus};
use dnsmonitor::time::{Clock, rfc3339};

use crate::cli::{EXIT_OK, EXIT_USAGE, Usage};

/// How long a member that left may precede this one's own end before it
/// counts as lost (members of a replay finish within moments); a loss
/// re-forms the cluster.
const LOSS_GRACE: Duration = Duration::from_secs(3);

/// The flags of a cluster member (`replay`, `live`, `consume`); each wins
/// over the pipeline's `[cluster]` key of the same name.
#[derive(clap::Args, Debug, Default)]
pub struct ClusterArgs {
    /// Join a cluster through ZooKeeper: `host:port[,host:port...][/chroot]`.
    #[arg(long, value_name = "HOSTS")]
    pub zookeeper: Option<String>,
    /// The cluster's name (its members share /dnsmonitor/NAME).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The number of members the cluster forms at; later ones wait as standbys.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub processes: Option<u16>,
    /// This member's timely endpoint, HOST:PORT: listened on, and told to the
    /// others (port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
}

/// `dnsmonitor cluster ...`.
#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// List the members: index, address, state, pipeline version, since when.
    Status(StatusArgs),
    /// Validate a pipeline (as `check` does) and store it and its blocklists
    /// as the cluster's new version; running members are told by ZooKeeper.
    Push(PushArgs),
}

/// Where the cluster is.
#[derive(clap::Args, Debug)]
pub struct TargetArgs {
    /// `host:port[,host:port...][/chroot]`.
    #[arg(long, value_name = "HOSTS")]
    pub zookeeper: String,
    /// The cluster's name.
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    /// Seconds to wait for ZooKeeper.
    #[arg(long, value_name = "SECS", default_value_t = dnsmonitor::cluster::DEFAULT_CONNECT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub connect_timeout: u64,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// One JSON document (`dnsmonitor.cluster-status/1`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The pipeline TOML file.
    pub pipeline: PathBuf,
    /// A blocklist pushed with it (any supported format); repeatable.
    #[arg(long = "blocklist", short = 'b')]
    pub blocklists: Vec<PathBuf>,
    /// Switch the running members to it at this event time (RFC 3339,
    /// e.g. 2026-11-25T18:01:20Z; rounded up to a pane boundary), all at
    /// the same pane or none. Without it the members run it from their
    /// next start.
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<i64>,
}

/// `--at`: an RFC 3339 event time, microseconds since the epoch.
fn parse_at(s: &str) -> Result<i64, String> {
    dnsmonitor::time::parse_rfc3339(s)
        .filter(|&t| t >= 0)
        .ok_or_else(|| format!("not an RFC 3339 time after 1970 (e.g. 2026-11-25T18:01:20Z): {s}"))
}

/// A ZooKeeper problem as the CLI reports it: a usage error (exit 2) when
/// it is in what was asked for.
fn cluster_error(e: ClusterError) -> anyhow::Error {
    if e.is_usage() {
        anyhow::Error::new(Usage(e.to_string()))
    } else {
        anyhow::Error::new(e)
    }
}

fn connect(t: &TargetArgs) -> anyhow::Result<Zk> {
    dnsmonitor::cluster::check_name(&t.cluster).map_err(|m| anyhow::Error::new(Usage(m)))?;
    let target: ZkTarget = t.zookeeper.parse().map_err(cluster_error)?;
    let timeout = Duration::from_secs(t.connect_timeout);
    Zk::connect(
        &target,
        timeout,
        Duration::from_secs(dnsmonitor::cluster::DEFAULT_SESSION_TIMEOUT_SECS),
    )
    .map_err(cluster_error)
}

pub fn run(command: ClusterCommand) -> anyhow::Result<i32> {
    match command {
        ClusterCommand::Status(a) => status(a),
        ClusterCommand::Push(a) => push(a),
    }
}

fn push(a: PushArgs) -> anyhow::Result<i32> {
    // Validated by exactly `check`'s code, errors at file:line:key.
    if let Err(errors) = Plan::from_file(&a.pipeline, &a.blocklists) {
        for e in &errors.0 {
            eprintln!("error: {e}");
        }
        eprintln!(
            "{}: {} error(s); nothing pushed",
            a.pipeline.display(),
            errors.0.len()
        );
        return Ok(EXIT_USAGE);
    }
    let text =
        std::fs::read(&a.pipeline).with_context(|| format!("reading {}", a.pipeline.display()))?;
    let mut lists = Vec::new();
    for l in &a.blocklists {
        let bytes = std::fs::read(l).map_err(|e| {
            anyhow::Error::new(Usage(format!(
                "--blocklist {}: cannot read: {e}",
                for_terminal(&l.display().to_string())
            )))
        })?;
        lists.push((file_name(l), bytes));
    }
    let zk = connect(&a.target)?;
    let c = store::push(
        &zk,
        &a.target.cluster,
        &file_name(&a.pipeline),
        &text,
        &lists,
        a.at,
    )
    .map_err(cluster_error)?;
    println!(
        "cluster {}: pushed version {} (pipeline version {}): {}, {} blocklist(s)",
        a.target.cluster,
        c.version,
        c.fingerprint,
        for_terminal(&c.pipeline_name),
        c.blocklists.len()
    );
    match c.at_us {
        Some(at) => println!(
            "the running members switch to it at event time {} (from the pane that starts there), all or none: each says so in its log",
            rfc3339(at)
        ),
        None => println!(
            "the running members keep their version; members run it from their next start (push with --at TIME to switch them while they run)"
        ),
    }
    Ok(EXIT_OK)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn status(a: StatusArgs) -> anyhow::Result<i32> {
    let zk = connect(&a.target)?;
    let s = store::status(&zk, &a.target.cluster).map_err(cluster_error)?;
    if a.json || !std::io::stdout().is_terminal() {
        let members: Vec<serde_json::Value> = s
            .members
            .iter()
            .map(|m| match &m.info {
                Some(i) => serde_json::json!({
                    "znode": m.znode,
                    "index": i.index,
                    "state": i.state.as_str(),
                    "address": i.address,
                    "pipeline_version": i.pipeline_version,
                    "config_version": i.config_version,
                    "since": rfc3339(i.since_us),
                    "workers": i.workers,
                    "pid": i.pid,
                    "refused": i.refused,
                    "reforms": i.reforms,
                }),
                None => serde_json::json!({ "znode": m.znode, "state": null }),
            })
            .collect();
        let doc = serde_json::json!({
            "schema": "dnsmonitor.cluster-status/1",
            "cluster": s.cluster,
            "config": s.config.as_ref().map(|c| serde_json::json!({
                "version": c.version,
                "pipeline_version": c.fingerprint,
                "pipeline": c.pipeline_name,
                "blocklists": c.blocklists.iter().map(|l| serde_json::json!({
                    "name": l.name, "bytes": l.bytes, "chunks": l.chunks,
                })).collect::<Vec<_>>(),
                "pushed": rfc3339(c.pushed_us),
                "at": c.at_us.map(rfc3339),
            })),
            "members": members,
        });
        println!("{doc}");
        return Ok(EXIT_OK);
    }
    match &s.config {
        Some(c) => println!(
            "cluster {}: {} member(s); pushed version {} (pipeline version {}, {}) since {}{}",
            s.cluster,
            s.members.len(),
            c.version,
            c.fingerprint,
            for_terminal(&c.pipeline_name),
            rfc3339(c.pushed_us),
            c.at_us.map_or(String::new(), |t| format!(
                ", switching at event time {}",
                rfc3339(t)
            ))
        ),
        None => println!(
            "cluster {}: {} member(s); no pushed version",
            s.cluster,
            s.members.len()
        ),
    }
    println!(
        "{:<5} {:<8} {:<22} {:<24} {:<20} ZNODE",
        "INDEX", "STATE", "ADDRESS", "PIPELINE", "SINCE"
    );
    for m in &s.members {
        let Some(i) = &m.info else {
            println!(
                "{:<5} {:<8} {:<22} {:<24} {:<20} {}",
                "-", "?", "-", "-", "-", m.znode
            );
            continue;
        };
        let version = match i.config_version {
            Some(v) => format!("{} (v{v})", i.pipeline_version),
            None => i.pipeline_version.clone(),
        };
        println!(
            "{:<5} {:<8} {:<22} {:<24} {:<20} {}",
            i.index.map_or("-".to_string(), |x| x.to_string()),
            i.state.as_str(),
            for_terminal(&i.address),
            for_terminal(&version),
            rfc3339(i.since_us),
            m.znode
        );
        if let Some(r) = &i.refused {
            println!("      refused: {}", for_terminal(r));
        }
    }
    Ok(EXIT_OK)
}

/// A member registered in ZooKeeper, not yet formed.
pub struct Member {
    membership: Membership,
    listener: std::net::TcpListener,
}

/// A member whose cluster formed: keeps its ZooKeeper session (and so its
/// znode) until [`Running::finish`].
pub struct Running {
    membership: Membership,
    /// The formation's member znode names.
    members: Vec<String>,
    done: Arc<AtomicBool>,
}

/// How a member starts over when it re-forms (the command decides).
pub struct Restart {
    /// Why it cannot: it stops (exit status 1) instead, saying so.
    pub refuse: Option<String>,
    /// Save the newly_observed filters first: the new image carries on
    /// from them (live, consume; a replay starts over from its files).
    pub save_filters: bool,
    /// The outputs, stopped between two writes before the exec.
    pub outputs: Option<OutputWatch>,
    /// Set when the member was asked to stop (SIGINT/SIGTERM): a loss then
    /// ends it (exit status 1) instead of starting it over.
    pub stop: Option<Arc<AtomicBool>>,
}

/// What a re-form needs; set once the member formed.
struct ReformContext {
    cluster: String,
    /// This member's znode, epoch and index in the formation it leaves.
    znode: String,
    epoch: u64,
    index: usize,
    carried: Option<Carried>,
    /// When the re-form under way began, until its formation connected:
    /// a formation that fails to connect re-forms again within the same
    /// deadline.
    reforming_since_us: Option<i64>,
    restart: Restart,
    /// The run is over: a loss now is no reason to start over.
    done: Arc<AtomicBool>,
}

/// Set once formed; read by the panic hook and the ZooKeeper watch.
static CONTEXT: Mutex<Option<ReformContext>> = Mutex::new(None);
/// Set by the first thread that re-forms; any other waits for the exec.
static REFORMING: AtomicBool = AtomicBool::new(false);
/// How long a re-form waits for the output write under way.
const QUIESCE_LIMIT: Duration = Duration::from_secs(2);

/// Start over in a fresh process image to re-form with the members
/// present (`why`: what happened, for the log): stop the outputs between
/// two writes, save the newly_observed filters (live, consume), exec
/// (every connection closes: RabbitMQ delivers what was not acked again,
/// and the others see this member's timely connections break). Returns
/// only when there is nothing to re-form (not formed yet, or the run is
/// over); a member that cannot re-form stops with exit status 1.
fn reform(cause: Cause, why: &str) {
    if REFORMING.swap(true, Ordering::SeqCst) {
        // Another thread (the watch, another network thread) re-forms.
        loop {
            std::thread::park();
        }
    }
    let context = CONTEXT.lock().unwrap_or_else(|p| p.into_inner());
    let Some(c) = context.as_ref().filter(|c| !c.done.load(Ordering::Acquire)) else {
        REFORMING.store(false, Ordering::SeqCst);
        return;
    };
    let cluster = &c.cluster;
    let stopping = c
        .restart
        .stop
        .as_ref()
        .is_some_and(|s| s.load(Ordering::Relaxed));
    if let Some(reason) = c.restart.refuse.as_deref().or(stopping.then_some(
        "it was stopping (SIGINT/SIGTERM), so it does not start over; the windows not yet written are lost",
    )) {
        eprintln!("error: cluster {cluster}: {why}; this member stops: {reason}");
        std::process::exit(1);
    }
    let clock = Clock;
    let since = c.reforming_since_us.unwrap_or_else(|| clock.unix_micros());
    let next = Carried::next(c.carried.as_ref(), cause, c.epoch, &c.znode, c.index, since);
    tracing::info!(cluster = %cluster, cause = cause.as_str(), %why, "re-forming");
    eprintln!(
        "cluster {cluster}: {why}; re-forming with the members present (re-form {} of this process)",
        next.reforms()
    );
    if let Some(o) = &c.restart.outputs
        && !o.quiesce(QUIESCE_LIMIT)
    {
        tracing::warn!("an output was still writing after {QUIESCE_LIMIT:?}; re-forming anyway");
    }
    if c.restart.save_filters {
        for e in dnsmonitor::detect::newly_observed::save_all() {
            eprintln!(
                "error: newly_observed filter not saved: {}",
                for_terminal(&e)
            );
        }
    }
    let e = reform::exec_self(&next);
    eprintln!("error: cluster {cluster}: cannot re-form: cannot start this program again: {e}");
    std::process::exit(1);
}

impl Member {
    /// Wait for the cluster to form and connect to the other members; the
    /// endpoints go to the run. From here on a member loss re-forms
    /// (`restart` says how) instead of stopping the member.
    pub fn form(
        self,
        metrics: Option<Metrics>,
        restart: Restart,
        reload: Option<Arc<Reload>>,
    ) -> anyhow::Result<(Running, Endpoints)> {
        let cluster = self.membership.cluster.clone();
        let opts = self.membership.options().clone();
        let carried = self.membership.carried.clone();
        if let (Some(m), Some(c)) = (&metrics, &carried) {
            m.cluster_reforms
                .with_label_values(&[Cause::Loss.as_str()])
                .inc_by(c.losses);
            m.cluster_reforms
                .with_label_values(&[Cause::Grow.as_str()])
                .inc_by(c.grows);
        }
        let failed = |e: ClusterError| match e {
            e @ ClusterError::Reform { .. } => cluster_error(e),
            e if carried.is_some() && !e.is_usage() => cluster_error(ClusterError::Reform {
                cluster: cluster.clone(),
                secs: opts.form_timeout.as_secs(),
                why: e.to_string(),
            }),
            e => cluster_error(e),
        };
        let mut formed = self.membership.form(self.listener).map_err(&failed)?;
        let index = formed.endpoints.index;
        let done = Arc::new(AtomicBool::new(false));
        *CONTEXT.lock().unwrap_or_else(|p| p.into_inner()) = Some(ReformContext {
            cluster: cluster.clone(),
            znode: formed.membership.path.clone(),
            epoch: formed.epoch,
            index,
            carried: carried.clone(),
            reforming_since_us: carried.as_ref().map(|c| c.since_us),
            restart,
            done: done.clone(),
        });
        if let Err(e) = formed.endpoints.connect_now() {
            // A member of the formation did not come: re-form again while
            // there is time, else stop.
            if formed
                .membership
                .reform_deadline()
                .is_some_and(|d| Clock.now() < d)
            {
                reform(Cause::Loss, &format!("the formation did not connect ({e})"));
            }
            return Err(failed(e));
        }
        if let Some(c) = CONTEXT.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            c.reforming_since_us = None;
        }
        reform_when_a_connection_breaks();
        formed
            .membership
            .set_state(MemberState::Running, Some(index));
        let size = formed.endpoints.processes();
        let again = carried.as_ref().map_or(String::new(), |c| {
            let secs = Clock.unix_micros().saturating_sub(c.since_us).max(0) as f64 / 1e6;
            format!(" (re-form {}, {secs:.1} s after it began)", c.reforms())
        });
        let short = if size < opts.processes {
            format!(
                "; {} short of --processes {}: it re-forms when a member joins",
                opts.processes - size,
                opts.processes
            )
        } else {
            String::new()
        };
        eprintln!(
            "cluster {cluster}: formed with {size} members{again}; this is process {index} at {}{}{short}",
            for_terminal(&formed.membership.info.address),
            if index == 0 {
                " (it writes the outputs)"
            } else {
                " (process 0 writes the outputs)"
            }
        );
        if let Some(m) = &metrics {
            m.cluster_process_index.set(index as i64);
            m.cluster_config_version
                .set(formed.membership.info.config_version.unwrap_or(0) as i64);
        }
        formed.membership.watch(
            formed.members.clone(),
            done.clone(),
            LOSS_GRACE,
            metrics.clone(),
            Arc::new(|cause, why: String| reform(cause, &why)),
        );
        let switch = reload.map(|reload| {
            Arc::new(Switch {
                reload,
                metrics: metrics.clone(),
                held: Mutex::new(None),
            }) as Arc<dyn store::LiveSwitch>
        });
        store::watch_config(
            &formed.membership,
            formed.members.clone(),
            done.clone(),
            metrics,
            |p, c, d| Plan::from_pushed(p, c, d).map(drop),
            switch,
        );
        Ok((
            Running {
                membership: formed.membership,
                members: formed.members,
                done,
            },
            formed.endpoints,
        ))
    }
}

/// A member's run as its config watcher switches it (`cluster push --at`).
struct Switch {
    reload: Arc<Reload>,
    metrics: Option<Metrics>,
    /// The version held, and its pane.
    held: Mutex<Option<(Arc<Plan>, u64)>>,
}

impl store::LiveSwitch for Switch {
    fn hold(&self, p: &store::Pushed, cluster: &str, dir: &Path, at_us: i64) -> Result<(), String> {
        let plan = Plan::from_pushed(p, cluster, dir).map_err(|e| e.to_string())?;
        let pane = pane_at(plan.window.slide_us, at_us).ok_or("an event time before 1970")?;
        self.reload.hold(&plan, pane)?;
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some((Arc::new(plan), pane));
        Ok(())
    }

    fn decide(&self, version: u64) -> String {
        let Some((plan, pane)) = self.held.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return format!("pushed version {version} was not held here");
        };
        let spec = plan.window;
        let v = self.reload.decide(plan, pane);
        if let Some(m) = &self.metrics {
            m.pipeline_reloads.with_label_values(&["applied"]).inc();
        }
        format!(
            "pushed version {version} in force from event time {} in every member (messages from then on; windows ending from {} on; version {} of this run)",
            rfc3339(pane as i64 * spec.slide_us),
            rfc3339(spec.end_us(pane)),
            v.number,
        )
    }

    fn release(&self) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.reload.release();
    }
}

/// timely's network threads panic when a member's connection breaks (a
/// member killed, a network cut, or one that re-forms), and the workers
/// would then panic one after the other: re-form at the first such panic,
/// before anything unwinds (the thread's panic ends in the exec). Panics
/// anywhere else keep the default hook. Installed once.
fn reform_when_a_connection_breaks() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            let peer = name
                .strip_prefix("timely:recv-")
                .or_else(|| name.strip_prefix("timely:send-"));
            if let Some(peer) = peer {
                let why = info.payload_as_str().unwrap_or("a network thread failed");
                reform(
                    Cause::Loss,
                    &format!("the connection to process {peer} broke ({name}: {why})"),
                );
            }
            default(info);
        }));
    });
}

impl Running {
    /// The run is over: stop watching, leave the cluster.
    pub fn finish(self) {
        self.done.store(true, Ordering::Release);
        self.membership.leave();
    }

    /// A `consume` member's queue as the cluster reads it: its watermark
    /// and (with `exit_on_eos`) its end are the cluster's, exchanged with
    /// the other members through ZooKeeper (`cluster::event_time`).
    pub fn consume_input(&self, inner: AmqpSource, exit_on_eos: bool) -> ClusterInput {
        let m = &self.membership;
        let me = m.path.rsplit('/').next().unwrap_or(&m.path);
        let time = EventTime::start(
            m.zk.clone(),
            &m.cluster,
            me,
            self.members.clone(),
            self.done.clone(),
        );
        ClusterInput {
            inner,
            time,
            cluster: m.cluster.clone(),
            exit_on_eos,
            names_at: None,
            names: (Vec::new(), Vec::new()),
            last: None,
            finished: false,
        }
    }
}

/// How often a clustered `consume` reader combines its sensors' time with
/// the other members' (between two, the last combination stands).
const COMBINE_EVERY: Duration = Duration::from_millis(20);

/// A clustered `consume`'s input: the queue this member reads, with one
/// watermark and one end of stream for the whole cluster. A member that
/// receives no batches (or whose sensors went idle while they are active
/// at another member) follows the others instead of holding every window
/// open; `--exit-on-eos` ends every member once each sensor seen by any
/// member sent its end of stream to one of them.
pub struct ClusterInput {
    inner: AmqpSource,
    time: Arc<EventTime>,
    cluster: String,
    exit_on_eos: bool,
    /// When the sensor names were last listed (`--exit-on-eos`; at most
    /// every `EXCHANGE_EVERY`), and the lists (open, ended).
    names_at: Option<std::time::Instant>,
    names: (Vec<String>, Vec<String>),
    /// When the cluster's view was last combined: (then, watermark, may end).
    last: Option<(std::time::Instant, Option<i64>, bool)>,
    finished: bool,
}

impl ClusterInput {
    /// The cluster's (watermark, may end), combined at most every
    /// `COMBINE_EVERY`.
    fn combined(&mut self) -> (Option<i64>, bool) {
        let now = Clock.now();
        if let Some((at, w, end)) = self.last
            && now.saturating_duration_since(at) < COMBINE_EVERY
        {
            return (w, end);
        }
        let (active_us, idle_us) = self.inner.sensor_time();
        if self.exit_on_eos
            && self
                .names_at
                .is_none_or(|t| now.saturating_duration_since(t) >= EXCHANGE_EVERY)
        {
            self.names = self.inner.sensor_ends();
            self.names_at = Some(now);
        }
        let own = InputTime {
            active_us,
            idle_us,
            open: self.names.0.clone(),
            ended: self.names.1.clone(),
            sees_end: false,
            input_ended: false,
        };
        let (w, end) = self.time.update(own);
        self.last = Some((now, w, end));
        (w, end)
    }
}

impl FrameSource for ClusterInput {
    fn read(&mut self, max: usize, wait: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> ReadStatus {
        if self.finished {
            return ReadStatus::Done;
        }
        let st = self.inner.read(max, wait, f);
        // Only when nothing was waiting here: what the broker delivered
        // before the last end of stream reached a member is read first.
        if st == ReadStatus::Idle && self.exit_on_eos && self.combined().1 {
            self.finished = true;
            self.time.end();
            eprintln!(
                "cluster {}: every sensor seen by the members sent its end of stream; this member's input ends (--exit-on-eos)",
                self.cluster
            );
            return ReadStatus::Done;
        }
        st
    }

    fn shared(&self) -> bool {
        self.inner.shared()
    }

    fn watermark_us(&mut self) -> Option<i64> {
        self.combined().0
    }

    fn own_watermark(&self) -> bool {
        true
    }

    fn outputs_done(&mut self, below: Option<dnsmonitor::window::Pane>) {
        self.inner.outputs_done(below)
    }
}

/// The member's cluster options: flags first, else the pipeline's
/// `[cluster]` table; name, size and endpoint are required.
fn cluster_options(
    args: &ClusterArgs,
    table: &dnsmonitor::cluster::spec::ClusterPlan,
    zookeeper: String,
) -> anyhow::Result<ClusterOptions> {
    let usage = |m: String| anyhow::Error::new(Usage(m));
    let name = args
        .cluster
        .clone()
        .or(table.name.clone())
        .ok_or_else(|| usage("--zookeeper needs --cluster NAME (or [cluster] name)".into()))?;
    let processes = args
        .processes
        .map(usize::from)
        .or(table.processes)
        .ok_or_else(|| usage("--zookeeper needs --processes N (or [cluster] processes)".into()))?;
    let advertise = args
        .advertise
        .clone()
        .or(table.advertise.clone())
        .ok_or_else(|| {
            usage("--zookeeper needs --advertise HOST:PORT (or [cluster] advertise)".into())
        })?;
    dnsmonitor::cluster::check_name(&name).map_err(usage)?;
    Ok(ClusterOptions {
        zookeeper,
        name,
        processes,
        advertise,
        connect_timeout: table.connect_timeout,
        form_timeout: table.form_timeout,
        session_timeout: table.session_timeout,
        ready_timeout: table.ready_timeout,
    })
}

/// The plan a run uses and, with `--zookeeper` (or `[cluster] zookeeper`),
/// its registration. A member given `--pipeline` runs it (and it must be
/// the version pushed to the cluster, if one was); a member without one
/// runs the pushed version, else the built-in default.
pub fn plan_and_member(
    args: &ClusterArgs,
    c: &crate::cli::PipelineArgs,
) -> anyhow::Result<(Plan, Option<Member>)> {
    let (pipeline, lists, workers) = (c.pipeline.as_ref(), &c.blocklists[..], c.workers as usize);
    let local = match pipeline {
        Some(p) => Some(crate::cli::load_plan(Some(p), lists)?),
        None => None,
    };
    let table = match &local {
        Some(p) => p.cluster.clone(),
        None => {
            Plan::default_plan(&[])
                .map_err(|e| anyhow::anyhow!("default pipeline: {e}"))?
                .cluster
        }
    };
    let usage = |m: String| anyhow::Error::new(Usage(m));
    let Some(zookeeper) = args.zookeeper.clone().or(table.zookeeper.clone()) else {
        if args.cluster.is_some() || args.processes.is_some() || args.advertise.is_some() {
            return Err(usage(
                "--cluster, --processes and --advertise need --zookeeper HOSTS (or [cluster] zookeeper)".into(),
            ));
        }
        let plan = match local {
            Some(p) => p,
            None => crate::cli::load_plan(None, lists)?,
        };
        return Ok((plan, None));
    };
    let opts = cluster_options(args, &table, zookeeper)?;
    let (name, processes) = (opts.name.clone(), opts.processes);
    let target: ZkTarget = opts.zookeeper.parse().map_err(cluster_error)?;
    let zk =
        Zk::connect(&target, opts.connect_timeout, opts.session_timeout).map_err(cluster_error)?;
    let pushed = store::load(&zk, &name).map_err(cluster_error)?;
    let list_bytes = || -> anyhow::Result<Vec<Vec<u8>>> {
        lists
            .iter()
            .map(|l| std::fs::read(l).with_context(|| format!("reading {}", l.display())))
            .collect()
    };
    let (plan, version, config_version) = match (local, pushed) {
        (Some(plan), pushed) => {
            let path = pipeline.expect("a local plan has a file");
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let version = pipeline_version(&text, &list_bytes()?);
            let config_version = match pushed {
                Some(p) if p.config.fingerprint != version => {
                    return Err(usage(format!(
                        "cluster {name}: {} (pipeline version {version}) is not the version pushed to the cluster (version {}, pipeline version {}, {}): start without --pipeline to run the pushed one, or push this one with `dnsmonitor cluster push`",
                        path.display(),
                        p.config.version,
                        p.config.fingerprint,
                        for_terminal(&p.config.pipeline_name),
                    )));
                }
                Some(p) => Some(p.config.version),
                None => None,
            };
            (plan, version, config_version)
        }
        (None, Some(p)) => {
            if !lists.is_empty() {
                return Err(usage(format!(
                    "cluster {name} runs pushed version {}: push the blocklists with it (`dnsmonitor cluster push --blocklist`) instead of giving --blocklist to a member",
                    p.config.version
                )));
            }
            let dir = std::env::temp_dir().join(format!(
                "dnsmonitor-{name}-v{}-{}",
                p.config.version,
                std::process::id()
            ));
            let plan = Plan::from_pushed(&p, &name, &dir);
            // The lists are loaded into the plan: the files are not needed.
            let _ = std::fs::remove_dir_all(&dir);
            let plan = plan.map_err(|e| {
                usage(format!(
                    "cluster {name}: pushed version {} is not valid on this member:\n{e}",
                    p.config.version
                ))
            })?;
            eprintln!(
                "cluster {name}: running pushed version {} ({})",
                p.config.version,
                for_terminal(&p.config.pipeline_name)
            );
            (plan, p.config.fingerprint.clone(), Some(p.config.version))
        }
        (None, None) => {
            let plan = crate::cli::load_plan(None, lists)?;
            let version = pipeline_version(DEFAULT_PIPELINE.as_bytes(), &list_bytes()?);
            (plan, version, None)
        }
    };
    // A re-formed image: what it carried over its exec (for this cluster).
    let members_dir = format!("{}/m-", dnsmonitor::cluster::zk::members_path(&name));
    let carried = Carried::from_env().filter(|c| c.znode.starts_with(&members_dir));
    let (membership, listener) =
        Membership::join(zk, &opts, version, config_version, workers, carried)
            .map_err(cluster_error)?;
    let waiting = match &membership.carried {
        Some(c) => format!(
            "re-forming (it was process {} of formation {}) with the members present, up to {processes}",
            c.index, c.epoch
        ),
        None => format!("waiting for {processes} member(s)"),
    };
    eprintln!(
        "cluster {name}: registered as {} ({}); {waiting}",
        membership.path,
        for_terminal(&membership.info.address)
    );
    Ok((
        plan,
        Some(Member {
            membership,
            listener,
        }),
    ))
}
