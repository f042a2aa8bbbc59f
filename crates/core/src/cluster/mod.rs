//! A cluster of dnsmonitor processes that find each other through
//! ZooKeeper. This room owns everything about membership; the dataflow only
//! receives a formed cluster ([`Formed`]) and asks it for timely's
//! communication ([`Formed::communication`]).
//!
//! ```text
//! /dnsmonitor/<cluster>/members/m-0000000007   ephemeral sequential, JSON MemberInfo
//! /dnsmonitor/<cluster>/formation              JSON Formation: the formation in force
//! /dnsmonitor/<cluster>/config                 JSON PushedConfig (version N), see store.rs
//! /dnsmonitor/<cluster>/config/v<N>/...        the pushed pipeline and blocklist chunks
//! /dnsmonitor/<cluster>/time/m-0000000007      ephemeral, JSON InputTime (consume), see event_time.rs
//! ```
//!
//! - `zk.rs`: the ZooKeeper session (own tokio runtime), paths, errors.
//! - `form.rs`: registration, the formation (decided by one member,
//!   followed by all), standby, the member's state in its znode, the watch
//!   that notices a member loss (or a new member while below N).
//! - `reform.rs`: what a member carries over the re-exec with which it
//!   re-forms, and the exec itself.
//! - `net.rs`: the timely endpoints: our own sockets (deadline, handshake)
//!   handed to timely's `initialize_networking_from_sockets`.
//! - `store.rs`: `cluster push` (pipeline + chunked blocklists, versioned)
//!   and `cluster status`, and loading a pushed version.
//! - `event_time.rs`: a clustered `consume`'s members tell each other their
//!   sensors' event time and ends, so they keep one watermark and one end
//!   of stream (`/dnsmonitor/<cluster>/time/<member>`).
//!
//! ZooKeeper only coordinates; the exchanged state travels over timely's
//! own connections. Must not: touch outputs or the dataflow's operators.

pub mod event_time;
pub mod form;
pub mod net;
pub mod reform;
pub mod spec;
pub mod store;
pub mod zk;

use std::time::Duration;

pub use form::{Formed, MemberInfo, MemberState, Membership};
pub use zk::{ClusterError, ZkTarget};

/// Default: how long to wait for ZooKeeper to answer (connect, each call).
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Default: how long to wait for all `--processes` members (and for their
/// timely endpoints to connect).
pub const DEFAULT_FORM_TIMEOUT_SECS: u64 = 60;
/// Default ZooKeeper session timeout: a killed member's znode disappears
/// about this long after it died.
pub const DEFAULT_SESSION_TIMEOUT_SECS: u64 = 6;
/// Default: how long a member that is ready for a version pushed with
/// `--at` waits for the other members' answers before it answers for
/// those still silent ("refused") and so every member refuses it.
pub const DEFAULT_READY_TIMEOUT_SECS: u64 = 30;
/// Ceiling of `--processes`.
pub const MAX_PROCESSES: usize = 1024;

/// What a member needs to join a cluster (flags, else the pipeline's
/// `[cluster]` table).
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// `host:port[,host:port...][/chroot]`.
    pub zookeeper: String,
    pub name: String,
    /// The size the cluster forms at.
    pub processes: usize,
    /// This member's timely endpoint: bound here and told to the others
    /// (port 0: a free port is chosen and that one is told).
    pub advertise: String,
    pub connect_timeout: Duration,
    pub form_timeout: Duration,
    pub session_timeout: Duration,
    /// `cluster push --at`: the wait for every member's answer.
    pub ready_timeout: Duration,
}

/// A cluster name is one znode name: letters, digits, `-`, `_`, `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cluster name `{}` must be 1 to 64 letters, digits, `-`, `_` or `.`",
            name.escape_default()
        ))
    }
}

/// The version of a pipeline as members compare it: FNV-1a 64 over the
/// pipeline text and each extra blocklist's bytes (in order), as 16 hex
/// digits. Push stores it beside the version number.
pub fn fingerprint(pipeline: &[u8], blocklists: &[Vec<u8>]) -> String {
    let mut h = crate::sketch::Fnv1a::default();
    let mut feed = |bytes: &[u8]| {
        // Length first, so ("ab", "c") and ("a", "bc") differ.
        h.write(&(bytes.len() as u64).to_le_bytes());
        h.write(bytes);
    };
    feed(pipeline);
    for l in blocklists {
        feed(l);
    }
    format!("{:016x}", h.finish())
}

/// The pipeline version members compare: [`fingerprint`] of the pipeline
/// as TOML without its `[cluster]` table (re-serialised, so comments and
/// layout do not count) and of the extra blocklists.
pub fn pipeline_version(pipeline: &[u8], blocklists: &[Vec<u8>]) -> String {
    let normal = std::str::from_utf8(pipeline)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .map(|mut t| {
            t.remove("cluster");
            t.to_string()
        });
    match normal {
        Some(n) => fingerprint(n.as_bytes(), blocklists),
        None => fingerprint(pipeline, blocklists),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_znode() {
        assert!(check_name("east-1_a.b").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprint_sees_every_byte_and_boundary() {
        let a = fingerprint(b"x", &[b"ab".to_vec(), b"c".to_vec()]);
        let b = fingerprint(b"x", &[b"a".to_vec(), b"bc".to_vec()]);
        let c = fingerprint(b"y", &[b"ab".to_vec(), b"c".to_vec()]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, fingerprint(b"x", &[b"ab".to_vec(), b"c".to_vec()]));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn pipeline_version_ignores_layout_and_the_cluster_table() {
        let a = pipeline_version(b"[window]\nsize_secs = 10\n", &[]);
        let b = pipeline_version(
            b"# comment\n[window]\nsize_secs   = 10\n[cluster]\nadvertise = \"h:1\"\n",
            &[],
        );
        let c = pipeline_version(b"[window]\nsize_secs = 20\n", &[]);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
