//! What the cluster keeps in ZooKeeper besides its members: pushed
//! pipeline versions (`cluster push`) and what `cluster status` reads.
//!
//! ```text
//! /dnsmonitor/<c>/config                   PushedConfig (JSON): the version in force
//! /dnsmonitor/<c>/config/v<N>/pipeline     the pipeline text
//! /dnsmonitor/<c>/config/v<N>/list-<i>-<j> chunk j of blocklist i (CHUNK_BYTES each)
//! /dnsmonitor/<c>/config/v<N>/ack-<member> "ready" or "refused: why" (`--at`;
//!                                          written once: by the member, or for
//!                                          it by another after ready_timeout)
//! ```
//!
//! A version is written completely before the `config` node names it (a
//! conditional set on the node's version, so two pushes cannot both win).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use zookeeper_client as zkc;

use super::form::{MemberInfo, sorted_members};
use super::zk::{ClusterError, Zk, cluster_path, config_path, members_path};
use crate::spec::{ConfigError, ConfigErrors};
use crate::time::Clock;

/// A znode holds about 1 MB (ZooKeeper's jute.maxbuffer): blocklists are
/// stored in chunks of this many bytes, and a pipeline must fit in one.
pub const CHUNK_BYTES: usize = 900 * 1024;
/// Ceiling of one pushed blocklist (the chunks of one version are read
/// into memory by every member).
pub const MAX_LIST_BYTES: usize = 512 << 20;

/// The `config` node's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushedConfig {
    pub version: u64,
    /// `super::fingerprint` of the pipeline and lists.
    pub fingerprint: String,
    /// The pipeline's file name when pushed (for messages).
    pub pipeline_name: String,
    pub blocklists: Vec<PushedList>,
    pub pushed_us: i64,
    /// `cluster push --at`: the event time (microseconds since the epoch)
    /// running members switch to it at; `None`: at their next start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_us: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushedList {
    /// File name when pushed (no directories).
    pub name: String,
    pub bytes: usize,
    pub chunks: usize,
}

/// A pushed version read back.
pub struct Pushed {
    pub config: PushedConfig,
    pub pipeline: Vec<u8>,
    pub lists: Vec<Vec<u8>>,
}

fn version_path(cluster: &str, v: u64) -> String {
    format!("{}/v{v}", config_path(cluster))
}

/// The version in force and the `config` node's znode version, if any.
fn current(zk: &Zk, cluster: &str) -> Result<Option<(PushedConfig, i32)>, ClusterError> {
    let path = config_path(cluster);
    match zk.call("get", &path, zk.client.get_data(&path)) {
        Ok((data, _)) if data.is_empty() => Ok(None),
        Ok((data, stat)) => serde_json::from_slice(&data)
            .map(|c| Some((c, stat.version)))
            .map_err(|e| ClusterError::Config {
                cluster: cluster.to_string(),
                message: format!("{path} does not hold a pushed version ({e})"),
            }),
        Err(ClusterError::Call {
            source: zkc::Error::NoNode,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Store a new version (already validated by the caller with `check`'s
/// code) and make it the one in force. `lists`: (file name, bytes).
pub fn push(
    zk: &Zk,
    cluster: &str,
    pipeline_name: &str,
    pipeline: &[u8],
    lists: &[(String, Vec<u8>)],
    at_us: Option<i64>,
) -> Result<PushedConfig, ClusterError> {
    let refuse = |message: String| ClusterError::Config {
        cluster: cluster.to_string(),
        message,
    };
    if pipeline.len() > CHUNK_BYTES {
        return Err(refuse(format!(
            "the pipeline is {} bytes; a pushed pipeline holds at most {CHUNK_BYTES}",
            pipeline.len()
        )));
    }
    if let Some((name, l)) = lists.iter().find(|(_, l)| l.len() > MAX_LIST_BYTES) {
        return Err(refuse(format!(
            "blocklist {name} is {} bytes; a pushed list holds at most {MAX_LIST_BYTES}",
            l.len()
        )));
    }
    zk.mkdir(&config_path(cluster))?;
    let (version, expected) = match current(zk, cluster)? {
        Some((c, v)) => (c.version + 1, v),
        None => {
            let path = config_path(cluster);
            let (_, stat) = zk.call("get", &path, zk.client.get_data(&path))?;
            (1, stat.version)
        }
    };
    let dir = version_path(cluster, version);
    let opts = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    let create = |path: &str, data: &[u8]| -> Result<(), ClusterError> {
        zk.call("create", path, zk.client.create(path, data, &opts))
            .map(|_| ())
    };
    match create(&dir, b"") {
        // A push that died half-way left it: start it over.
        Err(ClusterError::Call {
            source: zkc::Error::NodeExists,
            ..
        }) => {
            delete_tree(zk, &dir)?;
            create(&dir, b"")?;
        }
        r => r?,
    }
    create(&format!("{dir}/pipeline"), pipeline)?;
    let mut stored = Vec::new();
    for (i, (name, bytes)) in lists.iter().enumerate() {
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![&[][..]]
        } else {
            bytes.chunks(CHUNK_BYTES).collect()
        };
        for (j, c) in chunks.iter().enumerate() {
            create(&format!("{dir}/list-{i}-{j}"), c)?;
        }
        stored.push(PushedList {
            name: name.clone(),
            bytes: bytes.len(),
            chunks: chunks.len(),
        });
    }
    let blobs: Vec<Vec<u8>> = lists.iter().map(|(_, b)| b.clone()).collect();
    let config = PushedConfig {
        version,
        fingerprint: super::pipeline_version(pipeline, &blobs),
        pipeline_name: pipeline_name.to_string(),
        blocklists: stored,
        pushed_us: Clock.unix_micros(),
        at_us,
    };
    let data = serde_json::to_vec(&config).expect("config serialises");
    let path = config_path(cluster);
    match zk.call(
        "set",
        &path,
        zk.client.set_data(&path, &data, Some(expected)),
    ) {
        Ok(_) => {}
        Err(ClusterError::Call {
            source: zkc::Error::BadVersion,
            ..
        }) => {
            return Err(refuse(
                "another push stored a version at the same time: push again".into(),
            ));
        }
        Err(e) => return Err(e),
    }
    // Keep the previous version (members may still be loading it).
    if version > 2 {
        let old = version_path(cluster, version - 2);
        if let Err(e) = delete_tree(zk, &old) {
            tracing::warn!(error = %e, "cannot remove an old pushed version");
        }
    }
    Ok(config)
}

/// Delete a node and its children (one level: versions are flat).
fn delete_tree(zk: &Zk, path: &str) -> Result<(), ClusterError> {
    let children = match zk.call("list", path, zk.client.list_children(path)) {
        Err(ClusterError::Call {
            source: zkc::Error::NoNode,
            ..
        }) => return Ok(()),
        r => r?,
    };
    for c in children {
        let p = format!("{path}/{c}");
        zk.call("delete", &p, zk.client.delete(&p, None))?;
    }
    zk.call("delete", path, zk.client.delete(path, None))
}

/// The version in force, read completely; `None` when nothing was pushed.
pub fn load(zk: &Zk, cluster: &str) -> Result<Option<Pushed>, ClusterError> {
    let Some((config, _)) = current(zk, cluster)? else {
        return Ok(None);
    };
    let dir = version_path(cluster, config.version);
    let get = |path: String| -> Result<Vec<u8>, ClusterError> {
        zk.call("get", &path, zk.client.get_data(&path))
            .map(|(d, _)| d)
    };
    let pipeline = get(format!("{dir}/pipeline"))?;
    let mut lists = Vec::new();
    for (i, l) in config.blocklists.iter().enumerate() {
        let mut bytes = Vec::with_capacity(l.bytes);
        for j in 0..l.chunks {
            bytes.extend_from_slice(&get(format!("{dir}/list-{i}-{j}"))?);
        }
        if bytes.len() != l.bytes {
            return Err(ClusterError::Config {
                cluster: cluster.to_string(),
                message: format!(
                    "pushed version {}: blocklist {} has {} bytes, {} expected",
                    config.version,
                    l.name,
                    bytes.len(),
                    l.bytes
                ),
            });
        }
        lists.push(bytes);
    }
    Ok(Some(Pushed {
        config,
        pipeline,
        lists,
    }))
}

/// A pushed version laid out as files, ready for `Plan::from_str`
/// (`Plan::from_pushed` in config/ does both).
pub struct PushedFiles {
    /// Names the version's znode in errors.
    pub origin: String,
    pub pipeline: String,
    /// Where the lists were written (relative paths resolve here).
    pub dir: PathBuf,
    pub lists: Vec<PathBuf>,
}

/// Checks a pushed version on a running member (the binary passes
/// `Plan::from_pushed`; this room knows no pipelines).
pub type Validate = fn(&Pushed, &str, &Path) -> Result<(), ConfigErrors>;

impl Pushed {
    /// Lay it out for validation: the lists are written into `dir`
    /// (created); errors name the version's znode.
    pub fn files(&self, cluster: &str, dir: &Path) -> Result<PushedFiles, ConfigErrors> {
        let origin = format!(
            "zookeeper:{}/pipeline ({})",
            version_path(cluster, self.config.version),
            self.config.pipeline_name
        );
        let io_error = |message: String| {
            ConfigErrors(vec![ConfigError {
                file: origin.clone(),
                line: 0,
                column: 0,
                key: String::new(),
                message,
            }])
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(format!("cannot create {}: {e}", dir.display())))?;
        let mut paths: Vec<PathBuf> = Vec::new();
        for (i, (l, bytes)) in self.config.blocklists.iter().zip(&self.lists).enumerate() {
            // The pushed name is a file name only (no directories).
            let name: String = l
                .name
                .chars()
                .map(|c| if c == '/' || c == '\\' { '_' } else { c })
                .collect();
            // One folder per list: the file name (its stem names the list
            // in alerts) stays the pushed one, and two lists may share it.
            let p = dir.join(i.to_string()).join(&name);
            std::fs::create_dir_all(dir.join(i.to_string()))
                .and_then(|()| std::fs::write(&p, bytes))
                .map_err(|e| io_error(format!("cannot write {}: {e}", p.display())))?;
            paths.push(p);
        }
        Ok(PushedFiles {
            pipeline: String::from_utf8_lossy(&self.pipeline).into_owned(),
            origin,
            dir: dir.to_path_buf(),
            lists: paths,
        })
    }
}

/// One member as `cluster status` shows it.
#[derive(Debug, Serialize)]
pub struct MemberStatus {
    pub znode: String,
    /// `None` when its data could not be read (a member just leaving).
    pub info: Option<MemberInfo>,
}

/// Everything `cluster status` shows.
#[derive(Debug, Serialize)]
pub struct Status {
    pub cluster: String,
    pub members: Vec<MemberStatus>,
    pub config: Option<PushedConfig>,
}

/// Read the members (in sequence order) and the version in force.
pub fn status(zk: &Zk, cluster: &str) -> Result<Status, ClusterError> {
    let dir = members_path(cluster);
    let children = match zk.call("list", &dir, zk.client.list_children(&dir)) {
        Err(ClusterError::Call {
            source: zkc::Error::NoNode,
            ..
        }) => {
            let root = cluster_path(cluster);
            let exists = zk.call("exists", &root, zk.client.check_stat(&root))?;
            if exists.is_none() {
                return Err(ClusterError::Config {
                    cluster: cluster.to_string(),
                    message: format!("no such cluster on this ZooKeeper ({root} does not exist)"),
                });
            }
            Vec::new()
        }
        r => r?,
    };
    let mut members = Vec::new();
    for (_, name) in sorted_members(&children) {
        let path = format!("{dir}/{name}");
        let info = match zk.call("get", &path, zk.client.get_data(&path)) {
            Ok((data, _)) => serde_json::from_slice(&data).ok(),
            Err(ClusterError::Call {
                source: zkc::Error::NoNode,
                ..
            }) => continue,
            Err(e) => return Err(e),
        };
        members.push(MemberStatus { znode: name, info });
    }
    let config = current(zk, cluster)?.map(|(c, _)| c);
    Ok(Status {
        cluster: cluster.to_string(),
        members,
        config,
    })
}

/// What a running member does with a valid pushed version that names an
/// event time (`cluster push --at`); the binary implements it over the
/// run's `dataflow::reload::Reload` (this room knows no dataflow).
pub trait LiveSwitch: Send + Sync {
    /// Load the version (its lists written under `dir`) and hold this
    /// member's readers before the pane of `at_us`; `Err` with why it
    /// cannot be applied live here (another window, or too late: the
    /// input is already past that event time).
    fn hold(&self, p: &Pushed, cluster: &str, dir: &Path, at_us: i64) -> Result<(), String>;
    /// Every member is ready: put the held version in force; what to log.
    fn decide(&self, version: u64) -> String;
    /// A member is not ready: the readers go on with the version in force.
    fn release(&self);
}

/// While a member runs: watch the `config` node (a std thread, until
/// `done`). A newly pushed version is loaded and validated here; an invalid
/// one (a list it names missing on this member, say) is refused: logged,
/// counted (`cluster_config_refused`), and shown by `cluster status` in
/// this member's `refused`. The member keeps the version it runs.
///
/// A valid version pushed with `--at` switches the running members at
/// that event time, all or none (`switch`, over `members`: the
/// formation's member znode names): each member holds its readers before
/// the pane and writes its answer (`ack-<member>`: ready, or why not) into
/// the version's node, then waits for the others'. Every member ready:
/// each puts it in force at the same pane; any member not ready (too late,
/// cannot load it, cannot apply it live): every member refuses it, says
/// why and counts it. A member still silent `ready_timeout` after this one
/// answered (hung, its watcher stuck) is answered for: this member writes
/// its `ack-` as refused (an answer is written once, so either the silent
/// member's own answer or this one stands, and every member reads the same
/// one), and so every member refuses. A version without `--at` applies at
/// the next start.
pub fn watch_config(
    member: &super::Membership,
    members: Vec<String>,
    done: Arc<AtomicBool>,
    metrics: Option<crate::metrics::Metrics>,
    validate: Validate,
    switch: Option<Arc<dyn LiveSwitch>>,
) {
    let ready_timeout = member.options().ready_timeout;
    let zk = member.zk.clone();
    let cluster = member.cluster.clone();
    let mut info = member.info.clone();
    let path = member.path.clone();
    let me = leaf(&path).to_string();
    let spawned = std::thread::Builder::new()
        .name("cluster-config".into())
        .spawn(move || {
            let cpath = config_path(&cluster);
            let mut seen = info.config_version.unwrap_or(0);
            while !done.load(Ordering::Acquire) {
                let watcher = match zk.call("exists", &cpath, zk.client.check_and_watch_stat(&cpath)) {
                    Ok((_, w)) => w,
                    Err(e) => {
                        tracing::debug!(error = %e, "watching the pushed version");
                        Clock.sleep(CONFIG_RECHECK);
                        continue;
                    }
                };
                match load(&zk, &cluster) {
                    Ok(Some(p)) if p.config.version > seen => {
                        // Versions pushed in between, never seen here:
                        // the members waiting for this one's answer hear
                        // that it cannot apply them.
                        for skipped in seen + 1..p.config.version {
                            let _ = answer(
                                &zk,
                                &cluster,
                                skipped,
                                &me,
                                &format!("refused: version {} was pushed before this member saw it", p.config.version),
                            );
                        }
                        seen = p.config.version;
                        let ctx = Examine {
                            zk: &zk,
                            cluster: &cluster,
                            me: &me,
                            members: &members,
                            done: &done,
                            ready_timeout,
                        };
                        examine(&ctx, &p, &mut info, metrics.as_ref(), validate, switch.as_deref());
                        let data = serde_json::to_vec(&info).expect("member info serialises");
                        if let Err(e) = zk.call("set", &path, zk.client.set_data(&path, &data, None)) {
                            tracing::warn!(error = %e, "cannot update this member's state in ZooKeeper");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read the pushed version"),
                }
                // Wait for a change, looking at `done` now and then.
                let mut changed = Box::pin(watcher.changed());
                while !done.load(Ordering::Acquire) {
                    let r = zk.block_on(async {
                        tokio::time::timeout(CONFIG_RECHECK, &mut changed).await
                    });
                    if r.is_ok() {
                        break;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch the pushed version");
    }
}

/// How often the config watcher looks whether the run is over.
const CONFIG_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);
/// How often a member waiting for the others' answers looks again.
const ANSWER_RECHECK: std::time::Duration = std::time::Duration::from_millis(50);
/// A member's answer to a version pushed with `--at`.
const READY: &str = "ready";

fn leaf(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Write this member's answer to version `v` (once: a second is ignored).
fn answer(zk: &Zk, cluster: &str, v: u64, me: &str, what: &str) -> Result<(), ClusterError> {
    let path = format!("{}/ack-{me}", version_path(cluster, v));
    let opts = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    match zk.call(
        "create",
        &path,
        zk.client.create(&path, what.as_bytes(), &opts),
    ) {
        Ok(_)
        | Err(ClusterError::Call {
            source: zkc::Error::NodeExists,
            ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The decision on version `v` once it can be made from the members'
/// answers: `Ok` when every member is ready, `Err(member, why)` at the
/// first one that is not; `None` while answers are missing.
pub fn decision(
    members: &[String],
    answers: &[(String, String)],
) -> Option<Result<(), (String, String)>> {
    for (m, a) in answers {
        if members.contains(m) && a != READY {
            return Some(Err((m.clone(), a.clone())));
        }
    }
    let ready = |m: &String| answers.iter().any(|(n, a)| n == m && a == READY);
    members.iter().all(ready).then_some(Ok(()))
}

/// The answer a member writes for another that has not answered within
/// `ready_timeout` (it starts with "refused", as every answer but
/// [`READY`] does).
pub fn silent_answer(ready_timeout: std::time::Duration, by: &str) -> String {
    format!(
        "refused: no answer within {} s ([cluster] ready_timeout_secs; answered for it by {by})",
        ready_timeout.as_secs()
    )
}

/// Wait for every member's answer to version `v` (or `done`). Past
/// `ctx.ready_timeout` the members still silent are answered for
/// ([`silent_answer`]); the decision is still read back from ZooKeeper, so
/// it is the one every member reads.
fn await_answers(ctx: &Examine<'_>, v: u64) -> Option<Result<(), (String, String)>> {
    let dir = version_path(ctx.cluster, v);
    let deadline = Clock.now() + ctx.ready_timeout;
    while !ctx.done.load(Ordering::Acquire) {
        let mut answers = Vec::new();
        match ctx.zk.call("list", &dir, ctx.zk.client.list_children(&dir)) {
            Ok(children) => {
                for c in children {
                    let Some(m) = c.strip_prefix("ack-") else {
                        continue;
                    };
                    let p = format!("{dir}/{c}");
                    if let Ok((d, _)) = ctx.zk.call("get", &p, ctx.zk.client.get_data(&p)) {
                        answers.push((m.to_string(), String::from_utf8_lossy(&d).into_owned()));
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "reading the members' answers"),
        }
        if let Some(d) = decision(ctx.members, &answers) {
            return Some(d);
        }
        if Clock.now() >= deadline {
            let silent = ctx
                .members
                .iter()
                .filter(|m| !answers.iter().any(|(n, _)| n == *m));
            for m in silent {
                tracing::warn!(
                    cluster = ctx.cluster,
                    version = v,
                    member = %m,
                    "no answer to a pushed version within the ready timeout"
                );
                let why = silent_answer(ctx.ready_timeout, ctx.me);
                if let Err(e) = answer(ctx.zk, ctx.cluster, v, m, &why) {
                    tracing::warn!(error = %e, "cannot answer for a silent member");
                }
            }
            // Read back next round: the answers written (ours or
            // theirs) decide.
        }
        Clock.sleep(ANSWER_RECHECK);
    }
    None
}

/// Where `examine` works.
struct Examine<'a> {
    zk: &'a Zk,
    cluster: &'a str,
    me: &'a str,
    members: &'a [String],
    done: &'a AtomicBool,
    /// How long to wait for the other members' answers.
    ready_timeout: std::time::Duration,
}

/// Validate a newly pushed version on this member; say what happens.
fn examine(
    ctx: &Examine<'_>,
    p: &Pushed,
    info: &mut MemberInfo,
    metrics: Option<&crate::metrics::Metrics>,
    validate: Validate,
    switch: Option<&dyn LiveSwitch>,
) {
    let cluster = ctx.cluster;
    let v = p.config.version;
    let dir =
        std::env::temp_dir().join(format!("dnsmonitor-{cluster}-v{v}-{}", std::process::id()));
    let result = validate(p, cluster, &dir);
    let running = match info.config_version {
        Some(r) => format!("pushed version {r}"),
        None => format!("pipeline version {}", info.pipeline_version),
    };
    let mut refuse = |why: String| {
        tracing::error!(cluster, version = v, error = %why, "refused a pushed version");
        eprintln!(
            "error: cluster {cluster}: refused pushed version {v} ({}); keeping {running}",
            crate::escape::for_terminal(&why)
        );
        info.refused = Some(format!("version {v}: {why}"));
        if let Some(m) = metrics {
            m.cluster_config_refused.inc();
        }
    };
    let at_us = p.config.at_us;
    match result {
        Err(errors) => {
            let _ = std::fs::remove_dir_all(&dir);
            let first = errors.0.first().map(|e| e.to_string()).unwrap_or_default();
            if at_us.is_some() {
                let _ = answer(ctx.zk, cluster, v, ctx.me, &format!("refused: {first}"));
            }
            refuse(format!("{} error(s); first: {first}", errors.0.len()));
        }
        Ok(_) => {
            let held = match (at_us, switch) {
                (Some(at), Some(s)) => Some(s.hold(p, cluster, &dir, at).map(|()| (at, s))),
                (Some(_), None) => Some(Err("this member's run cannot switch live".to_string())),
                (None, _) => None,
            };
            let _ = std::fs::remove_dir_all(&dir);
            match held {
                None => {
                    info.refused = None;
                    if p.config.fingerprint != info.pipeline_version {
                        tracing::warn!(
                            cluster,
                            version = v,
                            "a new pushed version applies at the next start"
                        );
                        eprintln!(
                            "cluster {cluster}: pushed version {v} is valid; it has no --at event time, so this member keeps {running} until the members restart"
                        );
                    }
                }
                Some(Err(why)) => {
                    let _ = answer(ctx.zk, cluster, v, ctx.me, &format!("refused: {why}"));
                    refuse(format!(
                        "cannot switch at {}: {why}",
                        crate::time::rfc3339(at_us.unwrap_or_default())
                    ));
                }
                Some(Ok((at, s))) => {
                    eprintln!(
                        "cluster {cluster}: pushed version {v} is valid; waiting for every member to be ready to switch at {}",
                        crate::time::rfc3339(at)
                    );
                    if let Err(e) = answer(ctx.zk, cluster, v, ctx.me, READY) {
                        tracing::warn!(error = %e, "cannot answer a pushed version");
                    }
                    match await_answers(ctx, v) {
                        Some(Ok(())) => {
                            let said = s.decide(v);
                            info.refused = None;
                            info.config_version = Some(v);
                            info.pipeline_version = p.config.fingerprint.clone();
                            if let Some(m) = metrics {
                                m.cluster_config_version.set(v as i64);
                            }
                            eprintln!("cluster {cluster}: {said}");
                        }
                        Some(Err((m, why))) => {
                            s.release();
                            refuse(format!(
                                "member {m} cannot switch at {}: {why}",
                                crate::time::rfc3339(at)
                            ));
                        }
                        None => s.release(),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_switches_when_every_member_is_ready_and_no_member_refuses() {
        let members = vec!["m-1".to_string(), "m-2".to_string()];
        let a = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(m, x)| (m.to_string(), x.to_string()))
                .collect()
        };
        assert_eq!(
            decision(&members, &a(&[("m-1", READY)])),
            None,
            "waits for m-2"
        );
        assert_eq!(
            decision(
                &members,
                &a(&[("m-1", READY), ("m-2", READY), ("m-9", "refused: x")])
            ),
            Some(Ok(())),
            "a member outside the formation does not count"
        );
        assert_eq!(
            decision(&members, &a(&[("m-2", "refused: too late")])),
            Some(Err(("m-2".into(), "refused: too late".into()))),
            "one refusal decides at once"
        );
        // An answer written for a silent member is a refusal.
        let silent = silent_answer(std::time::Duration::from_secs(2), "m-1");
        assert!(silent.contains("ready_timeout_secs"), "{silent}");
        assert_eq!(
            decision(&members, &a(&[("m-1", READY), ("m-2", &silent)])),
            Some(Err(("m-2".into(), silent.clone())))
        );
    }
}
