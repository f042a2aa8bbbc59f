//! Live capture from a network interface (libpcap via the `pcap` crate).
//!
//! The capture is opened in immediate mode (each packet is handed over as
//! soon as it arrives, no batching delay) and non-blocking: a blocking
//! libpcap read never returns on an idle interface, even with a read
//! timeout, which would stop the idle watermark and shutdown. Instead
//! [`LiveCapture::poll_packets`] waits with poll(2) on the capture's file
//! descriptor for at most the given timeout and then drains what is there
//! without blocking.
//!
//! Errors name the interface; a permission failure says how to run without
//! full root (see docs/live-capture.md).

use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;

use crate::time::Clock;

/// Defaults of [`LiveOptions`].
pub const DEFAULT_SNAPLEN: i32 = 65535;
/// 16 MiB: about 4 s of a 10 k packet/s DNS stream at full snaplen frames
/// in the kernel ring before anything is dropped.
pub const DEFAULT_BUFFER_SIZE: i32 = 16 * 1024 * 1024;

/// The capture's libpcap read timeout. Irrelevant in immediate,
/// non-blocking mode (poll(2) does the waiting) but set to something short
/// in case a libpcap build ignores immediate mode.
const PCAP_TIMEOUT_MS: i32 = 100;

#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Interface name as `ip link` shows it (`eth0`, `lo`, `any`).
    pub interface: String,
    /// BPF filter (tcpdump syntax); empty captures everything.
    pub filter: String,
    /// Bytes kept of each packet (default 65535: DNS over TCP and EDNS
    /// answers need whole packets).
    pub snaplen: i32,
    /// Kernel capture buffer in bytes (default 16 MiB).
    pub buffer_size: i32,
    /// Put the interface in promiscuous mode (default false: a DNS server
    /// or resolver sees its own traffic without it).
    pub promisc: bool,
}

impl LiveOptions {
    /// Options for `interface` with the default filter for port 53 and
    /// default sizes.
    pub fn new(interface: impl Into<String>) -> Self {
        LiveOptions {
            interface: interface.into(),
            filter: default_filter(&[53]),
            snaplen: DEFAULT_SNAPLEN,
            buffer_size: DEFAULT_BUFFER_SIZE,
            promisc: false,
        }
    }
}

#[derive(Debug, Error)]
pub enum LiveError {
    #[error(
        "no permission to capture on `{interface}` ({message}): run dnsmonitor as root, \
         or grant the binary the capabilities: `setcap cap_net_raw,cap_net_admin=eip {exe}`, \
         or under systemd set `AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN` \
         (see deploy/systemd/dnsmonitor.service)"
    )]
    Permission {
        interface: String,
        message: String,
        /// Path of the running binary (for the setcap command).
        exe: String,
    },
    #[error(
        "no such network interface `{interface}` ({message}); list the interfaces with `ip link`"
    )]
    NoSuchDevice { interface: String, message: String },
    #[error(
        "interface `{interface}` is down ({message}); bring it up with `ip link set {interface} up`"
    )]
    NotUp { interface: String, message: String },
    #[error("invalid capture filter `{filter}` for `{interface}`: {message}")]
    Filter {
        interface: String,
        filter: String,
        message: String,
    },
    #[error("cannot open a capture on `{interface}`: {message}")]
    Open { interface: String, message: String },
    #[error("capture on `{interface}` stopped: the interface went down or away ({message})")]
    Down { interface: String, message: String },
    #[error("reading the capture on `{interface}` failed: {message}")]
    Read { interface: String, message: String },
    #[error("waiting for packets on `{interface}` failed: {source}")]
    Poll {
        interface: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the capture counters of `{interface}` failed: {message}")]
    Stats { interface: String, message: String },
}

/// Capture counters since the capture was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets that passed the filter (on Linux including the dropped ones).
    pub received: u64,
    /// Packets that passed the filter but found the kernel buffer full
    /// (the reader was too slow, or `buffer_size` too small).
    pub dropped_kernel: u64,
    /// Packets the interface or its driver dropped (all traffic, not only
    /// the filtered; not every driver reports it).
    pub dropped_interface: u64,
}

/// Turns libpcap's u32 counters (which wrap) into u64 totals: each reading
/// adds the wrapped difference to the previous one. Correct as long as a
/// counter moves by less than 2^32 between two readings.
#[derive(Clone, Copy, Debug, Default)]
struct WrapCounters {
    last: [u32; 3],
    total: CaptureStats,
}

impl WrapCounters {
    fn update(&mut self, received: u32, dropped: u32, if_dropped: u32) -> CaptureStats {
        let now = [received, dropped, if_dropped];
        let d = |i: usize| u64::from(now[i].wrapping_sub(self.last[i]));
        self.total.received += d(0);
        self.total.dropped_kernel += d(1);
        self.total.dropped_interface += d(2);
        self.last = now;
        self.total
    }
}

pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    interface: String,
    linktype: i32,
    counters: WrapCounters,
}

impl LiveCapture {
    /// Open `opts.interface` in immediate, non-blocking mode with the
    /// filter applied. Once this returns, every matching packet is captured.
    pub fn open(opts: &LiveOptions) -> Result<Self, LiveError> {
        let iface = opts.interface.as_str();
        let inactive = pcap::Capture::from_device(pcap::Device::from(iface))
            .map_err(|e| classify(e, iface))?;
        let active = inactive
            .snaplen(opts.snaplen)
            .buffer_size(opts.buffer_size)
            .promisc(opts.promisc)
            .immediate_mode(true)
            .timeout(PCAP_TIMEOUT_MS)
            .open()
            .map_err(|e| classify(e, iface))?;
        let mut cap = active.setnonblock().map_err(|e| LiveError::Open {
            interface: iface.to_string(),
            message: format!("cannot make the capture non-blocking: {e}"),
        })?;
        if !opts.filter.trim().is_empty() {
            cap.filter(&opts.filter, true)
                .map_err(|e| LiveError::Filter {
                    interface: iface.to_string(),
                    filter: opts.filter.clone(),
                    message: pcap_message(&e),
                })?;
        }
        let linktype = cap.get_datalink().0;
        Ok(LiveCapture {
            cap,
            interface: iface.to_string(),
            linktype,
            counters: WrapCounters::default(),
        })
    }

    /// The link type of the frames (1 = Ethernet, also on `lo`; 276 =
    /// Linux SLL2 on `any`).
    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// The interface name the capture was opened on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Wait at most `timeout` for packets (poll(2) on the capture fd), then
    /// read up to `max` packets without blocking; calls
    /// `f(ts_us, data, orig_len)` for each (`data` is the captured part,
    /// `orig_len` the length on the wire). Returns how many were read (0 on
    /// timeout, or when a signal interrupted the wait). Never blocks longer
    /// than `timeout` (rounded down to milliseconds), also on an idle
    /// interface.
    pub fn poll_packets(
        &mut self,
        timeout: Duration,
        max: usize,
        mut f: impl FnMut(i64, &[u8], u32),
    ) -> Result<usize, LiveError> {
        if max == 0 {
            return Ok(0);
        }
        let mut pfd = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd, count 1.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(LiveError::Poll {
                interface: self.interface.clone(),
                source: err,
            });
        }
        if ready == 0 {
            return Ok(0);
        }
        let mut read = 0usize;
        while read < max {
            let got = self
                .cap
                .dispatch(Some(max - read), |p| {
                    let ts_us = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
                    f(ts_us, p.data, p.header.len);
                })
                .map_err(|e| self.read_error(&e))?;
            if got == 0 {
                break;
            }
            read += got;
        }
        // In non-blocking mode libpcap does not look at socket errors
        // itself; an interface that went down or was removed shows up as
        // POLLERR/POLLHUP with nothing to read. Report it instead of
        // spinning on a descriptor that is always "ready".
        if read == 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Err(LiveError::Down {
                interface: self.interface.clone(),
                message: socket_error(pfd.fd, pfd.revents),
            });
        }
        Ok(read)
    }

    /// Kernel/interface counters (pcap_stats) since the capture was
    /// opened, as u64 that survive the u32 wrap of libpcap's counters
    /// (call it at least once per 2^32 packets, e.g. once a second).
    pub fn stats(&mut self) -> Result<CaptureStats, LiveError> {
        let s = self.cap.stats().map_err(|e| LiveError::Stats {
            interface: self.interface.clone(),
            message: pcap_message(&e),
        })?;
        Ok(self.counters.update(s.received, s.dropped, s.if_dropped))
    }

    fn read_error(&self, e: &pcap::Error) -> LiveError {
        let message = pcap_message(e);
        let lower = message.to_ascii_lowercase();
        if lower.contains("went down")
            || lower.contains("disappeared")
            || lower.contains("network is down")
        {
            LiveError::Down {
                interface: self.interface.clone(),
                message,
            }
        } else {
            LiveError::Read {
                interface: self.interface.clone(),
                message,
            }
        }
    }
}

/// libpcap's own message, without the crate's "libpcap error: " prefix.
fn pcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The pending error of the capture socket (SO_ERROR), for a poll that
/// reported POLLERR/POLLHUP.
fn socket_error(fd: i32, revents: i16) -> String {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 && err != 0 {
        std::io::Error::from_raw_os_error(err).to_string()
    } else if revents & libc::POLLNVAL != 0 {
        "the capture descriptor is no longer valid".to_string()
    } else if revents & libc::POLLHUP != 0 {
        "hangup on the capture socket".to_string()
    } else {
        "error condition on the capture socket".to_string()
    }
}

/// Map an error from creating or activating a capture to a [`LiveError`]
/// that names the interface, recognising libpcap's messages (1.10) for a
/// missing interface and for missing privileges.
fn classify(err: pcap::Error, iface: &str) -> LiveError {
    let message = pcap_message(&err);
    let lower = message.to_ascii_lowercase();
    let interface = iface.to_string();
    if lower.contains("operation not permitted")
        || lower.contains("permission")
        || lower.contains("cap_net_raw")
    {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "/path/to/dnsmonitor".to_string());
        LiveError::Permission {
            interface,
            message,
            exe,
        }
    } else if lower.contains("no such device") {
        LiveError::NoSuchDevice { interface, message }
    } else if lower.contains("not up") {
        LiveError::NotUp { interface, message }
    } else {
        LiveError::Open { interface, message }
    }
}

/// The default BPF filter for a set of DNS ports: DNS over UDP and TCP on
/// any of them, plus IP fragments. Fragments need their own terms: only
/// the first IPv4 fragment carries the UDP header that `port` matches, and
/// libpcap's `udp` does not look past an IPv6 fragment header; without them
/// a fragmented (large EDNS) answer would never be reassembled.
///
/// - one port: `udp port 53 or tcp port 53 or (ip[6:2] & 0x1fff != 0) or ip6[6] == 44`
/// - several: `((udp or tcp) and (port 53 or port 5353)) or (ip[6:2] & 0x1fff != 0) or ip6[6] == 44`
///
/// Ports are sorted and deduplicated; no ports means port 53.
pub fn default_filter(ports: &[u16]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() {
        ports.push(53);
    }
    let dns = if let [p] = ports[..] {
        format!("udp port {p} or tcp port {p}")
    } else {
        let alts: Vec<String> = ports.iter().map(|p| format!("port {p}")).collect();
        format!("((udp or tcp) and ({}))", alts.join(" or "))
    };
    format!("{dns} or {FRAGMENTS_FILTER}")
}

/// Non-first IPv4 fragments and IPv6 packets whose first extension header
/// is a fragment header.
const FRAGMENTS_FILTER: &str = "(ip[6:2] & 0x1fff != 0) or ip6[6] == 44";

static STOP: Mutex<Option<Arc<AtomicBool>>> = Mutex::new(None);

/// A second SIGINT/SIGTERM sooner than this after the first is the same
/// stop sent twice, not a request to exit at once: `timeout` signals the
/// command and then its whole process group, so the command gets it twice.
pub const SECOND_SIGNAL_AFTER: Duration = Duration::from_secs(1);

/// SIGINT/SIGTERM set a shared flag, installed once: later calls return the
/// same flag. Signals are taken by a thread (signal-hook's iterator), so
/// they work also where the shell started the process with SIGINT ignored
/// (a background job). A further SIGINT or SIGTERM at least
/// [`SECOND_SIGNAL_AFTER`] after the first exits at once (status 130 or
/// 143), so a stuck shutdown can still be interrupted.
pub fn install_stop_signals() -> std::io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut guard = STOP.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(flag) = guard.as_ref() {
        return Ok(flag.clone());
    }
    let flag = Arc::new(AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let stop = flag.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let clock = Clock;
            let mut first = None;
            for sig in signals.forever() {
                match first {
                    None => {
                        first = Some(clock.now());
                        stop.store(true, Ordering::Relaxed);
                    }
                    Some(t) if clock.now().saturating_duration_since(t) >= SECOND_SIGNAL_AFTER => {
                        std::process::exit(128 + sig);
                    }
                    Some(_) => {}
                }
            }
        })?;
    *guard = Some(flag.clone());
    Ok(flag)
}

/// Whether SIGINT or SIGTERM arrived since [`install_stop_signals`]
/// (false when it was never called).
pub fn stop_requested() -> bool {
    STOP.lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_some_and(|f| f.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Clock;
    use std::net::UdpSocket;

    fn compiles(filter: &str) -> Result<(), pcap::Error> {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET)?;
        dead.compile(filter, true).map(|_| ())
    }

    fn lo(filter: &str) -> LiveOptions {
        LiveOptions {
            filter: filter.to_string(),
            buffer_size: 1 << 20,
            ..LiveOptions::new("lo")
        }
    }

    /// Whether this process may capture (root or CAP_NET_RAW); the tests
    /// that open `lo` say "skipped" and pass when it may not.
    fn may_capture() -> bool {
        match LiveCapture::open(&lo("")) {
            Err(LiveError::Permission { .. }) => {
                eprintln!("skipped: no permission to capture on lo");
                false
            }
            _ => true,
        }
    }

    /// A UDP socket bound to a free loopback port (kept bound so the port
    /// stays ours and datagrams to it are not answered with ICMP).
    fn free_udp() -> (UdpSocket, u16) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        (s, port)
    }

    #[test]
    fn default_filter_forms() {
        assert_eq!(
            default_filter(&[53]),
            "udp port 53 or tcp port 53 or (ip[6:2] & 0x1fff != 0) or ip6[6] == 44"
        );
        assert_eq!(default_filter(&[]), default_filter(&[53]));
        assert_eq!(default_filter(&[53, 53]), default_filter(&[53]));
        assert_eq!(
            default_filter(&[5353, 53]),
            "((udp or tcp) and (port 53 or port 5353)) or (ip[6:2] & 0x1fff != 0) or ip6[6] == 44"
        );
        for ports in [&[53u16][..], &[53, 5353], &[53, 853, 5353, 65535]] {
            let f = default_filter(ports);
            compiles(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn default_filter_matches_dns_and_fragments_only() {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let prog = dead.compile(&default_filter(&[53, 5353]), true).unwrap();
        let udp = |sport: u16, dport: u16, frag: u16| -> Vec<u8> {
            let mut f = vec![0u8; 14 + 20 + 8 + 12];
            f[12] = 0x08; // IPv4
            f[14] = 0x45;
            let total = (20 + 8 + 12) as u16;
            f[16..18].copy_from_slice(&total.to_be_bytes());
            f[20..22].copy_from_slice(&frag.to_be_bytes());
            f[22] = 64;
            f[23] = 17;
            f[26..30].copy_from_slice(&[127, 0, 0, 2]);
            f[30..34].copy_from_slice(&[127, 0, 0, 1]);
            f[34..36].copy_from_slice(&sport.to_be_bytes());
            f[36..38].copy_from_slice(&dport.to_be_bytes());
            f
        };
        assert!(prog.filter(&udp(40000, 53, 0)));
        assert!(prog.filter(&udp(5353, 40000, 0)));
        assert!(!prog.filter(&udp(40000, 54, 0)));
        // A non-first fragment (offset 185 * 8): no UDP header, still kept.
        assert!(prog.filter(&udp(1, 2, 185)));
        // First fragment (MF set, offset 0) of a non-DNS datagram: not kept.
        assert!(!prog.filter(&udp(40000, 54, 0x2000)));
    }

    #[test]
    fn missing_interface_names_it_and_suggests_ip_link() {
        if !may_capture() {
            return;
        }
        let err = LiveCapture::open(&LiveOptions::new("nosuchif0"))
            .err()
            .expect("must fail");
        assert!(matches!(err, LiveError::NoSuchDevice { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("`nosuchif0`"), "{msg}");
        assert!(msg.contains("ip link"), "{msg}");
    }

    #[test]
    fn bad_filter_names_it_with_libpcaps_message() {
        if !may_capture() {
            return;
        }
        let err = LiveCapture::open(&lo("udp prot 53"))
            .err()
            .expect("must fail");
        let msg = err.to_string();
        assert!(matches!(err, LiveError::Filter { .. }), "{err:?}");
        assert!(
            msg.starts_with("invalid capture filter `udp prot 53` for `lo`: "),
            "{msg}"
        );
        assert!(msg.contains("syntax error"), "{msg}");
        let err = LiveCapture::open(&lo("udp port 99999"))
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("99999"), "{err}");
    }

    #[test]
    fn permission_messages_say_how_to_fix() {
        for m in [
            "socket: Operation not permitted",
            "You don't have permission to capture on that device",
            "You don't have permission to perform this capture on that device",
            "Attempt to create packet socket failed - CAP_NET_RAW may be required",
            "socket: Permission denied",
        ] {
            let err = classify(pcap::Error::PcapError(m.to_string()), "eth7");
            assert!(matches!(err, LiveError::Permission { .. }), "{m}: {err:?}");
            let msg = err.to_string();
            assert!(
                msg.starts_with("no permission to capture on `eth7` ("),
                "{msg}"
            );
            assert!(msg.contains(m), "{msg}");
            assert!(msg.contains("run dnsmonitor as root"), "{msg}");
            assert!(
                msg.contains("`setcap cap_net_raw,cap_net_admin=eip /"),
                "{msg}"
            );
            assert!(
                msg.contains("`AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN`"),
                "{msg}"
            );
        }
        for m in ["No such device exists", "SIOCGIFINDEX: No such device"] {
            let err = classify(pcap::Error::PcapError(m.to_string()), "eth7");
            assert!(
                matches!(err, LiveError::NoSuchDevice { .. }),
                "{m}: {err:?}"
            );
        }
        let err = classify(
            pcap::Error::PcapError("That device is not up".into()),
            "eth7",
        );
        assert!(matches!(err, LiveError::NotUp { .. }), "{err:?}");
        let err = classify(pcap::Error::PcapError("something else".into()), "eth7");
        assert_eq!(
            err.to_string(),
            "cannot open a capture on `eth7`: something else"
        );
        let err = classify(pcap::Error::InvalidInputString, "a\0b");
        assert!(matches!(err, LiveError::Open { .. }), "{err:?}");
    }

    #[test]
    fn idle_interface_returns_after_the_timeout() {
        if !may_capture() {
            return;
        }
        let (_sock, port) = free_udp();
        let mut cap = LiveCapture::open(&lo(&format!("udp port {port}"))).unwrap();
        assert_eq!(cap.linktype(), 1);
        for timeout_ms in [0u64, 50, 300] {
            let t0 = Clock.now();
            let n = cap
                .poll_packets(Duration::from_millis(timeout_ms), 100, |_, _, _| {
                    panic!("no packet expected")
                })
                .unwrap();
            let took = t0.elapsed();
            assert_eq!(n, 0);
            assert!(
                took < Duration::from_millis(timeout_ms + 500),
                "{timeout_ms} ms: {took:?}"
            );
            assert!(
                took + Duration::from_millis(5) >= Duration::from_millis(timeout_ms),
                "{took:?}"
            );
        }
    }

    #[test]
    fn udp_datagrams_on_lo_are_captured_and_counted() {
        if !may_capture() {
            return;
        }
        let (rx, port) = free_udp();
        let mut cap = LiveCapture::open(&lo(&format!("udp port {port}"))).unwrap();
        assert_eq!(cap.linktype(), 1, "lo has Ethernet framing");
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sent = 7usize;
        for i in 0..sent {
            tx.send_to(format!("datagram {i:03}").as_bytes(), ("127.0.0.1", port))
                .unwrap();
        }
        let mut seen: Vec<(i64, Vec<u8>, u32)> = vec![];
        let deadline = Clock.now() + Duration::from_secs(5);
        while seen.len() < sent && Clock.now() < deadline {
            cap.poll_packets(Duration::from_millis(100), 3, |ts, data, len| {
                seen.push((ts, data.to_vec(), len))
            })
            .unwrap();
        }
        // Nothing more arrives (lo delivers each packet once).
        cap.poll_packets(Duration::from_millis(100), 100, |ts, data, len| {
            seen.push((ts, data.to_vec(), len))
        })
        .unwrap();
        assert_eq!(seen.len(), sent);
        let now_us = Clock.unix_micros();
        for (i, (ts, data, len)) in seen.iter().enumerate() {
            assert_eq!(data.len(), 14 + 20 + 8 + 12);
            assert_eq!(*len as usize, data.len());
            assert_eq!(&data[12..14], &[0x08, 0x00]);
            assert_eq!(u16::from_be_bytes([data[36], data[37]]), port);
            assert_eq!(&data[42..], format!("datagram {i:03}").as_bytes());
            assert!(
                (now_us - ts).abs() < 60_000_000,
                "timestamp {ts} vs now {now_us}"
            );
        }
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
        let stats = cap.stats().unwrap();
        assert!(stats.received >= sent as u64, "{stats:?}");
        assert_eq!(stats.dropped_kernel, 0, "{stats:?}");
        let mut buf = [0u8; 64];
        assert!(rx.recv(&mut buf).is_ok());
    }

    #[test]
    fn counters_survive_the_u32_wrap() {
        let mut w = WrapCounters::default();
        assert_eq!(w.update(10, 1, 0).received, 10);
        let s = w.update(u32::MAX - 5, 1, 2);
        assert_eq!(s.received, u64::from(u32::MAX) - 5);
        assert_eq!(s.dropped_interface, 2);
        // The counter wrapped: 11 more packets.
        let s = w.update(5, 3, 2);
        assert_eq!(s.received, u64::from(u32::MAX) + 6);
        assert_eq!(s.dropped_kernel, 3);
        let s = w.update(5, 3, 2);
        assert_eq!(s.received, u64::from(u32::MAX) + 6);
    }

    #[test]
    fn removed_interface_is_an_error_not_a_busy_loop() {
        // Needs CAP_NET_ADMIN to make a throwaway interface (no address, never
        // up); skipped otherwise.
        let name = format!("dnsmt{}", std::process::id() % 100_000);
        let ip = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        // A dummy interface, or a veth pair where the dummy driver is missing
        // (deleting one end of a pair deletes both).
        if !ip(&["link", "add", &name, "type", "dummy"])
            && !ip(&[
                "link",
                "add",
                &name,
                "type",
                "veth",
                "peer",
                "name",
                &format!("{name}p"),
            ])
        {
            eprintln!("skipped: cannot create a dummy or veth interface");
            return;
        }
        struct Del<'a>(&'a str);
        impl Drop for Del<'_> {
            fn drop(&mut self) {
                let _ = std::process::Command::new("ip")
                    .args(["link", "del", self.0])
                    .status();
            }
        }
        let del = Del(&name);
        // libpcap refuses an interface that is not up.
        let err = LiveCapture::open(&LiveOptions::new(name.clone()))
            .err()
            .expect("the new interface is down");
        assert!(matches!(err, LiveError::NotUp { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("`ip link set {name} up`")),
            "{err}"
        );
        // Up, but its veth peer (if any) stays down: no carrier, no traffic.
        assert!(ip(&["link", "set", &name, "up"]));
        let mut cap = LiveCapture::open(&LiveOptions {
            filter: String::new(),
            buffer_size: 1 << 20,
            ..LiveOptions::new(name.clone())
        })
        .unwrap();
        assert_eq!(
            cap.poll_packets(Duration::from_millis(10), 10, |_, _, _| {})
                .unwrap(),
            0
        );
        drop(del);
        let t0 = Clock.now();
        let mut result = Ok(0);
        while t0.elapsed() < Duration::from_secs(2) {
            result = cap.poll_packets(Duration::from_millis(50), 10, |_, _, _| {});
            if result.is_err() {
                break;
            }
        }
        let err = result.expect_err("a removed interface must end the capture");
        eprintln!("{err}");
        assert!(matches!(err, LiveError::Down { .. }), "{err:?}");
        assert!(err.to_string().contains(&format!("`{name}`")), "{err}");
    }

    #[test]
    fn stop_signals_set_the_flag_once_installed() {
        assert!(!stop_requested());
        let a = install_stop_signals().unwrap();
        let b = install_stop_signals().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!stop_requested());
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        // The signal thread sets the flag: soon, not at once.
        let deadline = Clock.now() + Duration::from_secs(5);
        while !a.load(Ordering::SeqCst) && Clock.now() < deadline {
            Clock.sleep(Duration::from_millis(10));
        }
        assert!(a.load(Ordering::SeqCst));
        assert!(stop_requested());
        // A second signal a second later would exit the process: never
        // send one here.
    }
}
