//! The timely endpoints of a formed cluster. timely's own `create_sockets`
//! retries a refused connection forever and prints its progress on
//! standard output (where `--alerts -` writes); here the members connect
//! with a deadline, prove on connecting that they belong to the same
//! formation (cluster, member sequence numbers, pipeline version), and the
//! connected sockets go to timely's `initialize_networking_from_sockets`.
//! As in timely, process `i` dials every lower index and accepts the higher
//! ones.

use std::any::Any;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use timely::communication::Hooks;
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};

use super::zk::ClusterError;
use crate::time::Clock;

/// First 8 bytes of the greeting: "DNSMCL01".
const MAGIC: u64 = u64::from_le_bytes(*b"DNSMCL01");
/// First 8 bytes of a running member's probe ([`probe`]): "DNSMPROB".
const PROBE: u64 = u64::from_le_bytes(*b"DNSMPROB");
/// Greeting: magic, formation hash, sender's process index (u64 LE each).
const GREETING: usize = 24;
/// What [`Endpoints::check_greeting`] says of a probe.
const PROBED: &str = "a running member's probe";
/// Pause between two attempts to reach a member not yet listening.
const DIAL_RETRY: Duration = Duration::from_millis(100);

/// Where this process stands in a formed cluster.
pub struct Endpoints {
    pub cluster: String,
    /// This process's index.
    pub index: usize,
    /// Every member's timely endpoint, by index.
    pub addresses: Vec<String>,
    /// Bound before registering, at this member's address.
    pub listener: TcpListener,
    /// The formation hash every member must greet with.
    pub handshake: u64,
    /// Deadline for all connections.
    pub timeout: Duration,
    /// The sockets once [`Endpoints::connect_now`] connected them.
    pub connected: Mutex<Option<Vec<Option<TcpStream>>>>,
}

/// Whether a member's endpoint at `address` accepts a connection within
/// `timeout`: a running member asks before it re-forms to take a new
/// member in. The probe says what it is, so the member drops it quietly
/// when it accepts its connections.
pub fn probe(address: &str, timeout: Duration) -> bool {
    let Some(to) = address.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&to, timeout) else {
        return false;
    };
    let mut g = [0u8; GREETING];
    g[..8].copy_from_slice(&PROBE.to_le_bytes());
    let _ = s.write_all(&g);
    true
}

impl Endpoints {
    pub fn processes(&self) -> usize {
        self.addresses.len()
    }

    fn error(&self, message: String) -> ClusterError {
        ClusterError::Network {
            cluster: self.cluster.clone(),
            message,
        }
    }

    /// timely's communication for `threads` workers per process: connect
    /// to every other member (bounded), start the send/receive threads.
    pub fn communication(
        &self,
        threads: usize,
    ) -> Result<(Vec<AllocatorBuilder>, Box<dyn Any + Send>), ClusterError> {
        let connected = self.connected.lock().ok().and_then(|mut c| c.take());
        let sockets = match connected {
            Some(s) => s,
            None => self.connect()?,
        };
        let hooks = Hooks::default();
        let process =
            ProcessBuilder::new_typed_vector(threads, hooks.refill.clone(), hooks.spill.clone());
        let (builders, guard) =
            initialize_networking_from_sockets(process, sockets, self.index, threads, hooks)
                .map_err(|e| self.error(format!("cannot start the network threads: {e}")))?;
        Ok((
            builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
            Box::new(guard),
        ))
    }

    /// Connect to every other member now (bounded); [`Endpoints::communication`]
    /// then uses these sockets.
    pub fn connect_now(&self) -> Result<(), ClusterError> {
        let sockets = self.connect()?;
        if let Ok(mut c) = self.connected.lock() {
            *c = Some(sockets);
        }
        Ok(())
    }

    /// One socket per other process, by index (`None` at our own).
    pub fn connect(&self) -> Result<Vec<Option<TcpStream>>, ClusterError> {
        let deadline = Clock.now() + self.timeout;
        let mut sockets: Vec<Option<TcpStream>> = (0..self.processes()).map(|_| None).collect();
        for (i, slot) in sockets.iter_mut().enumerate().take(self.index) {
            *slot = Some(self.dial(i, deadline)?);
        }
        self.accept_all(&mut sockets, deadline)?;
        for s in sockets.iter().flatten() {
            s.set_read_timeout(None)
                .and_then(|()| s.set_nodelay(true))
                .map_err(|e| self.error(format!("socket setup: {e}")))?;
        }
        Ok(sockets)
    }

    fn greeting(&self) -> [u8; GREETING] {
        let mut g = [0u8; GREETING];
        g[..8].copy_from_slice(&MAGIC.to_le_bytes());
        g[8..16].copy_from_slice(&self.handshake.to_le_bytes());
        g[16..].copy_from_slice(&(self.index as u64).to_le_bytes());
        g
    }

    /// The index a greeting comes from, if it is one of this formation.
    fn check_greeting(&self, g: &[u8; GREETING]) -> Result<usize, String> {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&g[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        if word(0) == PROBE {
            return Err(PROBED.into());
        }
        if word(0) != MAGIC {
            return Err("not a dnsmonitor cluster member".into());
        }
        if word(1) != self.handshake {
            return Err("a member of another formation (other members or pipeline)".into());
        }
        let index = word(2);
        if index >= self.processes() as u64 || index == self.index as u64 {
            return Err(format!("claims process index {index}"));
        }
        Ok(index as usize)
    }

    /// Dial process `i` until it answers our greeting with its own.
    fn dial(&self, i: usize, deadline: Instant) -> Result<TcpStream, ClusterError> {
        let address = &self.addresses[i];
        let clock = Clock;
        let mut last = String::from("no attempt");
        loop {
            let now = clock.now();
            if now >= deadline {
                return Err(self.error(format!(
                    "process {i} at {address} did not answer within {} s: {last}",
                    self.timeout.as_secs()
                )));
            }
            match self.try_dial(i, address, deadline - now) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
            clock.sleep(DIAL_RETRY.min(deadline.saturating_duration_since(clock.now())));
        }
    }

    fn try_dial(&self, i: usize, address: &str, left: Duration) -> Result<TcpStream, String> {
        let to = address
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve: {e}"))?
            .next()
            .ok_or("resolves to no address")?;
        let mut s = TcpStream::connect_timeout(&to, left).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .and_then(|()| s.write_all(&self.greeting()))
            .map_err(|e| e.to_string())?;
        let mut g = [0u8; GREETING];
        s.read_exact(&mut g)
            .map_err(|e| format!("no greeting: {e}"))?;
        match self.check_greeting(&g) {
            Ok(j) if j == i => Ok(s),
            Ok(j) => Err(format!("answered as process {j}")),
            Err(e) => Err(e),
        }
    }

    /// Accept every higher index; strangers are dropped and logged.
    fn accept_all(
        &self,
        sockets: &mut [Option<TcpStream>],
        deadline: Instant,
    ) -> Result<(), ClusterError> {
        let clock = Clock;
        self.listener
            .set_nonblocking(true)
            .map_err(|e| self.error(format!("listener: {e}")))?;
        while sockets[self.index + 1..].iter().any(Option::is_none) {
            let now = clock.now();
            if now >= deadline {
                let missing: Vec<String> = (self.index + 1..self.processes())
                    .filter(|&j| sockets[j].is_none())
                    .map(|j| format!("{j} ({})", self.addresses[j]))
                    .collect();
                return Err(self.error(format!(
                    "process(es) {} did not connect within {} s",
                    missing.join(", "),
                    self.timeout.as_secs()
                )));
            }
            match self.listener.accept() {
                Ok((mut s, peer)) => {
                    let r = s
                        .set_nonblocking(false)
                        .and_then(|()| s.set_read_timeout(Some(deadline - now)))
                        .map_err(|e| e.to_string())
                        .and_then(|()| {
                            let mut g = [0u8; GREETING];
                            s.read_exact(&mut g)
                                .map_err(|e| format!("no greeting: {e}"))?;
                            self.check_greeting(&g)
                        })
                        .and_then(|j| {
                            if j <= self.index || sockets[j].is_some() {
                                return Err(format!("unexpected process {j}"));
                            }
                            s.write_all(&self.greeting()).map_err(|e| e.to_string())?;
                            Ok(j)
                        });
                    match r {
                        Ok(j) => sockets[j] = Some(s),
                        Err(why) if why == PROBED => {}
                        Err(why) => {
                            tracing::warn!(%peer, %why, "refused a connection to the timely endpoint")
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    clock.sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(self.error(format!("accept: {e}"))),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(index: usize, addresses: Vec<String>, listener: TcpListener, h: u64) -> Endpoints {
        Endpoints {
            cluster: "t".into(),
            index,
            addresses,
            listener,
            handshake: h,
            timeout: Duration::from_secs(5),
            connected: Default::default(),
        }
    }

    #[test]
    fn three_processes_connect_in_any_start_order() {
        let ls: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<String> = ls
            .iter()
            .map(|l| l.local_addr().unwrap().to_string())
            .collect();
        let handles: Vec<_> = ls
            .into_iter()
            .enumerate()
            .rev()
            .map(|(i, l)| {
                let e = endpoints(i, addrs.clone(), l, 7);
                std::thread::spawn(move || {
                    e.connect()
                        .map(|s| s.iter().filter(|s| s.is_some()).count())
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), 2);
        }
    }

    #[test]
    fn a_probe_is_dropped_quietly_and_the_members_connect() {
        let ls: Vec<TcpListener> = (0..2)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<String> = ls
            .iter()
            .map(|l| l.local_addr().unwrap().to_string())
            .collect();
        // A running member probes process 1 before it listens for the others.
        assert!(probe(&addrs[1], Duration::from_secs(1)));
        assert!(!probe("127.0.0.1:1", Duration::from_secs(1)));
        let handles: Vec<_> = ls
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let e = endpoints(i, addrs.clone(), l, 9);
                std::thread::spawn(move || e.connect_now().map(|()| e))
            })
            .collect();
        for h in handles {
            let e = h.join().unwrap().unwrap();
            let sockets = e.connected.lock().unwrap().take().unwrap();
            assert_eq!(sockets.iter().filter(|s| s.is_some()).count(), 1);
        }
    }

    #[test]
    fn another_formation_is_refused_and_the_wait_is_bounded() {
        let l0 = TcpListener::bind("127.0.0.1:0").unwrap();
        let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = vec![
            l0.local_addr().unwrap().to_string(),
            l1.local_addr().unwrap().to_string(),
        ];
        let mut e0 = endpoints(0, addrs.clone(), l0, 1);
        let mut e1 = endpoints(1, addrs, l1, 2);
        e0.timeout = Duration::from_millis(800);
        e1.timeout = Duration::from_millis(800);
        let t = std::thread::spawn(move || e0.connect().map(|_| ()));
        let err = e1.connect().unwrap_err().to_string();
        assert!(err.contains("did not answer"), "{err}");
        let err = t.join().unwrap().unwrap_err().to_string();
        assert!(err.contains("did not connect"), "{err}");
    }
}
