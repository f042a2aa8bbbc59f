//! The ZooKeeper session of a member or of an admin command: a
//! `zookeeper_client::Client` on a tokio runtime of its own (one thread, so
//! the session keeps its heartbeats while the caller is busy in timely),
//! every call bounded by the connect timeout. Owns the error type of the
//! room and the znode paths.

use std::future::Future;
use std::time::Duration;

use zookeeper_client as zkc;

/// Everything that can stop a member or an admin command.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("--zookeeper `{given}`: {why}")]
    BadTarget { given: String, why: String },
    #[error("cannot reach ZooKeeper at {hosts} within {secs} s: {why}")]
    Unreachable {
        hosts: String,
        secs: u64,
        why: String,
    },
    #[error(
        "ZooKeeper chroot `{chroot}` does not exist on {hosts}: create it first, or fix --zookeeper"
    )]
    NoChroot { hosts: String, chroot: String },
    #[error("ZooKeeper {op} {path}: {source}")]
    Call {
        op: &'static str,
        path: String,
        #[source]
        source: zkc::Error,
    },
    #[error("ZooKeeper did not answer {op} {path} within {secs} s")]
    CallTimeout {
        op: &'static str,
        path: String,
        secs: u64,
    },
    #[error(
        "cluster {cluster}: {present} of {wanted} members registered within {secs} s ({list}); start the others or lower --processes (the wait is [cluster] form_timeout_secs)"
    )]
    MembersMissing {
        cluster: String,
        present: usize,
        wanted: usize,
        secs: u64,
        list: String,
    },
    #[error(
        "cluster {cluster}: could not re-form within {secs} s ({why}); this member stops (the wait is [cluster] form_timeout_secs)"
    )]
    Reform {
        cluster: String,
        secs: u64,
        why: String,
    },
    #[error("cluster {cluster}: {message}")]
    Mismatch { cluster: String, message: String },
    #[error("cluster {cluster}: timely endpoints: {message}")]
    Network { cluster: String, message: String },
    #[error("--advertise {address}: {why}")]
    Advertise { address: String, why: String },
    #[error("cluster {cluster}: {message}")]
    Config { cluster: String, message: String },
}

impl ClusterError {
    /// Errors in what the user asked for (exit status 2) rather than in
    /// what happened at run time.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ClusterError::BadTarget { .. }
                | ClusterError::NoChroot { .. }
                | ClusterError::Mismatch { .. }
                | ClusterError::Advertise { .. }
                | ClusterError::Config { .. }
        )
    }
}

/// A parsed `--zookeeper` value: `host:port[,host:port...][/chroot]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ZkTarget {
    /// As given (the client parses it again).
    pub given: String,
    pub hosts: Vec<String>,
    pub chroot: Option<String>,
}

impl std::str::FromStr for ZkTarget {
    type Err = ClusterError;
    fn from_str(given: &str) -> Result<ZkTarget, ClusterError> {
        let bad = |why: String| ClusterError::BadTarget {
            given: given.escape_default().to_string(),
            why,
        };
        let (hosts, chroot) = match given.find('/') {
            Some(i) => (&given[..i], Some(&given[i..])),
            None => (given, None),
        };
        if hosts.is_empty() {
            return Err(bad("no host: use host:port[,host:port...][/chroot]".into()));
        }
        let mut list = Vec::new();
        for h in hosts.split(',') {
            let Some((host, port)) = h.rsplit_once(':') else {
                return Err(bad(format!(
                    "`{}` has no port: use host:port such as 127.0.0.1:2181",
                    h.escape_default()
                )));
            };
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad(format!(
                    "`{}` is not host:port with a port from 1 to 65535",
                    h.escape_default()
                )));
            }
            list.push(h.to_string());
        }
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                if c.ends_with('/')
                    || c.contains("//")
                    || c.split('/').any(|p| p == "." || p == "..")
                {
                    return Err(bad(format!(
                        "chroot `{}` is not a ZooKeeper path such as /prod",
                        c.escape_default()
                    )));
                }
                Some(c.to_string())
            }
        };
        Ok(ZkTarget {
            given: given.to_string(),
            hosts: list,
            chroot,
        })
    }
}

/// A session state as the `session_state` label of
/// `dnsmonitor_zookeeper_session_state` says it (`metrics::ZK_SESSION_STATES`).
pub fn session_state_label(s: zkc::SessionState) -> &'static str {
    match s {
        zkc::SessionState::SyncConnected => "connected",
        zkc::SessionState::Disconnected => "disconnected",
        zkc::SessionState::ConnectedReadOnly => "readonly",
        zkc::SessionState::Expired => "expired",
        zkc::SessionState::AuthFailed => "auth_failed",
        zkc::SessionState::Closed => "closed",
    }
}

/// `/dnsmonitor/<cluster>`.
pub fn cluster_path(cluster: &str) -> String {
    format!("/dnsmonitor/{cluster}")
}

/// `/dnsmonitor/<cluster>/members`.
pub fn members_path(cluster: &str) -> String {
    format!("/dnsmonitor/{cluster}/members")
}

/// `/dnsmonitor/<cluster>/formation`: the formation in force
/// (`form::Formation`).
pub fn formation_path(cluster: &str) -> String {
    format!("/dnsmonitor/{cluster}/formation")
}

/// `/dnsmonitor/<cluster>/config`.
pub fn config_path(cluster: &str) -> String {
    format!("/dnsmonitor/{cluster}/config")
}

/// A connected session.
pub struct Zk {
    // Dropped after the client (field order): the client's task lives there.
    pub(crate) client: zkc::Client,
    rt: tokio::runtime::Runtime,
    pub target: ZkTarget,
    /// Bound of every call.
    pub timeout: Duration,
}

impl Zk {
    /// Connect (bounded by `timeout`) and check the chroot exists.
    pub fn connect(
        target: &ZkTarget,
        timeout: Duration,
        session_timeout: Duration,
    ) -> Result<Zk, ClusterError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zookeeper")
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Unreachable {
                hosts: target.hosts.join(","),
                secs: timeout.as_secs(),
                why: format!("cannot start its runtime: {e}"),
            })?;
        let unreachable = |why: String| ClusterError::Unreachable {
            hosts: target.hosts.join(","),
            secs: timeout.as_secs(),
            why,
        };
        let connect = zkc::Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(timeout)
            .connect(&target.given);
        let client = match rt.block_on(async { tokio::time::timeout(timeout, connect).await }) {
            Ok(Ok(c)) => c,
            Ok(Err(zkc::Error::Timeout)) => {
                return Err(unreachable(
                    "no session established (is a ZooKeeper server listening there?)".into(),
                ));
            }
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable("no answer".into())),
        };
        let zk = Zk {
            client,
            rt,
            target: target.clone(),
            timeout,
        };
        if let Some(chroot) = &zk.target.chroot {
            let root = zk.call("exists", "/", zk.client.check_stat("/"))?;
            if root.is_none() {
                return Err(ClusterError::NoChroot {
                    hosts: zk.target.hosts.join(","),
                    chroot: chroot.clone(),
                });
            }
        }
        Ok(zk)
    }

    /// Run one call, bounded by the timeout.
    pub fn call<T>(
        &self,
        op: &'static str,
        path: &str,
        f: impl Future<Output = Result<T, zkc::Error>>,
    ) -> Result<T, ClusterError> {
        self.call_within(op, path, self.timeout, f)
    }

    /// Run one call, bounded by `limit`.
    pub fn call_within<T>(
        &self,
        op: &'static str,
        path: &str,
        limit: Duration,
        f: impl Future<Output = Result<T, zkc::Error>>,
    ) -> Result<T, ClusterError> {
        match self
            .rt
            .block_on(async { tokio::time::timeout(limit, f).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(ClusterError::Call {
                op,
                path: path.to_string(),
                source,
            }),
            Err(_) => Err(ClusterError::CallTimeout {
                op,
                path: path.to_string(),
                secs: limit.as_secs(),
            }),
        }
    }

    /// `mkdir -p` of persistent nodes.
    pub fn mkdir(&self, path: &str) -> Result<(), ClusterError> {
        let opts = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
        self.call("create", path, self.client.mkdir(path, &opts))
            .map_err(|e| match e {
                ClusterError::Call {
                    source: zkc::Error::NoNode,
                    ..
                } => ClusterError::NoChroot {
                    hosts: self.target.hosts.join(","),
                    chroot: self.target.chroot.clone().unwrap_or_else(|| "/".into()),
                },
                e => e,
            })
    }

    /// Block on a future that is not a call (a watcher).
    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The runtime, for tasks that watch while the member runs.
    pub(crate) fn spawn<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.rt.spawn(f);
    }

    /// The session state, as the metric shows it.
    pub fn session_state(&self) -> zkc::SessionState {
        self.client.state()
    }

    pub fn client(&self) -> &zkc::Client {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_say_why() {
        let t: ZkTarget = "127.0.0.1:2181,10.0.0.2:2182/prod/dns".parse().unwrap();
        assert_eq!(t.hosts, ["127.0.0.1:2181", "10.0.0.2:2182"]);
        assert_eq!(t.chroot.as_deref(), Some("/prod/dns"));
        let t: ZkTarget = "zk:2181/".parse().unwrap();
        assert_eq!(t.chroot, None);
        for (bad, why) in [
            ("", "no host"),
            ("/x", "no host"),
            ("zk", "has no port"),
            ("zk:0", "port from 1"),
            ("zk:99999", "port from 1"),
            (":2181", "port from 1"),
            ("zk:2181/a/", "chroot"),
            ("zk:2181/a/../b", "chroot"),
        ] {
            let e = bad.parse::<ZkTarget>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
