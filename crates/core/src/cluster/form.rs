//! Forming: a member registers an ephemeral sequential znode under
//! `/dnsmonitor/<cluster>/members` (its `MemberInfo` as JSON) and waits for
//! a formation that names it. A formation ([`Formation`], in
//! `/dnsmonitor/<cluster>/formation`) is decided by one member, the
//! waiting member with the lowest sequence number, and written with a
//! conditional set, so every member follows the same decision:
//!
//! - at first, once `--processes` N members wait: the first N (by
//!   sequence number) form, later ones wait as standbys;
//! - after a member loss (a member *re-forms*, see `reform.rs`: it
//!   registers again and carries the formation it left): once the members
//!   of that formation have come back (registered again) or gone (their
//!   sessions ended), bounded by the session timeout plus a grace, the
//!   members present form at min(N, present), standbys included;
//! - a member that registers while a formation below N runs waits; the
//!   running members re-form to take it in ([`Membership::watch`]).
//!
//! The process index is the position in the formation: members that
//! re-form keep their order (process 0 writes the outputs), new ones come
//! after. Every wait is bounded (`form_timeout`, for a re-form from when
//! it began) except a standby's, which is what it is for. Members compare
//! their pipeline version and worker count before timely starts: a
//! cluster never runs two pipelines.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use zookeeper_client as zkc;

use super::net::Endpoints;
use super::reform::{Carried, Cause};
use super::zk::{ClusterError, Zk, formation_path, members_path, session_state_label};
use super::{ClusterOptions, check_name};
use crate::metrics::Metrics;
use crate::time::Clock;

/// How long past its session timeout a member of a formation being left
/// may stay registered without coming back before the others form
/// without it (one cut off from the others but not from ZooKeeper).
pub const LINGER_GRACE: Duration = Duration::from_secs(2);

/// Where a member is in its life (shown by `cluster status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Registered, waiting for the others.
    Forming,
    /// Timely started with the others.
    Running,
    /// Registered past the first N: waits for a place.
    Standby,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Forming => "forming",
            MemberState::Running => "running",
            MemberState::Standby => "standby",
        }
    }
}

/// The data of a member's znode (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Its timely endpoint, host:port.
    pub address: String,
    pub state: MemberState,
    /// Process index once running.
    pub index: Option<usize>,
    /// Since when it is in `state`, microseconds since the epoch.
    pub since_us: i64,
    /// The fingerprint of its pipeline and blocklists (`super::fingerprint`).
    pub pipeline_version: String,
    /// The pushed version it runs, when it runs one.
    pub config_version: Option<u64>,
    /// Worker threads (the same on every member).
    pub workers: usize,
    pub pid: u32,
    /// The last pushed version it refused, and why.
    #[serde(default)]
    pub refused: Option<String>,
    /// Re-forms this process went through.
    #[serde(default)]
    pub reforms: u64,
    /// While it re-forms: the formation it left (epoch) ...
    #[serde(default)]
    pub left_epoch: Option<u64>,
    /// ... and its process index there.
    #[serde(default)]
    pub left_index: Option<usize>,
}

/// The formation in force: written by the member that decides it, read
/// by every member (JSON in `/dnsmonitor/<cluster>/formation`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Formation {
    /// Counts the formations of this cluster.
    pub epoch: u64,
    /// The members' sequence numbers, by process index.
    pub members: Vec<i64>,
    /// When it was decided, microseconds since the epoch.
    pub since_us: i64,
}

/// A registered member (its session keeps the znode alive).
pub struct Membership {
    pub zk: Arc<Zk>,
    pub cluster: String,
    /// Its znode, `/dnsmonitor/<cluster>/members/m-NNNNNNNNNN`.
    pub path: String,
    pub seq: i64,
    pub info: MemberInfo,
    /// What it carried over a re-form, when it is a re-formed image.
    pub carried: Option<Carried>,
    opts: ClusterOptions,
}

/// A formed cluster: this member's place and the timely endpoints.
pub struct Formed {
    pub membership: Membership,
    pub endpoints: Endpoints,
    /// The members' znode names, by process index.
    pub members: Vec<String>,
    /// The formation's epoch.
    pub epoch: u64,
}

/// Prefix of member znodes.
const MEMBER_PREFIX: &str = "m-";

/// The sequence number of a member znode name (`m-0000000042`).
fn member_seq(name: &str) -> Option<i64> {
    name.strip_prefix(MEMBER_PREFIX)?.parse().ok()
}

/// Member znode names ordered by sequence number (`list_children` is not
/// sorted); other names are ignored.
pub fn sorted_members(children: &[String]) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = children
        .iter()
        .filter_map(|c| Some((member_seq(c)?, c.clone())))
        .collect();
    v.sort();
    v
}

/// A registered member as a forming member sees it.
#[derive(Clone, Debug)]
struct Listed {
    seq: i64,
    name: String,
    info: MemberInfo,
}

/// What one look at the members and the formation in force decides.
#[derive(Debug, PartialEq)]
enum Step {
    /// A formation names this member: form it.
    Form,
    /// Write this formation (this member decides), then look again.
    Decide(Vec<i64>),
    /// The deciding member is to write this formation, which names this
    /// member: wait for it.
    Await(Vec<i64>),
    /// A formation runs without this member (`running` members: full, or
    /// below N and about to re-form to take it in), or the one about to
    /// be written leaves it out (`running` 0): wait as long as it takes.
    /// `with`: the members it would form with, to compare with.
    Standby { running: usize, with: Vec<i64> },
    /// The formation in force is being left: wait for its `left` members
    /// still registered to come back or go.
    Linger { left: usize },
    /// Wait for more members to register.
    Wait,
}

/// The decision of one look, from the formation in force (`None`: none
/// yet), the members registered (`listed`, by sequence number) and
/// whether lingering members of a formation being left are ignored now.
/// Pure, so every member that sees the same state decides the same.
fn step(
    seq: i64,
    n: usize,
    formation: Option<&Formation>,
    listed: &[Listed],
    ignore_lingering: bool,
) -> Step {
    if formation.is_some_and(|f| f.members.contains(&seq)) {
        return Step::Form;
    }
    let (epoch, in_formation) = match formation {
        Some(f) => (Some(f.epoch), &f.members[..]),
        None => (None, &[][..]),
    };
    let in_force = listed
        .iter()
        .filter(|l| in_formation.contains(&l.seq))
        .count();
    let candidates: Vec<&Listed> = listed
        .iter()
        .filter(|l| !in_formation.contains(&l.seq))
        .collect();
    // One of its members re-forms: the formation in force is being left.
    let left = epoch.is_some() && candidates.iter().any(|c| c.info.left_epoch == epoch);
    if in_force > 0 {
        if !left {
            return Step::Standby {
                running: in_force,
                with: listed
                    .iter()
                    .filter(|l| in_formation.contains(&l.seq))
                    .map(|l| l.seq)
                    .collect(),
            };
        }
        if !ignore_lingering {
            return Step::Linger { left: in_force };
        }
    }
    // Members that re-form keep their order; then the others by arrival.
    let mut order = candidates.clone();
    order.sort_by_key(|c| (c.info.left_index.is_none(), c.info.left_index, c.seq));
    let reforming = order.first().is_some_and(|c| c.info.left_epoch.is_some());
    if reforming {
        // They run what they loaded again (the pushed version in force, a
        // re-form being a restart): a standby that runs another pipeline
        // is left out (and says so when it compares).
        let first = &order[0].info;
        let like = (first.pipeline_version.clone(), first.workers);
        order.retain(|c| (c.info.pipeline_version.clone(), c.info.workers) == like);
    }
    let size = if reforming {
        n.min(order.len())
    } else if order.len() >= n {
        n
    } else {
        0
    };
    if size == 0 {
        return Step::Wait;
    }
    let chosen: Vec<i64> = order[..size].iter().map(|c| c.seq).collect();
    let decider = order.iter().map(|c| c.seq).min();
    if decider == Some(seq) {
        Step::Decide(chosen)
    } else if chosen.contains(&seq) {
        Step::Await(chosen)
    } else {
        Step::Standby {
            running: 0,
            with: chosen,
        }
    }
}

/// What a forming member last said it waits for (said once per change).
#[derive(Clone, Copy, PartialEq)]
enum Said {
    Nothing,
    Standby,
    Linger,
}

impl Membership {
    /// Bind the timely endpoint and register through `zk` (connected to
    /// `opts.zookeeper`). `pipeline_version`: this member's
    /// `super::pipeline_version`; `carried`: what a re-formed image
    /// carried over (its old znode is deleted once the new one exists).
    pub fn join(
        zk: Zk,
        opts: &ClusterOptions,
        pipeline_version: String,
        config_version: Option<u64>,
        workers: usize,
        carried: Option<Carried>,
    ) -> Result<(Membership, TcpListener), ClusterError> {
        check_name(&opts.name).map_err(|message| ClusterError::Config {
            cluster: opts.name.escape_default().to_string(),
            message,
        })?;
        if opts.processes == 0 || opts.processes > super::MAX_PROCESSES {
            return Err(ClusterError::Config {
                cluster: opts.name.clone(),
                message: format!(
                    "--processes must be 1 to {}, not {}",
                    super::MAX_PROCESSES,
                    opts.processes
                ),
            });
        }
        let (listener, address) = bind_advertised(&opts.advertise)?;
        let dir = members_path(&opts.name);
        zk.mkdir(&dir)?;
        let fpath = formation_path(&opts.name);
        let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
        match zk.call("create", &fpath, zk.client.create(&fpath, b"", &persistent)) {
            Ok(_)
            | Err(ClusterError::Call {
                source: zkc::Error::NodeExists,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        let info = MemberInfo {
            address,
            state: MemberState::Forming,
            index: None,
            since_us: Clock.unix_micros(),
            pipeline_version,
            config_version,
            workers,
            pid: std::process::id(),
            refused: None,
            reforms: carried.as_ref().map_or(0, Carried::reforms),
            left_epoch: carried.as_ref().map(|c| c.epoch),
            left_index: carried.as_ref().map(|c| c.index),
        };
        let data = serde_json::to_vec(&info).expect("member info serialises");
        let prefix = format!("{dir}/{MEMBER_PREFIX}");
        let mode = zkc::CreateMode::EphemeralSequential.with_acls(zkc::Acls::anyone_all());
        let (_, seq) = zk.call("create", &prefix, zk.client.create(&prefix, &data, &mode))?;
        let seq = seq.into_i64();
        let path = format!("{prefix}{seq:010}");
        tracing::info!(cluster = %opts.name, member = %path, "registered");
        // The znode of the image before the re-form: the others wait for
        // it to go (it is back under the new name).
        if let Some(old) = carried.as_ref().map(|c| &c.znode)
            && old
                .strip_prefix(&prefix)
                .and_then(|s| s.parse::<i64>().ok())
                .is_some()
        {
            match zk.call("delete", old, zk.client.delete(old, None)) {
                Ok(())
                | Err(ClusterError::Call {
                    source: zkc::Error::NoNode,
                    ..
                }) => {}
                Err(e) => tracing::warn!(error = %e, "cannot remove this member's previous znode"),
            }
        }
        Ok((
            Membership {
                zk: Arc::new(zk),
                cluster: opts.name.clone(),
                path,
                seq,
                info,
                carried,
                opts: opts.clone(),
            },
            listener,
        ))
    }

    /// The options it joined with.
    pub fn options(&self) -> &ClusterOptions {
        &self.opts
    }

    /// When a re-form must be done by: `form_timeout` after it began.
    pub fn reform_deadline(&self) -> Option<Instant> {
        let c = self.carried.as_ref()?;
        let clock = Clock;
        let spent =
            Duration::from_micros(clock.unix_micros().saturating_sub(c.since_us).max(0) as u64);
        Some(clock.now() + self.opts.form_timeout.saturating_sub(spent))
    }

    /// Write this member's state into its znode.
    pub fn set_state(&mut self, state: MemberState, index: Option<usize>) {
        self.info.state = state;
        self.info.index = index;
        self.info.since_us = Clock.unix_micros();
        if state == MemberState::Running {
            self.info.left_epoch = None;
            self.info.left_index = None;
        }
        self.publish();
    }

    /// Write `info` into the znode (logged when it fails: status only).
    pub fn publish(&self) {
        let data = serde_json::to_vec(&self.info).expect("member info serialises");
        let zk = &self.zk;
        if let Err(e) = zk.call(
            "set",
            &self.path,
            zk.client.set_data(&self.path, &data, None),
        ) {
            tracing::warn!(error = %e, "cannot update this member's state in ZooKeeper");
        }
    }

    /// Wait for a formation that names this member (as a standby while
    /// others run without it), compare versions, and hand over the
    /// endpoints.
    pub fn form(mut self, listener: TcpListener) -> Result<Formed, ClusterError> {
        let n = self.opts.processes;
        let dir = members_path(&self.cluster);
        let fpath = formation_path(&self.cluster);
        let clock = Clock;
        let reform_deadline = self.reform_deadline();
        let mut deadline = reform_deadline.unwrap_or_else(|| clock.now() + self.opts.form_timeout);
        let linger = self.opts.session_timeout + LINGER_GRACE;
        // Since when the formation being left (that epoch) is seen so.
        let mut left_since: Option<(u64, Instant)> = None;
        let mut said = Said::Nothing;
        loop {
            let zk = self.zk.clone();
            let (children, members_changed) =
                zk.call("list", &dir, zk.client.list_and_watch_children(&dir))?;
            let (data, stat, formation_changed) =
                zk.call("get", &fpath, zk.client.get_and_watch_data(&fpath))?;
            let formation = self.parse_formation(&fpath, &data)?;
            let members = sorted_members(&children);
            if !members.iter().any(|(s, _)| *s == self.seq) {
                return Err(ClusterError::Network {
                    cluster: self.cluster.clone(),
                    message: format!(
                        "this member's znode {} is gone (ZooKeeper session expired?)",
                        self.path
                    ),
                });
            }
            let listed = self.read_listed(&members)?;
            let now = clock.now();
            let epoch = formation.as_ref().map_or(0, |f| f.epoch);
            let left = formation.is_some()
                && listed.iter().any(|l| {
                    l.info.left_epoch == Some(epoch)
                        && !formation
                            .as_ref()
                            .is_some_and(|f| f.members.contains(&l.seq))
                });
            if !left {
                left_since = None;
            } else if left_since.is_none_or(|(e, _)| e != epoch) {
                left_since = Some((epoch, now));
            }
            let ignore_lingering = left_since.is_some_and(|(_, t)| now >= t + linger);
            let wait_until = match step(self.seq, n, formation.as_ref(), &listed, ignore_lingering)
            {
                Step::Form => {
                    let f = formation.expect("a formation names this member");
                    return self.formed(f, &listed, listener, deadline);
                }
                Step::Decide(chosen) => {
                    self.check_same(&pick(&listed, &chosen))?;
                    let f = Formation {
                        epoch: epoch + 1,
                        members: chosen,
                        since_us: Clock.unix_micros(),
                    };
                    let data = serde_json::to_vec(&f).expect("formation serialises");
                    match zk.call(
                        "set",
                        &fpath,
                        zk.client.set_data(&fpath, &data, Some(stat.version)),
                    ) {
                        Ok(_) => {
                            tracing::info!(cluster = %self.cluster, epoch = f.epoch, size = f.members.len(), "decided a formation");
                        }
                        // Another member decided first: follow it.
                        Err(ClusterError::Call {
                            source: zkc::Error::BadVersion,
                            ..
                        }) => {}
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                Step::Await(chosen) => {
                    self.check_same(&pick(&listed, &chosen))?;
                    Some(deadline)
                }
                Step::Standby { running, with } => {
                    // A member that could never form with them says so now.
                    self.check_same(&pick(&listed, &with))?;
                    if said != Said::Standby {
                        said = Said::Standby;
                        self.say_standby(running, &members);
                    }
                    None
                }
                Step::Linger { left } => {
                    if said != Said::Linger {
                        said = Said::Linger;
                        eprintln!(
                            "cluster {}: waiting for {left} member(s) of the formation being left to register again or for their ZooKeeper sessions to end (at most {} s)",
                            self.cluster,
                            linger.as_secs()
                        );
                    }
                    let (_, since) = left_since.expect("lingering has a start");
                    Some((since + linger).min(deadline))
                }
                Step::Wait => Some(deadline),
            };
            if wait_until.is_some() && now >= deadline {
                return Err(self.not_formed(reform_deadline.is_some(), &members));
            }
            let zk = &self.zk;
            let changed = async {
                tokio::select! {
                    _ = members_changed.changed() => {}
                    _ = formation_changed.changed() => {}
                }
            };
            match wait_until {
                Some(until) => {
                    let left = until.saturating_duration_since(clock.now());
                    let _ = zk.block_on(async { tokio::time::timeout(left, changed).await });
                }
                None => {
                    // A standby waits as long as it takes; its turn comes
                    // with a bounded wait again.
                    zk.block_on(changed);
                    deadline = clock.now() + self.opts.form_timeout;
                }
            }
        }
    }

    /// The formation record (`None` when none was decided yet).
    fn parse_formation(&self, fpath: &str, data: &[u8]) -> Result<Option<Formation>, ClusterError> {
        if data.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(data)
            .map(Some)
            .map_err(|e| ClusterError::Mismatch {
                cluster: self.cluster.clone(),
                message: format!(
                    "{fpath} holds no formation this version reads ({e}): not a dnsmonitor of this version?"
                ),
            })
    }

    /// Say (once) why this member waits as a standby, and show it so.
    fn say_standby(&mut self, running: usize, members: &[(i64, String)]) {
        let n = self.opts.processes;
        let what = if running == 0 {
            let before = members.iter().take_while(|(s, _)| *s != self.seq).count();
            format!("{before} members are registered before this one (size {n})")
        } else if running >= n {
            format!("{running} members are running (size {n})")
        } else {
            format!("{running} of {n} members are running; they re-form to take this one in")
        };
        tracing::warn!(cluster = %self.cluster, size = n, "waiting as a standby");
        eprintln!("cluster {}: {what}: waiting as a standby", self.cluster);
        self.set_state(MemberState::Standby, None);
    }

    /// The wait for a formation ran out: a re-form that could not happen,
    /// or members that never arrived.
    fn not_formed(&self, reforming: bool, members: &[(i64, String)]) -> ClusterError {
        if reforming {
            return ClusterError::Reform {
                cluster: self.cluster.clone(),
                secs: self.opts.form_timeout.as_secs(),
                why: format!(
                    "{} member(s) registered ({}), none decided a formation",
                    members.len(),
                    names(members)
                ),
            };
        }
        ClusterError::MembersMissing {
            cluster: self.cluster.clone(),
            present: members.len(),
            wanted: self.opts.processes,
            secs: self.opts.form_timeout.as_secs(),
            list: names(members),
        }
    }

    /// The cluster formed as `f`: this member's endpoints.
    fn formed(
        self,
        f: Formation,
        listed: &[Listed],
        listener: TcpListener,
        deadline: Instant,
    ) -> Result<Formed, ClusterError> {
        let mut picked = Vec::with_capacity(f.members.len());
        for s in &f.members {
            match listed.iter().find(|l| l.seq == *s) {
                Some(l) => picked.push(l),
                None => {
                    return Err(ClusterError::Network {
                        cluster: self.cluster.clone(),
                        message: format!(
                            "member m-{s:010} of formation {} left before the cluster started",
                            f.epoch
                        ),
                    });
                }
            }
        }
        self.check_same(&picked)?;
        let index = f
            .members
            .iter()
            .position(|s| *s == self.seq)
            .expect("the formation names this member");
        let handshake = handshake(
            &self.cluster,
            f.epoch,
            &f.members,
            &self.info.pipeline_version,
        );
        let clock = Clock;
        // A first formation connects within the form timeout; a re-form
        // within what is left of it, and at most a session timeout plus
        // grace (then it re-forms again without a member that did not come).
        let timeout = match self.carried {
            Some(_) => deadline
                .saturating_duration_since(clock.now())
                .min(self.opts.session_timeout + LINGER_GRACE),
            None => self.opts.form_timeout,
        };
        let endpoints = Endpoints {
            cluster: self.cluster.clone(),
            index,
            addresses: picked.iter().map(|l| l.info.address.clone()).collect(),
            listener,
            handshake,
            timeout,
            connected: Default::default(),
        };
        tracing::info!(cluster = %self.cluster, index, size = f.members.len(), epoch = f.epoch, "formed");
        Ok(Formed {
            members: picked.iter().map(|l| l.name.clone()).collect(),
            epoch: f.epoch,
            membership: self,
            endpoints,
        })
    }

    /// The `MemberInfo` of each of `members` still registered (one that
    /// left since the listing is left out).
    fn read_listed(&self, members: &[(i64, String)]) -> Result<Vec<Listed>, ClusterError> {
        let dir = members_path(&self.cluster);
        let mut out = Vec::with_capacity(members.len());
        for (seq, name) in members {
            let path = format!("{dir}/{name}");
            let data = match self.zk.call("get", &path, self.zk.client.get_data(&path)) {
                Ok((data, _)) => data,
                Err(ClusterError::Call {
                    source: zookeeper_client::Error::NoNode,
                    ..
                }) => continue,
                Err(e) => return Err(e),
            };
            let info = serde_json::from_slice(&data).map_err(|e| ClusterError::Mismatch {
                cluster: self.cluster.clone(),
                message: format!("member {name} has no readable member data ({e}): not a dnsmonitor of this version?"),
            })?;
            out.push(Listed {
                seq: *seq,
                name: name.clone(),
                info,
            });
        }
        Ok(out)
    }

    /// Every member must run the same pipeline version and worker count.
    fn check_same(&self, members: &[&Listed]) -> Result<(), ClusterError> {
        for l in members {
            let (name, other) = (&l.name, &l.info);
            if other.pipeline_version != self.info.pipeline_version {
                return Err(ClusterError::Mismatch {
                    cluster: self.cluster.clone(),
                    message: format!(
                        "member {name} ({}) runs pipeline version {}{}, this member {}{}: start every member with the same pipeline and blocklists, or push one with `dnsmonitor cluster push` and start the members without --pipeline",
                        other.address,
                        other.pipeline_version,
                        pushed(other.config_version),
                        self.info.pipeline_version,
                        pushed(self.info.config_version),
                    ),
                });
            }
            if other.workers != self.info.workers {
                return Err(ClusterError::Mismatch {
                    cluster: self.cluster.clone(),
                    message: format!(
                        "member {name} ({}) runs {} workers, this member {}: give every member the same --workers",
                        other.address, other.workers, self.info.workers
                    ),
                });
            }
        }
        Ok(())
    }

    /// Watch the cluster while this member runs (tasks on the session's
    /// runtime, until `done`):
    /// - the members: the `cluster_members` gauge follows them; when one of
    ///   the formed `members` leaves before `done` is set, `reform` is
    ///   called with [`Cause::Loss`] (on a thread of its own; timely cannot
    ///   go on without it). `grace`: how long a member that left may
    ///   precede our own end (members of a replay finish within moments).
    ///   When the formation runs below `--processes` and a member that
    ///   could join registers (same pipeline and workers, its endpoint
    ///   answers), `reform` is called with [`Cause::Grow`];
    /// - the session state, into `zookeeper_session_state`.
    pub fn watch(
        &self,
        members: Vec<String>,
        done: Arc<AtomicBool>,
        grace: Duration,
        metrics: Option<Metrics>,
        reform: Arc<dyn Fn(Cause, String) + Send + Sync>,
    ) {
        let client = self.zk.client.clone();
        let dir = members_path(&self.cluster);
        let stop = done.clone();
        let m = metrics.clone();
        let below = members.len() < self.opts.processes;
        let mine = self.info.clone();
        self.zk.spawn(async move {
            // Members already found unable to join (said once).
            let mut passed: Vec<String> = Vec::new();
            loop {
                match client.list_and_watch_children(&dir).await {
                    Ok((children, watcher)) => {
                        if let Some(m) = &m {
                            m.cluster_members.set(sorted_members(&children).len() as i64);
                        }
                        if let Some(gone) = members.iter().find(|m| !children.contains(m)) {
                            tokio::time::sleep(grace).await;
                            if stop.load(Ordering::Acquire) {
                                return;
                            }
                            tracing::error!(member = %gone, "a member left");
                            let why = format!("member {gone} left (its ZooKeeper session ended)");
                            let reform = reform.clone();
                            std::thread::spawn(move || reform(Cause::Loss, why));
                            return;
                        }
                        if below {
                            for name in sorted_members(&children).into_iter().map(|(_, n)| n) {
                                if members.contains(&name) || passed.contains(&name) {
                                    continue;
                                }
                                let path = format!("{dir}/{name}");
                                let Ok((data, _)) = client.get_data(&path).await else {
                                    continue;
                                };
                                let Ok(info) = serde_json::from_slice::<MemberInfo>(&data) else {
                                    passed.push(name);
                                    continue;
                                };
                                if info.state == MemberState::Running {
                                    // A member of an older formation that lingers.
                                    continue;
                                }
                                let fits = info.pipeline_version == mine.pipeline_version
                                    && info.workers == mine.workers;
                                let address = info.address.clone();
                                let answers = fits
                                    && tokio::task::spawn_blocking(move || {
                                        super::net::probe(&address, PROBE_TIMEOUT)
                                    })
                                    .await
                                    .unwrap_or(false);
                                if !answers {
                                    tracing::warn!(member = %name, address = %info.address, fits, "a member registered that cannot join this formation");
                                    passed.push(name);
                                    continue;
                                }
                                if stop.load(Ordering::Acquire) {
                                    return;
                                }
                                let why = format!(
                                    "member {name} registered while the cluster runs below --processes"
                                );
                                let reform = reform.clone();
                                std::thread::spawn(move || reform(Cause::Grow, why));
                                return;
                            }
                        }
                        watcher.changed().await;
                    }
                    // Connection loss (a ZooKeeper restart): the session
                    // survives it; ask again.
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
                if stop.load(Ordering::Acquire) {
                    return;
                }
            }
        });
        let Some(m) = metrics else { return };
        let mut states = self.zk.client.state_watcher();
        self.zk.spawn(async move {
            let mut st = states.peek_state();
            loop {
                m.set_zookeeper_session(session_state_label(st));
                if st.is_terminated() || done.load(Ordering::Acquire) {
                    return;
                }
                st = states.changed().await;
            }
        });
    }

    /// Remove this member's znode (the session closes when dropped).
    pub fn leave(&self) {
        let zk = &self.zk;
        if let Err(e) = zk.call("delete", &self.path, zk.client.delete(&self.path, None)) {
            tracing::debug!(error = %e, "leaving the cluster");
        }
    }
}

/// How long a running member tries to reach a new member's endpoint
/// before it re-forms to take it in.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The members of `listed` with these sequence numbers, in their order.
fn pick<'a>(listed: &'a [Listed], seqs: &[i64]) -> Vec<&'a Listed> {
    seqs.iter()
        .filter_map(|s| listed.iter().find(|l| l.seq == *s))
        .collect()
}

/// Znode names, comma-separated.
fn names(members: &[(i64, String)]) -> String {
    let list: Vec<&str> = members.iter().map(|(_, name)| name.as_str()).collect();
    list.join(", ")
}

fn pushed(v: Option<u64>) -> String {
    v.map_or(String::new(), |v| format!(" (pushed version {v})"))
}

/// What the members' timely endpoints prove to each other on connecting:
/// the same cluster, the same formation, the same pipeline.
fn handshake(cluster: &str, epoch: u64, seqs: &[i64], pipeline_version: &str) -> u64 {
    let mut seqs: Vec<u8> = seqs.iter().flat_map(|s| s.to_le_bytes()).collect();
    seqs.extend(epoch.to_le_bytes());
    let f = super::fingerprint(
        cluster.as_bytes(),
        &[seqs, pipeline_version.as_bytes().to_vec()],
    );
    u64::from_str_radix(&f, 16).unwrap_or(0)
}

/// Bind `--advertise`; port 0 binds a free port and advertises that one.
fn bind_advertised(advertise: &str) -> Result<(TcpListener, String), ClusterError> {
    let bad = |why: String| ClusterError::Advertise {
        address: advertise.escape_default().to_string(),
        why,
    };
    let Some((host, port)) = advertise.rsplit_once(':') else {
        return Err(bad("use HOST:PORT, such as 10.0.0.5:2101".into()));
    };
    if port.parse::<u16>().is_err() || host.is_empty() {
        return Err(bad("use HOST:PORT, such as 10.0.0.5:2101".into()));
    }
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>()
        && ip.is_unspecified()
    {
        return Err(bad(
            "the others connect to this address: give one they can reach, not a wildcard".into(),
        ));
    }
    let listener = TcpListener::bind(advertise).map_err(|e| bad(format!("cannot listen: {e}")))?;
    let address = if port == "0" {
        let local = listener
            .local_addr()
            .map_err(|e| bad(format!("cannot listen: {e}")))?;
        format!("{host}:{}", local.port())
    } else {
        advertise.to_string()
    };
    Ok((listener, address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_sort_by_sequence_number_not_by_listing_order() {
        let children: Vec<String> = ["m-0000000010", "m-0000000002", "junk", "m-0000000007"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = sorted_members(&children);
        let seqs: Vec<i64> = v.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [2, 7, 10]);
    }

    /// A registered member: `seq`, and the formation and index it left
    /// when it re-forms.
    fn member(seq: i64, left: Option<(u64, usize)>) -> Listed {
        Listed {
            seq,
            name: format!("m-{seq:010}"),
            info: MemberInfo {
                address: format!("127.0.0.1:{}", 2000 + seq),
                state: MemberState::Forming,
                index: None,
                since_us: 0,
                pipeline_version: "v".into(),
                config_version: None,
                workers: 1,
                pid: 1,
                refused: None,
                reforms: u64::from(left.is_some()),
                left_epoch: left.map(|(e, _)| e),
                left_index: left.map(|(_, i)| i),
            },
        }
    }

    fn formation(epoch: u64, members: &[i64]) -> Formation {
        Formation {
            epoch,
            members: members.to_vec(),
            since_us: 0,
        }
    }

    #[test]
    fn a_first_formation_waits_for_n_and_the_lowest_member_decides() {
        let two = [member(1, None), member(2, None)];
        assert_eq!(step(1, 3, None, &two, false), Step::Wait);
        let four = [
            member(1, None),
            member(2, None),
            member(3, None),
            member(4, None),
        ];
        assert_eq!(step(1, 3, None, &four, false), Step::Decide(vec![1, 2, 3]));
        assert_eq!(step(2, 3, None, &four, false), Step::Await(vec![1, 2, 3]));
        assert_eq!(
            step(4, 3, None, &four, false),
            Step::Standby {
                running: 0,
                with: vec![1, 2, 3]
            }
        );
        // Once written, it names them; a later member is a standby.
        let f = formation(1, &[1, 2, 3]);
        assert_eq!(step(2, 3, Some(&f), &four, false), Step::Form);
        assert_eq!(
            step(4, 3, Some(&f), &four, false),
            Step::Standby {
                running: 3,
                with: vec![1, 2, 3]
            }
        );
        // A formation of an earlier run whose members are all gone does
        // not count: the new members wait for N again.
        let old = formation(7, &[1, 2, 3]);
        let fresh = [member(20, None), member(21, None)];
        assert_eq!(step(20, 3, Some(&old), &fresh, false), Step::Wait);
    }

    #[test]
    fn after_a_loss_the_members_present_form_once_the_old_ones_are_back_or_gone() {
        let f = formation(4, &[1, 2, 3]);
        // 3 was killed and lingers; 1 and 2 registered again as 10, 11.
        let lingering = [
            member(3, None),
            member(10, Some((4, 0))),
            member(11, Some((4, 1))),
        ];
        assert_eq!(
            step(10, 3, Some(&f), &lingering, false),
            Step::Linger { left: 1 }
        );
        assert_eq!(
            step(11, 3, Some(&f), &lingering, false),
            Step::Linger { left: 1 }
        );
        // Its session ended (or the wait for it did): form at 2 of 3.
        assert_eq!(
            step(10, 3, Some(&f), &lingering, true),
            Step::Decide(vec![10, 11])
        );
        let gone = [member(10, Some((4, 0))), member(11, Some((4, 1)))];
        assert_eq!(
            step(10, 3, Some(&f), &gone, false),
            Step::Decide(vec![10, 11])
        );
        assert_eq!(
            step(11, 3, Some(&f), &gone, false),
            Step::Await(vec![10, 11])
        );
        // One not back yet (its old znode is there, in the formation): wait.
        let one_back = [member(2, None), member(10, Some((4, 0)))];
        assert_eq!(
            step(10, 3, Some(&f), &one_back, false),
            Step::Linger { left: 1 }
        );
    }

    #[test]
    fn a_standby_takes_the_empty_place_and_process_0_stays_where_it_was() {
        let f = formation(2, &[1, 2]);
        // 1 (process 0) was lost; 2 re-forms as 10; 5 waited as a standby
        // and, registered first, decides.
        let listed = [member(5, None), member(10, Some((2, 1)))];
        assert_eq!(
            step(5, 2, Some(&f), &listed, false),
            Step::Decide(vec![10, 5])
        );
        // Survivors keep their order, whatever their new sequence numbers.
        let f = formation(3, &[1, 2, 3]);
        let listed = [member(10, Some((3, 2))), member(11, Some((3, 0)))];
        assert_eq!(
            step(10, 3, Some(&f), &listed, false),
            Step::Decide(vec![11, 10])
        );
    }

    #[test]
    fn a_standby_of_another_pipeline_is_left_out_of_a_re_form() {
        // Version 2 was pushed; 10 re-formed and runs it, standby 5 still
        // runs the version it was started with.
        let f = formation(2, &[1, 2]);
        let mut stale = member(5, None);
        stale.info.pipeline_version = "old".into();
        let listed = [stale, member(10, Some((2, 0)))];
        assert_eq!(
            step(10, 2, Some(&f), &listed, false),
            Step::Decide(vec![10])
        );
        assert_eq!(
            step(5, 2, Some(&f), &listed, false),
            Step::Standby {
                running: 0,
                with: vec![10]
            }
        );
    }

    #[test]
    fn a_member_joining_a_cluster_below_n_waits_for_it_to_re_form() {
        // Formation 5 runs with 10 alone (N = 2); 12 registers.
        let f = formation(5, &[10]);
        let listed = [member(10, None), member(12, None)];
        assert_eq!(
            step(12, 2, Some(&f), &listed, false),
            Step::Standby {
                running: 1,
                with: vec![10]
            }
        );
        // 10 re-forms (as 13) to take it in: 12 decides, 13 keeps index 0.
        let listed = [member(12, None), member(13, Some((5, 0)))];
        assert_eq!(
            step(12, 2, Some(&f), &listed, false),
            Step::Decide(vec![13, 12])
        );
        // A member that left an older formation joins a running one as
        // any new member does, however long it waits.
        let listed = [member(10, None), member(14, Some((3, 1)))];
        assert_eq!(
            step(14, 2, Some(&f), &listed, true),
            Step::Standby {
                running: 1,
                with: vec![10]
            }
        );
    }

    #[test]
    fn member_data_of_before_re_forms_still_reads() {
        let old = r#"{"address":"h:1","state":"running","index":0,"since_us":1,"pipeline_version":"v","config_version":null,"workers":1,"pid":2}"#;
        let info: MemberInfo = serde_json::from_str(old).unwrap();
        assert_eq!(
            (info.reforms, info.left_epoch, info.left_index),
            (0, None, None)
        );
    }

    #[test]
    fn advertise_refuses_wildcards_and_binds_port_zero() {
        assert!(bind_advertised("0.0.0.0:0").is_err());
        assert!(bind_advertised("localhost").is_err());
        let (l, a) = bind_advertised("127.0.0.1:0").unwrap();
        assert_eq!(a, format!("127.0.0.1:{}", l.local_addr().unwrap().port()));
    }
}
