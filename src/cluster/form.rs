//! Forming: a member registers an ephemeral sequential znode under
//! `/dnsmonitor/<cluster>/members` (its `MemberInfo` as JSON), waits until
//! `--processes` members are there, and takes its process index from the
//! sorted sequence numbers. A member past the first N waits as a standby.
//! Every wait is bounded (`form_timeout`) except a standby's, which is what
//! it is for. Members compare their pipeline version and worker count
//! before timely starts: a cluster never runs two pipelines.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zookeeper_client as zkc;

use super::net::Endpoints;
use super::zk::{ClusterError, Zk, members_path, session_state_label};
use super::{ClusterOptions, check_name};
use crate::metrics::Metrics;
use crate::time::Clock;

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
}

/// A registered member (its session keeps the znode alive).
pub struct Membership {
    pub zk: Arc<Zk>,
    pub cluster: String,
    /// Its znode, `/dnsmonitor/<cluster>/members/m-NNNNNNNNNN`.
    pub path: String,
    pub seq: i64,
    pub info: MemberInfo,
    opts: ClusterOptions,
}

/// A formed cluster: this member's place and the timely endpoints.
pub struct Formed {
    pub membership: Membership,
    pub endpoints: Endpoints,
    /// The members' znode names, by process index.
    pub members: Vec<String>,
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

impl Membership {
    /// Bind the timely endpoint and register through `zk` (connected to
    /// `opts.zookeeper`). `pipeline_version`: this member's
    /// `super::pipeline_version`.
    pub fn join(
        zk: Zk,
        opts: &ClusterOptions,
        pipeline_version: String,
        config_version: Option<u64>,
        workers: usize,
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
        };
        let data = serde_json::to_vec(&info).expect("member info serialises");
        let prefix = format!("{dir}/{MEMBER_PREFIX}");
        let mode = zkc::CreateMode::EphemeralSequential.with_acls(zkc::Acls::anyone_all());
        let (_, seq) = zk.call("create", &prefix, zk.client.create(&prefix, &data, &mode))?;
        let seq = seq.into_i64();
        let path = format!("{prefix}{seq:010}");
        tracing::info!(cluster = %opts.name, member = %path, "registered");
        Ok((
            Membership {
                zk: Arc::new(zk),
                cluster: opts.name.clone(),
                path,
                seq,
                info,
                opts: opts.clone(),
            },
            listener,
        ))
    }

    /// Write this member's state into its znode.
    pub fn set_state(&mut self, state: MemberState, index: Option<usize>) {
        self.info.state = state;
        self.info.index = index;
        self.info.since_us = Clock.unix_micros();
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

    /// Wait for the cluster to form (as standby while past the first N),
    /// compare versions, and hand over the endpoints.
    pub fn form(mut self, listener: TcpListener) -> Result<Formed, ClusterError> {
        let n = self.opts.processes;
        let dir = members_path(&self.cluster);
        let clock = Clock;
        let mut deadline = clock.now() + self.opts.form_timeout;
        loop {
            let zk = self.zk.clone();
            let (children, watcher) =
                zk.call("list", &dir, zk.client.list_and_watch_children(&dir))?;
            let members = sorted_members(&children);
            let Some(pos) = members.iter().position(|(s, _)| *s == self.seq) else {
                return Err(ClusterError::Network {
                    cluster: self.cluster.clone(),
                    message: format!(
                        "this member's znode {} is gone (ZooKeeper session expired?)",
                        self.path
                    ),
                });
            };
            if pos >= n {
                if self.info.state != MemberState::Standby {
                    tracing::warn!(
                        cluster = %self.cluster,
                        position = pos + 1,
                        size = n,
                        "the cluster is full: waiting as a standby"
                    );
                    eprintln!(
                        "cluster {}: {} members are registered before this one (size {n}): waiting as a standby",
                        self.cluster, pos
                    );
                    self.set_state(MemberState::Standby, None);
                }
                // A standby waits as long as it takes.
                let _ = zk.block_on(watcher.changed());
                // Its turn: from now on the forming wait is bounded again.
                deadline = clock.now() + self.opts.form_timeout;
                continue;
            }
            if members.len() >= n {
                let first = &members[..n];
                // A member that left between the listing and the read
                // (one that refused to form, say): list again.
                let Some(infos) = self.read_infos(first)? else {
                    continue;
                };
                self.check_same(first, &infos)?;
                let addresses = infos.iter().map(|i| i.address.clone()).collect();
                let seqs: Vec<i64> = first.iter().map(|(s, _)| *s).collect();
                let handshake = handshake(&self.cluster, &seqs, &self.info.pipeline_version);
                let endpoints = Endpoints {
                    cluster: self.cluster.clone(),
                    index: pos,
                    addresses,
                    listener,
                    handshake,
                    timeout: self.opts.form_timeout,
                };
                tracing::info!(cluster = %self.cluster, index = pos, size = n, "formed");
                return Ok(Formed {
                    membership: self,
                    endpoints,
                    members: first.iter().map(|(_, name)| name.clone()).collect(),
                });
            }
            let now = clock.now();
            if now >= deadline {
                let list: Vec<String> = members.iter().map(|(_, name)| name.clone()).collect();
                return Err(ClusterError::MembersMissing {
                    cluster: self.cluster.clone(),
                    present: members.len(),
                    wanted: n,
                    secs: self.opts.form_timeout.as_secs(),
                    list: list.join(", "),
                });
            }
            let _ = zk
                .block_on(async { tokio::time::timeout(deadline - now, watcher.changed()).await });
        }
    }

    /// The `MemberInfo` of each of `members`; `None` when one of them has
    /// left since they were listed.
    fn read_infos(
        &self,
        members: &[(i64, String)],
    ) -> Result<Option<Vec<MemberInfo>>, ClusterError> {
        let dir = members_path(&self.cluster);
        let mut infos = Vec::with_capacity(members.len());
        for (_, name) in members {
            let path = format!("{dir}/{name}");
            let data = match self.zk.call("get", &path, self.zk.client.get_data(&path)) {
                Ok((data, _)) => data,
                Err(ClusterError::Call {
                    source: zookeeper_client::Error::NoNode,
                    ..
                }) => return Ok(None),
                Err(e) => return Err(e),
            };
            infos.push(serde_json::from_slice(&data).map_err(|e| ClusterError::Mismatch {
                cluster: self.cluster.clone(),
                message: format!("member {name} has no readable member data ({e}): not a dnsmonitor of this version?"),
            })?);
        }
        Ok(Some(infos))
    }

    /// Every member must run the same pipeline version and worker count.
    fn check_same(
        &self,
        members: &[(i64, String)],
        infos: &[MemberInfo],
    ) -> Result<(), ClusterError> {
        for ((_, name), other) in members.iter().zip(infos) {
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
    ///   the formed members leaves before `done` is set, say so and stop
    ///   this process (a running cluster is not re-formed yet, and timely
    ///   cannot go on without it). `grace`: how long a member that left may
    ///   precede our own end (members of a replay finish within moments);
    /// - the session state, into `zookeeper_session_state`.
    pub fn watch(
        &self,
        members: Vec<String>,
        done: Arc<AtomicBool>,
        grace: Duration,
        metrics: Option<Metrics>,
    ) {
        let client = self.zk.client.clone();
        let dir = members_path(&self.cluster);
        let cluster = self.cluster.clone();
        let stop = done.clone();
        let m = metrics.clone();
        self.zk.spawn(async move {
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
                            tracing::error!(cluster = %cluster, member = %gone, "a member left");
                            eprintln!(
                                "error: cluster {cluster}: member {gone} left (its ZooKeeper session ended); this member stops: re-forming a running cluster is not implemented yet, restart the members"
                            );
                            std::process::exit(1);
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

fn pushed(v: Option<u64>) -> String {
    v.map_or(String::new(), |v| format!(" (pushed version {v})"))
}

/// What the members' timely endpoints prove to each other on connecting:
/// the same cluster, the same formation, the same pipeline.
fn handshake(cluster: &str, seqs: &[i64], pipeline_version: &str) -> u64 {
    let seqs: Vec<u8> = seqs.iter().flat_map(|s| s.to_le_bytes()).collect();
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

    #[test]
    fn advertise_refuses_wildcards_and_binds_port_zero() {
        assert!(bind_advertised("0.0.0.0:0").is_err());
        assert!(bind_advertised("localhost").is_err());
        let (l, a) = bind_advertised("127.0.0.1:0").unwrap();
        assert_eq!(a, format!("127.0.0.1:{}", l.local_addr().unwrap().port()));
    }
}
