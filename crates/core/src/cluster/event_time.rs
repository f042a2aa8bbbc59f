//! Event time of a single-input cluster (`consume`) made one: each member
//! tells the others how far its sensors' time stands, and which sensors it
//! saw and saw end, so the members keep one watermark and one end of
//! stream, as one process would over all the sensors.
//!
//! ```text
//! /dnsmonitor/<c>/time/<member>   ephemeral, JSON InputTime: this member's input
//! ```
//!
//! A member writes its node when its view changed (at most every
//! [`EXCHANGE_EVERY`]) and reads the other formation members' nodes as
//! often. The dataflow's reader never waits for ZooKeeper: it hands its
//! own view to [`EventTime::set_own`] and combines it with the others' last
//! known views ([`watermark`], [`may_end`]).
//!
//! The rules are one process's (`amqp::source`): the watermark is the
//! slowest active sensor, else (every sensor idle or ended) the furthest
//! idle one, which follows the clock; here over the sensors of every
//! member. So a member that receives nothing, or whose sensors all went
//! idle while they are active at another member, follows the others
//! instead of holding every window open. `--exit-on-eos`: the run ends
//! once every sensor seen by any member ended at some member, and every
//! member sees it so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zookeeper_client as zkc;

use super::zk::{ClusterError, Zk, cluster_path};
use crate::time::Clock;

/// How often a member writes its view (when it changed) and reads the
/// others'.
pub const EXCHANGE_EVERY: Duration = Duration::from_millis(250);

/// One member's input as the others see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTime {
    /// The slowest active sensor's newest packet (µs); `None`: no active
    /// sensor here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_us: Option<i64>,
    /// The furthest idle sensor's time (its newest packet plus its
    /// silence) or ended sensor's newest packet; `None`: none here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_us: Option<i64>,
    /// `--exit-on-eos`: sensors seen here that did not end here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open: Vec<String>,
    /// `--exit-on-eos`: sensors that sent their end-of-stream batch here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended: Vec<String>,
    /// `--exit-on-eos`: this member finds that every sensor seen anywhere
    /// ended ([`all_ended`] over its view).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sees_end: bool,
    /// `--exit-on-eos`: this member's input ended; the end is decided
    /// then, and every other member ends its input too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub input_ended: bool,
}

/// The cluster's watermark from this member's own view and the others'
/// last known ones: the slowest active sensor anywhere, else the furthest
/// idle or ended one; `None` while no member has seen a sensor. Once every
/// sensor ended ([`all_ended`], `--exit-on-eos`) the furthest of all: a
/// member whose share of a sensor's batches was older still counts it
/// active until its idle timeout, but the sensor ended at another member,
/// and one process would close every window up to its last packet.
pub fn watermark(own: &InputTime, peers: &[InputTime]) -> Option<i64> {
    let all = || std::iter::once(own).chain(peers);
    let active = all().filter_map(|t| t.active_us).min();
    let idle = all().filter_map(|t| t.idle_us).max();
    if all_ended(own, peers) {
        return active.max(idle);
    }
    active.or(idle)
}

/// Every sensor seen by any member ended at some member (and one was
/// seen).
pub fn all_ended(own: &InputTime, peers: &[InputTime]) -> bool {
    let all = || std::iter::once(own).chain(peers);
    let ended: std::collections::HashSet<&str> = all()
        .flat_map(|t| t.ended.iter().map(String::as_str))
        .collect();
    !ended.is_empty()
        && all()
            .flat_map(|t| &t.open)
            .all(|s| ended.contains(s.as_str()))
}

/// `--exit-on-eos`: this member may end its input: it sees the end
/// ([`all_ended`]) and so does every other member of the formation
/// (`members - 1` peers heard, all `sees_end`). A member that has not been
/// heard from holds the end. Once a member's input ended
/// (`input_ended`) the end is decided: the others end too, as one process
/// ends at its last end of stream even if a new sensor's first batch is
/// already on its way (what was not read stays in the queue). Without
/// that, a member that ended on a view one exchange old could leave the
/// others waiting for a sensor whose batches it was delivered and no
/// longer reads.
pub fn may_end(own: &InputTime, peers: &[InputTime], members: usize) -> bool {
    let decided = peers.iter().any(|p| p.input_ended);
    decided
        || (all_ended(own, peers) && peers.len() + 1 >= members && peers.iter().all(|p| p.sees_end))
}

/// `/dnsmonitor/<cluster>/time`.
pub fn time_path(cluster: &str) -> String {
    format!("{}/time", cluster_path(cluster))
}

/// What the reader and the exchange thread share.
#[derive(Debug, Default)]
struct Views {
    own: InputTime,
    /// The other formation members' last views, in no order.
    peers: Vec<InputTime>,
}

/// This member's side of the exchange: the reader sets its own view and
/// reads the combination; a thread writes and reads ZooKeeper.
#[derive(Debug)]
pub struct EventTime {
    views: Mutex<Views>,
    /// Formation members, this one included.
    members: usize,
}

impl EventTime {
    /// The reader's view of its own input (written out by the thread;
    /// `sees_end` is set here): the cluster's watermark ([`watermark`])
    /// and whether this member may end its input ([`may_end`]).
    pub fn update(&self, mut own: InputTime) -> (Option<i64>, bool) {
        let mut v = self.views.lock().unwrap_or_else(|p| p.into_inner());
        own.sees_end = all_ended(&own, &v.peers);
        own.input_ended |= v.own.input_ended;
        let w = watermark(&own, &v.peers);
        let end = may_end(&own, &v.peers, self.members);
        v.own = own;
        (w, end)
    }

    /// This member's input ended (`--exit-on-eos`): the others are told.
    pub fn end(&self) {
        self.views
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .own
            .input_ended = true;
    }

    /// Start exchanging: `members` are the formation's member znode
    /// names, `me` this member's; until `done`. Errors are logged and the
    /// exchange tries again (the others then follow an older view: never
    /// further than they would alone).
    pub fn start(
        zk: Arc<Zk>,
        cluster: &str,
        me: &str,
        members: Vec<String>,
        done: Arc<AtomicBool>,
    ) -> Arc<EventTime> {
        let me_too = members.iter().any(|m| m == me);
        let shared = Arc::new(EventTime {
            views: Mutex::default(),
            members: members.len() + usize::from(!me_too),
        });
        let dir = time_path(cluster);
        let mine = format!("{dir}/{me}");
        let others: Vec<String> = members
            .into_iter()
            .filter(|m| m != me)
            .map(|m| format!("{dir}/{m}"))
            .collect();
        let view = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("cluster-time".into())
            .spawn(move || {
                let mut written: Option<InputTime> = None;
                let mut known: Vec<Option<InputTime>> = vec![None; others.len()];
                while !done.load(Ordering::Acquire) {
                    let own = view
                        .views
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .own
                        .clone();
                    if written.as_ref() != Some(&own) {
                        match write(&zk, &dir, &mine, &own, written.is_none()) {
                            Ok(()) => written = Some(own),
                            Err(e) => {
                                tracing::debug!(error = %e, "writing this member's event time")
                            }
                        }
                    }
                    // A view that cannot be read now (ZooKeeper restarting)
                    // stays the last one read: dropping it would let this
                    // member run ahead of that member's sensors.
                    for (p, last) in others.iter().zip(known.iter_mut()) {
                        match zk.call("get", p, zk.client.get_data(p)) {
                            Ok((data, _)) => match serde_json::from_slice(&data) {
                                Ok(t) => *last = Some(t),
                                Err(e) => {
                                    tracing::debug!(error = %e, path = %p, "a member's event time")
                                }
                            },
                            Err(ClusterError::Call {
                                source: zkc::Error::NoNode,
                                ..
                            }) => *last = None,
                            Err(e) => tracing::debug!(error = %e, "reading a member's event time"),
                        }
                    }
                    view.views.lock().unwrap_or_else(|p| p.into_inner()).peers =
                        known.iter().flatten().cloned().collect();
                    Clock.sleep(EXCHANGE_EVERY);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot exchange event time with the other members");
        }
        shared
    }
}

/// Write this member's view: created (ephemeral) the first time.
fn write(zk: &Zk, dir: &str, path: &str, own: &InputTime, first: bool) -> Result<(), ClusterError> {
    let data = serde_json::to_vec(own).expect("input time serialises");
    if first {
        zk.mkdir(dir)?;
        let opts = zkc::CreateMode::Ephemeral.with_acls(zkc::Acls::anyone_all());
        match zk.call("create", path, zk.client.create(path, &data, &opts)) {
            Ok(_) => return Ok(()),
            Err(ClusterError::Call {
                source: zkc::Error::NodeExists,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    zk.call("set", path, zk.client.set_data(path, &data, None))
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(active: Option<i64>, idle: Option<i64>) -> InputTime {
        InputTime {
            active_us: active,
            idle_us: idle,
            ..InputTime::default()
        }
    }

    #[test]
    fn a_member_without_sensors_follows_the_others() {
        let nothing = InputTime::default();
        assert_eq!(
            watermark(&nothing, &[]),
            None,
            "alone: hold, as one process"
        );
        assert_eq!(watermark(&nothing, &[t(Some(100), None)]), Some(100));
        assert_eq!(watermark(&nothing, &[t(None, Some(150))]), Some(150));
        // An active sensor anywhere holds the idle ones everywhere.
        assert_eq!(
            watermark(
                &t(None, Some(500)),
                &[t(Some(100), None), t(Some(90), Some(1))]
            ),
            Some(90)
        );
        assert_eq!(
            watermark(&t(Some(80), None), &[t(None, Some(500))]),
            Some(80)
        );
        // Every sensor idle: the furthest.
        assert_eq!(watermark(&t(None, Some(5)), &[t(None, Some(7))]), Some(7));
        // Every sensor ended (at some member): the furthest, active or not.
        let mut here = t(Some(90), None);
        here.open = vec!["s".into()];
        let mut there = t(None, Some(100));
        there.ended = vec!["s".into()];
        assert_eq!(watermark(&here, &[there]), Some(100));
    }

    #[test]
    fn the_end_is_every_sensor_seen_anywhere_ended_somewhere_and_seen_by_all() {
        let v = |open: &[&str], ended: &[&str], sees: bool| InputTime {
            open: open.iter().map(|s| s.to_string()).collect(),
            ended: ended.iter().map(|s| s.to_string()).collect(),
            sees_end: sees,
            ..InputTime::default()
        };
        assert!(!all_ended(&v(&[], &[], false), &[]), "nothing seen");
        assert!(!all_ended(&v(&[], &[], false), &[v(&[], &[], false)]));
        // s1 ended at the other member; s1 was seen here too.
        assert!(all_ended(
            &v(&["s1"], &[], false),
            &[v(&[], &["s1"], false)]
        ));
        // s2 is open at the other member.
        assert!(!all_ended(
            &v(&["s1"], &[], false),
            &[v(&["s2"], &["s1"], false)]
        ));
        // A member that saw nothing ends with the others.
        assert!(all_ended(&v(&[], &[], false), &[v(&[], &["s1"], false)]));
        // Ending needs every member to see it.
        let own = v(&[], &["s1"], true);
        assert!(!may_end(&own, &[v(&["s1"], &[], false)], 2));
        assert!(may_end(&own, &[v(&["s1"], &[], true)], 2));
        assert!(!may_end(&own, &[], 2), "a member not heard from holds it");
        // A member that ended decides it for the others, whatever they see.
        let mut gone = v(&[], &["s1"], true);
        gone.input_ended = true;
        assert!(may_end(&v(&["s2"], &[], false), &[gone], 2));
    }
}
