//! `PacketDecoder`: captured frame -> DNS payloads, with counters.
//!
//! Pipeline per frame: link header ([`super::link`]) -> IP header and IPv6
//! extension headers ([`super::ip`]) -> fragment reassembly
//! ([`super::fragments`]) -> UDP, or TCP stream reassembly ([`super::tcp`])
//! -> one callback per complete DNS message. DNS is UDP or TCP with either
//! port in `dns_ports`. Bad bytes are counted in [`PacketStats::errors`],
//! never panicked on. Time is only the frame's `ts_us`.
//!
//! UDP length rules: a UDP length below 8 or above what the IP header
//! declares is `TruncatedUdp`; a UDP length of 0 (jumbogram / offload) means
//! "up to the IP payload end"; a datagram cut by the capture's snaplen (IP
//! and UDP lengths consistent, fewer bytes captured) is delivered with the
//! captured bytes, so queries in snaplen-limited captures still count. An
//! empty UDP datagram (or a zero-length TCP-framed message) on a DNS port
//! is delivered as an empty payload: the DNS layer counts it as malformed
//! rather than the packet layer hiding it. A snaplen-cut TCP segment is
//! `TruncatedTcp` and resets its flow; a snaplen-cut fragment is
//! `TruncatedIp`.
//!
//! Counting: every frame counts in `frames`; a frame then ends as messages
//! delivered, `not_dns`, one error, or nothing (a fragment or TCP segment
//! that only fed reassembly, a TCP ACK). TCP segments on a DNS port with no
//! payload (SYN, ACK, FIN, RST) also count in `tcp_control`. A reassembled datagram that turns
//! out not to be DNS counts `not_dns` on its completing fragment.

use std::net::IpAddr;

use super::fragments::{FragmentKey, FragmentTable};
use super::ip::{self, IPPROTO_DSTOPTS, IPPROTO_TCP, IPPROTO_UDP};
use super::link;
use super::tcp::{self, FlowKey, MAX_DNS_TCP_FRAME, TcpReassembler};
use super::{PacketError, Payload, Transport};
use crate::sketch::Fnv1a;

const MICROS_PER_SEC: i64 = 1_000_000;
/// UDP header length.
const UDP_HEADER_LEN: usize = 8;
/// Number of bits in the DNS port set.
const PORT_WORDS: usize = 65536 / 64;

/// Bounds and ports of the packet layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketConfig {
    /// UDP/TCP ports whose traffic is DNS (either side).
    pub dns_ports: Vec<u16>,
    /// Partial IP datagrams held for reassembly; the oldest is evicted.
    pub max_fragment_datagrams: usize,
    /// A partial datagram is dropped this long after its first fragment.
    pub fragment_timeout_us: i64,
    /// TCP flow directions held; the least recently active is evicted.
    pub max_tcp_flows: usize,
    /// A TCP flow idle this long is dropped.
    pub tcp_flow_timeout_us: i64,
    /// Buffered + out-of-order bytes per TCP flow direction.
    pub max_tcp_buffer_bytes: usize,
    /// Buffered + out-of-order bytes of all TCP flows together; the least
    /// recently active flows are evicted past it.
    pub max_tcp_total_bytes: usize,
}

impl PacketConfig {
    pub const DEFAULT_DNS_PORT: u16 = 53;
    pub const DEFAULT_MAX_FRAGMENT_DATAGRAMS: usize = 4096;
    pub const DEFAULT_FRAGMENT_TIMEOUT_US: i64 = 30 * MICROS_PER_SEC;
    pub const DEFAULT_MAX_TCP_FLOWS: usize = 65536;
    pub const DEFAULT_TCP_FLOW_TIMEOUT_US: i64 = 60 * MICROS_PER_SEC;
    /// One largest message with its prefix (65537 bytes), plus as much
    /// again for out-of-order segments.
    pub const DEFAULT_MAX_TCP_BUFFER_BYTES: usize = 2 * MAX_DNS_TCP_FRAME;
    /// 256 MiB: 4096 flows each holding a whole 64 KiB message in progress
    /// (a flow in normal DNS-over-TCP use holds well under 1 KiB).
    pub const DEFAULT_MAX_TCP_TOTAL_BYTES: usize = 256 << 20;
}

impl Default for PacketConfig {
    fn default() -> Self {
        PacketConfig {
            dns_ports: vec![Self::DEFAULT_DNS_PORT],
            max_fragment_datagrams: Self::DEFAULT_MAX_FRAGMENT_DATAGRAMS,
            fragment_timeout_us: Self::DEFAULT_FRAGMENT_TIMEOUT_US,
            max_tcp_flows: Self::DEFAULT_MAX_TCP_FLOWS,
            tcp_flow_timeout_us: Self::DEFAULT_TCP_FLOW_TIMEOUT_US,
            max_tcp_buffer_bytes: Self::DEFAULT_MAX_TCP_BUFFER_BYTES,
            max_tcp_total_bytes: Self::DEFAULT_MAX_TCP_TOTAL_BYTES,
        }
    }
}

/// Counters of one decoder; `merge` sums several workers' counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Frames passed to `decode`.
    pub frames: u64,
    /// Valid frames that are not DNS (other protocol or port, ICMP, ARP...).
    pub not_dns: u64,
    /// Frames rejected, indexed by `PacketError as usize`.
    pub errors: [u64; PacketError::ALL.len()],
    /// Fragmented datagrams completed.
    pub fragments_reassembled: u64,
    /// Partial datagrams evicted because the fragment table was full.
    pub fragment_evictions: u64,
    /// Partial datagrams dropped by the fragment timeout.
    pub fragments_expired: u64,
    /// TCP flows evicted because the flow table was full.
    pub tcp_flow_evictions: u64,
    /// TCP flows evicted to keep all flows under `max_tcp_total_bytes`.
    pub tcp_budget_evictions: u64,
    /// TCP flows dropped by the idle timeout.
    pub tcp_flows_expired: u64,
    /// DNS messages delivered from TCP.
    pub tcp_messages: u64,
    /// DNS messages delivered from UDP.
    pub udp_messages: u64,
    /// TCP segments on a DNS port that carry no payload (SYN, bare ACK,
    /// FIN, RST): the connection control around DNS over TCP.
    pub tcp_control: u64,
}

impl PacketStats {
    pub fn merge(&mut self, other: &Self) {
        self.frames += other.frames;
        self.not_dns += other.not_dns;
        for (a, b) in self.errors.iter_mut().zip(other.errors.iter()) {
            *a += *b;
        }
        self.fragments_reassembled += other.fragments_reassembled;
        self.fragment_evictions += other.fragment_evictions;
        self.fragments_expired += other.fragments_expired;
        self.tcp_flow_evictions += other.tcp_flow_evictions;
        self.tcp_budget_evictions += other.tcp_budget_evictions;
        self.tcp_flows_expired += other.tcp_flows_expired;
        self.tcp_messages += other.tcp_messages;
        self.udp_messages += other.udp_messages;
        self.tcp_control += other.tcp_control;
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// The count of one error kind.
    pub fn error(&self, e: PacketError) -> u64 {
        self.errors.get(e as usize).copied().unwrap_or(0)
    }

    /// Every reason with a non-zero count, for summaries.
    pub fn nonzero_errors(&self) -> Vec<(&'static str, u64)> {
        PacketError::ALL
            .iter()
            .map(|e| (e.as_str(), self.error(*e)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// DNS messages delivered over both transports.
    pub fn messages(&self) -> u64 {
        self.udp_messages + self.tcp_messages
    }
}

/// Stateful frame decoder (fragment and TCP state); one per worker.
pub struct PacketDecoder {
    cfg: PacketConfig,
    /// Bit set of `dns_ports`.
    ports: Box<[u64; PORT_WORDS]>,
    stats: PacketStats,
    frags: FragmentTable,
    tcp: TcpReassembler,
    next_expire_us: i64,
}

impl std::fmt::Debug for PacketDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketDecoder")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats)
            .field("fragment_datagrams", &self.frags.len())
            .field("tcp_flows", &self.tcp.len())
            .finish()
    }
}

impl PacketDecoder {
    /// `decode` expires old fragment / TCP state at most this often (frame
    /// time).
    pub const EXPIRE_INTERVAL_US: i64 = MICROS_PER_SEC;

    pub fn new(cfg: PacketConfig) -> Self {
        let mut ports = Box::new([0u64; PORT_WORDS]);
        for &p in &cfg.dns_ports {
            if let Some(w) = ports.get_mut(usize::from(p) / 64) {
                *w |= 1 << (p % 64);
            }
        }
        PacketDecoder {
            frags: FragmentTable::new(cfg.max_fragment_datagrams, cfg.fragment_timeout_us),
            tcp: TcpReassembler::new(
                cfg.max_tcp_flows,
                cfg.max_tcp_buffer_bytes,
                cfg.tcp_flow_timeout_us,
            )
            .with_total_budget(cfg.max_tcp_total_bytes),
            cfg,
            ports,
            stats: PacketStats::default(),
            next_expire_us: i64::MIN,
        }
    }

    pub fn config(&self) -> &PacketConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &PacketStats {
        &self.stats
    }

    /// Partial datagrams currently held for reassembly.
    pub fn fragment_datagrams(&self) -> usize {
        self.frags.len()
    }

    /// TCP flow directions currently held.
    pub fn tcp_flows(&self) -> usize {
        self.tcp.len()
    }

    fn is_dns_port(&self, port: u16) -> bool {
        self.ports
            .get(usize::from(port) / 64)
            .is_some_and(|w| w & (1 << (port % 64)) != 0)
    }

    /// Decode one captured frame (`linktype` = pcap LINKTYPE number). Calls
    /// `on_payload` for each complete DNS message: none, one or several (a
    /// TCP segment may carry several messages or complete one begun
    /// earlier; a fragmented UDP datagram completes on its last fragment).
    /// Bad bytes are counted in the stats, never returned or panicked on.
    pub fn decode<F: FnMut(&Payload<'_>)>(
        &mut self,
        linktype: i32,
        ts_us: i64,
        frame: &[u8],
        mut on_payload: F,
    ) {
        self.stats.frames += 1;
        if ts_us >= self.next_expire_us {
            self.expire(ts_us);
            self.next_expire_us = ts_us.saturating_add(Self::EXPIRE_INTERVAL_US);
        }
        if let Err(e) = self.decode_frame(linktype, ts_us, frame, &mut on_payload)
            && let Some(n) = self.stats.errors.get_mut(e as usize)
        {
            *n += 1;
        }
        self.stats.fragment_evictions = self.frags.evictions();
        self.stats.tcp_flow_evictions = self.tcp.evictions();
        self.stats.tcp_budget_evictions = self.tcp.budget_evictions();
    }

    fn decode_frame<F: FnMut(&Payload<'_>)>(
        &mut self,
        linktype: i32,
        ts_us: i64,
        frame: &[u8],
        on_payload: &mut F,
    ) -> Result<(), PacketError> {
        let Some(net) = link::network_layer(linktype, frame)? else {
            self.stats.not_dns += 1;
            return Ok(());
        };
        let pkt = ip::parse(net)?;
        let Some(frag) = pkt.fragment else {
            return self.transport(
                pkt.src,
                pkt.dst,
                pkt.protocol,
                pkt.payload,
                pkt.declared_len,
                ts_us,
                on_payload,
            );
        };
        if !matches!(pkt.protocol, IPPROTO_UDP | IPPROTO_TCP | IPPROTO_DSTOPTS) {
            self.stats.not_dns += 1;
            return Ok(());
        }
        if pkt.truncated() {
            return Err(PacketError::TruncatedIp);
        }
        let key = FragmentKey {
            src: pkt.src,
            dst: pkt.dst,
            protocol: pkt.protocol,
            id: frag.id,
        };
        let Some(datagram) = self.frags.insert(key, frag, pkt.payload, ts_us)? else {
            return Ok(());
        };
        self.stats.fragments_reassembled += 1;
        let (protocol, payload) = if pkt.src.is_ipv6() {
            let walk = ip::skip_ipv6_ext(pkt.protocol, &datagram)?;
            (walk.protocol, walk.payload)
        } else {
            (pkt.protocol, &datagram[..])
        };
        self.transport(
            pkt.src,
            pkt.dst,
            protocol,
            payload,
            payload.len(),
            ts_us,
            on_payload,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn transport<F: FnMut(&Payload<'_>)>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        payload: &[u8],
        declared_len: usize,
        ts_us: i64,
        on_payload: &mut F,
    ) -> Result<(), PacketError> {
        match protocol {
            IPPROTO_UDP => {
                let [s0, s1, d0, d1, l0, l1, _, _, body @ ..] = payload else {
                    return Err(PacketError::TruncatedUdp);
                };
                let sport = u16::from_be_bytes([*s0, *s1]);
                let dport = u16::from_be_bytes([*d0, *d1]);
                if !self.is_dns_port(sport) && !self.is_dns_port(dport) {
                    self.stats.not_dns += 1;
                    return Ok(());
                }
                let udp_len = usize::from(u16::from_be_bytes([*l0, *l1]));
                let udp_len = if udp_len == 0 { declared_len } else { udp_len };
                if udp_len < UDP_HEADER_LEN || udp_len > declared_len {
                    return Err(PacketError::TruncatedUdp);
                }
                let body_len = (udp_len - UDP_HEADER_LEN).min(body.len());
                let data = body.get(..body_len).unwrap_or_default();
                self.stats.udp_messages += 1;
                on_payload(&Payload {
                    ts_us,
                    src,
                    dst,
                    sport,
                    dport,
                    transport: Transport::Udp,
                    data,
                });
                Ok(())
            }
            IPPROTO_TCP => {
                let h = tcp::parse_header(payload)?;
                if !self.is_dns_port(h.sport) && !self.is_dns_port(h.dport) {
                    self.stats.not_dns += 1;
                    return Ok(());
                }
                let key = FlowKey {
                    src,
                    dst,
                    sport: h.sport,
                    dport: h.dport,
                };
                if payload.len() < declared_len {
                    self.tcp.reset(&key);
                    return Err(PacketError::TruncatedTcp);
                }
                if h.data.is_empty() {
                    self.stats.tcp_control += 1;
                }
                let mut n = 0u64;
                let result =
                    self.tcp
                        .segment(key, h.seq, h.ack, h.flags, h.data, ts_us, |flow, ts, m| {
                            n += 1;
                            on_payload(&Payload {
                                ts_us: ts,
                                src: flow.src,
                                dst: flow.dst,
                                sport: flow.sport,
                                dport: flow.dport,
                                transport: Transport::Tcp,
                                data: m,
                            });
                        });
                self.stats.tcp_messages += n;
                result
            }
            _ => {
                self.stats.not_dns += 1;
                Ok(())
            }
        }
    }

    /// Drop fragment and TCP state older than the timeouts relative to
    /// `now_us` (frame time). `decode` also calls it, at most once per
    /// [`Self::EXPIRE_INTERVAL_US`] of frame time.
    pub fn expire(&mut self, now_us: i64) {
        self.frags.expire(now_us);
        self.tcp.expire(now_us);
        self.stats.fragments_expired = self.frags.expired();
        self.stats.tcp_flows_expired = self.tcp.expired();
    }

    /// Flow-affinity key for sharding frames between workers without
    /// decoding DNS. Rule: a fixed hash (FNV-1a, then a SplitMix64
    /// finaliser) of the two IP addresses in sorted order and the IP
    /// protocol (IPv6: the upper-layer protocol after extension headers, or
    /// the fragment header's next header for a fragment). Ports are left
    /// out on purpose: non-first fragments carry none, and the datagram
    /// they complete must meet the unfragmented packets of its 5-tuple (and
    /// a rare IP-fragmented TCP segment its connection), so every piece of
    /// every UDP/TCP conversation between two hosts shares a key, both
    /// directions included. Spread therefore comes from address pairs.
    /// Same input, same key in every process and build. Frames without a
    /// parseable IP header (or not IP) get 0.
    pub fn shard_key(linktype: i32, frame: &[u8]) -> u64 {
        let Ok(Some(net)) = link::network_layer(linktype, frame) else {
            return 0;
        };
        let Ok(pkt) = ip::parse(net) else {
            return 0;
        };
        let (a, b) = if pkt.src <= pkt.dst {
            (pkt.src, pkt.dst)
        } else {
            (pkt.dst, pkt.src)
        };
        let mut h = Fnv1a::default();
        hash_addr(&mut h, a);
        hash_addr(&mut h, b);
        h.write(&[pkt.protocol]);
        splitmix_finish(&h)
    }
}

/// An address into the shard hash: family byte, then the octets.
fn hash_addr(h: &mut Fnv1a, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            h.write(&[4]);
            h.write(&v4.octets());
        }
        IpAddr::V6(v6) => {
            h.write(&[6]);
            h.write(&v6.octets());
        }
    }
}

/// SplitMix64's finaliser over an FNV-1a value (FNV alone spreads the low
/// bits poorly for `key % workers`).
fn splitmix_finish(h: &Fnv1a) -> u64 {
    let mut z = h.finish();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::ip::tests::{ext8, frag6, ipv4, ipv6};
    use crate::packet::ip::{IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ROUTING};
    use crate::packet::link::*;
    use crate::packet::tcp::{TCP_FIN, TCP_SYN};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A4: [u8; 4] = [192, 0, 2, 1];
    const B4: [u8; 4] = [198, 51, 100, 7];
    const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const QUERY: &[u8] =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";

    /// One delivered payload, owned.
    #[derive(Clone, Debug, PartialEq)]
    struct Got {
        ts_us: i64,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        transport: Transport,
        data: Vec<u8>,
    }

    fn run(d: &mut PacketDecoder, linktype: i32, ts_us: i64, frame: &[u8]) -> Vec<Got> {
        let mut out = Vec::new();
        d.decode(linktype, ts_us, frame, |p| {
            out.push(Got {
                ts_us: p.ts_us,
                src: p.src,
                dst: p.dst,
                sport: p.sport,
                dport: p.dport,
                transport: p.transport,
                data: p.data.to_vec(),
            })
        });
        out
    }

    fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((data.len() + 8) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(data);
        u
    }

    fn tcp_seg(sport: u16, dport: u16, seq: u32, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0x50, flags | 0x10, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(data);
        t
    }

    fn eth(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0x20, 0x0a]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn eth4(ip: &[u8]) -> Vec<u8> {
        eth(&[], ETHERTYPE_IPV4, ip)
    }

    fn eth6(ip: &[u8]) -> Vec<u8> {
        eth(&[], ETHERTYPE_IPV6, ip)
    }

    fn udp4(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
        ipv4(A4, B4, IPPROTO_UDP, 1, 0, &[], &udp(sport, dport, data))
    }

    fn tcp4(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        seq: u32,
        flags: u8,
        data: &[u8],
    ) -> Vec<u8> {
        eth4(&ipv4(
            src,
            dst,
            IPPROTO_TCP,
            1,
            0,
            &[],
            &tcp_seg(sport, dport, seq, flags, data),
        ))
    }

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u16).to_be_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    /// Frames of an IPv4 UDP query (or IPv6 for 229) under every link type.
    fn frame_for(linktype: i32, ip_packet: &[u8]) -> Vec<u8> {
        let v6 = ip_packet.first().is_some_and(|b| b >> 4 == 6);
        let ethertype = if v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 };
        let mut f = Vec::new();
        match linktype {
            DLT_NULL => f.extend_from_slice(&(if v6 { 30u32 } else { 2 }).to_le_bytes()),
            DLT_LOOP => f.extend_from_slice(&(if v6 { 24u32 } else { 2 }).to_be_bytes()),
            DLT_EN10MB => return eth(&[], ethertype, ip_packet),
            LINKTYPE_LINUX_SLL => {
                f.extend_from_slice(&[0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
                f.extend_from_slice(&ethertype.to_be_bytes());
            }
            LINKTYPE_LINUX_SLL2 => {
                f.extend_from_slice(&ethertype.to_be_bytes());
                f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
            }
            _ => {}
        }
        f.extend_from_slice(ip_packet);
        f
    }

    #[test]
    fn udp_over_every_linktype() {
        for lt in SUPPORTED_LINKTYPES {
            let mut d = PacketDecoder::new(PacketConfig::default());
            let packet = if lt == LINKTYPE_IPV6 {
                ipv6(A6, B6, IPPROTO_UDP, &udp(40000, 53, QUERY))
            } else {
                udp4(40000, 53, QUERY)
            };
            let got = run(&mut d, lt, 77, &frame_for(lt, &packet));
            assert_eq!(got.len(), 1, "linktype {lt}");
            let g = &got[0];
            assert_eq!(g.data, QUERY);
            assert_eq!((g.sport, g.dport, g.ts_us), (40000, 53, 77));
            assert_eq!(g.transport, Transport::Udp);
            if lt != LINKTYPE_IPV6 {
                assert_eq!(g.src, IpAddr::V4(Ipv4Addr::from(A4)));
                assert_eq!(g.dst, IpAddr::V4(Ipv4Addr::from(B4)));
            }
            assert_eq!(d.stats().udp_messages, 1);
            assert_eq!(d.stats().errors_total(), 0);
        }
        // IPv6 through the link types that carry both versions.
        for lt in [
            DLT_NULL,
            DLT_LOOP,
            DLT_EN10MB,
            LINKTYPE_RAW,
            LINKTYPE_LINUX_SLL,
            LINKTYPE_LINUX_SLL2,
        ] {
            let mut d = PacketDecoder::new(PacketConfig::default());
            let packet = ipv6(A6, B6, IPPROTO_UDP, &udp(53, 40000, QUERY));
            let got = run(&mut d, lt, 1, &frame_for(lt, &packet));
            assert_eq!(got.len(), 1, "linktype {lt}");
            assert_eq!(got[0].src, IpAddr::V6(Ipv6Addr::from(A6)));
        }
        let mut d = PacketDecoder::new(PacketConfig::default());
        assert!(run(&mut d, 147, 1, &udp4(1, 53, QUERY)).is_empty());
        assert_eq!(d.stats().error(PacketError::UnsupportedLinktype), 1);
        // A linktype that says IPv4 but carries IPv6.
        let v6 = ipv6(A6, B6, IPPROTO_UDP, &udp(53, 40000, QUERY));
        assert!(run(&mut d, LINKTYPE_IPV4, 1, &v6).is_empty());
        assert_eq!(d.stats().error(PacketError::BadIpVersion), 1);
    }

    #[test]
    fn vlan_qinq_and_ipv4_options() {
        let mut d = PacketDecoder::new(PacketConfig::default());
        let ip = ipv4(
            A4,
            B4,
            IPPROTO_UDP,
            9,
            0,
            &[0x94, 4, 0, 0, 1, 1, 1, 0],
            &udp(5353, 53, QUERY),
        );
        let f = eth(&[ETHERTYPE_VLAN], ETHERTYPE_IPV4, &ip);
        assert_eq!(run(&mut d, DLT_EN10MB, 0, &f)[0].data, QUERY);
        let f = eth(&[ETHERTYPE_QINQ, ETHERTYPE_VLAN], ETHERTYPE_IPV4, &ip);
        assert_eq!(run(&mut d, DLT_EN10MB, 0, &f)[0].data, QUERY);
        let f = eth(
            &[ETHERTYPE_QINQ_OLD, ETHERTYPE_QINQ, ETHERTYPE_VLAN],
            ETHERTYPE_IPV4,
            &ip,
        );
        assert_eq!(run(&mut d, DLT_EN10MB, 0, &f)[0].data, QUERY);
        assert_eq!(d.stats().udp_messages, 3);
    }

    #[test]
    fn ipv6_extension_headers_then_udp() {
        let mut d = PacketDecoder::new(PacketConfig::default());
        let mut rest = ext8(IPPROTO_ROUTING);
        rest.extend(ext8(IPPROTO_DSTOPTS));
        rest.extend(ext8(IPPROTO_UDP));
        rest.extend(udp(40000, 53, QUERY));
        let f = eth6(&ipv6(A6, B6, IPPROTO_HOPOPTS, &rest));
        let got = run(&mut d, DLT_EN10MB, 0, &f);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, QUERY);
    }

    #[test]
    fn not_dns_and_length_rules() {
        let mut d = PacketDecoder::new(PacketConfig::default());
        run(&mut d, DLT_EN10MB, 0, &eth(&[], 0x0806, &[0; 28])); // ARP
        run(
            &mut d,
            DLT_EN10MB,
            0,
            &eth4(&ipv4(A4, B4, 1, 1, 0, &[], &[8, 0, 0, 0])),
        ); // ICMP
        run(&mut d, DLT_EN10MB, 0, &eth4(&udp4(1234, 80, b"GET"))); // other port
        run(
            &mut d,
            DLT_EN10MB,
            0,
            &tcp4(A4, B4, 1234, 443, 1, 0, b"tls"),
        );
        assert_eq!(d.stats().not_dns, 4);
        assert_eq!(d.stats().frames, 4);

        // An empty datagram on a DNS port is delivered empty.
        let got = run(&mut d, DLT_EN10MB, 0, &eth4(&udp4(1, 53, b"")));
        assert_eq!(got.len(), 1);
        assert!(got[0].data.is_empty());

        // Ethernet padding after a short datagram is not payload.
        let mut f = eth4(&udp4(1, 53, b"tiny"));
        f.resize(60, 0);
        assert_eq!(run(&mut d, DLT_EN10MB, 0, &f)[0].data, b"tiny");

        // Snaplen cut with consistent lengths: the captured part is delivered.
        let f = eth4(&udp4(1, 53, QUERY));
        let got = run(&mut d, DLT_EN10MB, 0, &f[..f.len() - 5]);
        assert_eq!(got[0].data, &QUERY[..QUERY.len() - 5]);

        // UDP length larger than the IP payload, or below 8.
        let mut ip = udp4(1, 53, QUERY);
        ip[24..26].copy_from_slice(&500u16.to_be_bytes());
        assert!(run(&mut d, DLT_EN10MB, 0, &eth4(&ip)).is_empty());
        ip[24..26].copy_from_slice(&7u16.to_be_bytes());
        assert!(run(&mut d, DLT_EN10MB, 0, &eth4(&ip)).is_empty());
        assert_eq!(d.stats().error(PacketError::TruncatedUdp), 2);
        // UDP header cut.
        let ip = ipv4(A4, B4, IPPROTO_UDP, 1, 0, &[], &[0, 53, 0]);
        assert!(run(&mut d, DLT_EN10MB, 0, &eth4(&ip)).is_empty());
        assert_eq!(d.stats().error(PacketError::TruncatedUdp), 3);

        // Custom DNS ports.
        let mut d = PacketDecoder::new(PacketConfig {
            dns_ports: vec![5353, 8053],
            ..PacketConfig::default()
        });
        assert_eq!(
            run(&mut d, DLT_EN10MB, 0, &eth4(&udp4(8053, 999, QUERY))).len(),
            1
        );
        assert!(run(&mut d, DLT_EN10MB, 0, &eth4(&udp4(1000, 53, QUERY))).is_empty());
        assert_eq!(d.stats().not_dns, 1);
    }

    /// Splits a UDP datagram into IPv4 fragments of `chunk` bytes.
    fn v4_fragments(id: u16, dgram: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        dgram
            .chunks(chunk)
            .enumerate()
            .map(|(i, c)| {
                let off = i * chunk;
                let more = off + c.len() < dgram.len();
                let word = (off / 8) as u16 | if more { 0x2000 } else { 0 };
                eth4(&ipv4(B4, A4, IPPROTO_UDP, id, word, &[], c))
            })
            .collect()
    }

    fn v6_fragments(id: u32, dgram: &[u8], chunk: usize, unfragmentable: bool) -> Vec<Vec<u8>> {
        dgram
            .chunks(chunk)
            .enumerate()
            .map(|(i, c)| {
                let off = i * chunk;
                let more = off + c.len() < dgram.len();
                let mut rest = Vec::new();
                let first = if unfragmentable {
                    rest.extend(ext8(IPPROTO_FRAGMENT));
                    IPPROTO_HOPOPTS
                } else {
                    IPPROTO_FRAGMENT
                };
                rest.extend(frag6(IPPROTO_UDP, off, more, id));
                rest.extend_from_slice(c);
                eth6(&ipv6(B6, A6, first, &rest))
            })
            .collect()
    }

    fn big_response() -> Vec<u8> {
        (0..3000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn ipv4_fragments_in_and_out_of_order() {
        let msg = big_response();
        let dgram = udp(53, 40000, &msg);
        let frags = v4_fragments(0x4242, &dgram, 1480);
        assert_eq!(frags.len(), 3);
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut d = PacketDecoder::new(PacketConfig::default());
            let mut got = Vec::new();
            for (t, &i) in order.iter().enumerate() {
                got.extend(run(&mut d, DLT_EN10MB, 10 + t as i64, &frags[i]));
            }
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].data, msg);
            assert_eq!(got[0].ts_us, 12, "ts of the completing fragment");
            assert_eq!((got[0].sport, got[0].dport), (53, 40000));
            assert_eq!(d.stats().fragments_reassembled, 1);
            assert_eq!(d.fragment_datagrams(), 0);
        }
    }

    #[test]
    fn ipv6_fragments_in_and_out_of_order() {
        let msg = big_response();
        let dgram = udp(53, 40000, &msg);
        for unfragmentable in [false, true] {
            let frags = v6_fragments(0xabcdef01, &dgram, 1232, unfragmentable);
            for order in [[0, 1, 2], [2, 1, 0]] {
                let mut d = PacketDecoder::new(PacketConfig::default());
                let mut got = Vec::new();
                for &i in &order {
                    got.extend(run(&mut d, DLT_EN10MB, 5, &frags[i]));
                }
                assert_eq!(got.len(), 1);
                assert_eq!(got[0].data, msg);
                assert_eq!(got[0].src, IpAddr::V6(Ipv6Addr::from(B6)));
            }
        }
        // Destination options inside the fragmentable part.
        let mut inner = ext8(IPPROTO_UDP);
        inner.extend(udp(53, 40000, &msg));
        let mut d = PacketDecoder::new(PacketConfig::default());
        let mut got = Vec::new();
        for (i, c) in inner.chunks(1232).enumerate() {
            let more = (i + 1) * 1232 < inner.len();
            let mut rest = frag6(IPPROTO_DSTOPTS, i * 1232, more, 7);
            rest.extend_from_slice(c);
            got.extend(run(
                &mut d,
                DLT_EN10MB,
                5,
                &eth6(&ipv6(B6, A6, IPPROTO_FRAGMENT, &rest)),
            ));
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, msg);
    }

    #[test]
    fn overlapping_fragment_rejected() {
        let msg = big_response();
        let dgram = udp(53, 40000, &msg);
        let mut d = PacketDecoder::new(PacketConfig::default());
        let frags = v4_fragments(1, &dgram, 1480);
        run(&mut d, DLT_EN10MB, 0, &frags[0]);
        // A piece at offset 1472 (overlaps the first's last 8 bytes).
        let bad = eth4(&ipv4(
            B4,
            A4,
            IPPROTO_UDP,
            1,
            184 | 0x2000,
            &[],
            &dgram[1472..1480 + 8],
        ));
        assert!(run(&mut d, DLT_EN10MB, 0, &bad).is_empty());
        assert_eq!(d.stats().error(PacketError::BadFragment), 1);
        assert_eq!(d.fragment_datagrams(), 0);
        // The remaining genuine pieces no longer complete a datagram.
        assert!(run(&mut d, DLT_EN10MB, 0, &frags[1]).is_empty());
        assert!(run(&mut d, DLT_EN10MB, 0, &frags[2]).is_empty());
        assert_eq!(d.stats().udp_messages, 0);
        // Out of bounds: offset + length past 65535.
        let far = eth4(&ipv4(B4, A4, IPPROTO_UDP, 2, 8190, &[], &[0; 100]));
        run(&mut d, DLT_EN10MB, 0, &far);
        assert_eq!(d.stats().error(PacketError::BadFragment), 2);
    }

    #[test]
    fn fragment_table_cap_and_timeout() {
        let dgram = udp(53, 40000, &big_response());
        let mut d = PacketDecoder::new(PacketConfig {
            max_fragment_datagrams: 2,
            ..PacketConfig::default()
        });
        for id in 0..3 {
            run(&mut d, DLT_EN10MB, 0, &v4_fragments(id, &dgram, 1480)[0]);
        }
        assert_eq!(d.stats().fragment_evictions, 1);
        assert_eq!(d.fragment_datagrams(), 2);
        // Datagram 0 was evicted; 1 and 2 still complete.
        for id in [1, 2, 0] {
            let frags = v4_fragments(id, &dgram, 1480);
            for f in &frags[1..] {
                run(&mut d, DLT_EN10MB, 0, f);
            }
        }
        assert_eq!(d.stats().udp_messages, 2);
        // The leftover of datagram 0 times out.
        d.expire(PacketConfig::DEFAULT_FRAGMENT_TIMEOUT_US + 1);
        assert_eq!(d.fragment_datagrams(), 0);
        assert_eq!(d.stats().fragments_expired, 1);
        // decode expires by itself too.
        let frags = v4_fragments(9, &dgram, 1480);
        run(&mut d, DLT_EN10MB, 100_000_000, &frags[0]);
        run(&mut d, DLT_EN10MB, 200_000_000, &frags[1]);
        run(&mut d, DLT_EN10MB, 200_000_000, &frags[2]);
        assert_eq!(d.stats().udp_messages, 2);
        assert_eq!(d.stats().fragments_expired, 2);
    }

    #[test]
    fn tcp_two_messages_in_one_segment() {
        let mut d = PacketDecoder::new(PacketConfig::default());
        run(
            &mut d,
            DLT_EN10MB,
            0,
            &tcp4(A4, B4, 40000, 53, 99, TCP_SYN, &[]),
        );
        run(
            &mut d,
            DLT_EN10MB,
            1,
            &tcp4(B4, A4, 53, 40000, 5000, TCP_SYN, &[]),
        );
        let seg = framed(&[QUERY, b"second query"]);
        let got = run(
            &mut d,
            DLT_EN10MB,
            2,
            &tcp4(A4, B4, 40000, 53, 100, 0x08, &seg),
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].data, QUERY);
        assert_eq!(got[1].data, b"second query");
        assert_eq!(got[1].transport, Transport::Tcp);
        assert_eq!((got[1].sport, got[1].dport), (40000, 53));
        let got = run(
            &mut d,
            DLT_EN10MB,
            3,
            &tcp4(B4, A4, 53, 40000, 5001, 0x08, &framed(&[b"answer"])),
        );
        assert_eq!(got[0].data, b"answer");
        assert_eq!(d.stats().tcp_messages, 3);
    }

    #[test]
    fn tcp_message_across_three_segments() {
        let mut d = PacketDecoder::new(PacketConfig::default());
        let s = framed(&[QUERY]);
        run(
            &mut d,
            DLT_EN10MB,
            0,
            &tcp4(A4, B4, 40000, 53, 0, TCP_SYN, &[]),
        );
        assert!(
            run(
                &mut d,
                DLT_EN10MB,
                1,
                &tcp4(A4, B4, 40000, 53, 1, 0, &s[..1])
            )
            .is_empty()
        );
        assert!(
            run(
                &mut d,
                DLT_EN10MB,
                2,
                &tcp4(A4, B4, 40000, 53, 2, 0, &s[1..12])
            )
            .is_empty()
        );
        let got = run(
            &mut d,
            DLT_EN10MB,
            3,
            &tcp4(A4, B4, 40000, 53, 13, 0, &s[12..]),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, QUERY);
        assert_eq!(got[0].ts_us, 3, "ts of the completing segment");
    }

    #[test]
    fn tcp_retransmission_and_out_of_order() {
        let mut d = PacketDecoder::new(PacketConfig::default());
        let s = framed(&[QUERY, b"two"]);
        let cut = 10;
        run(
            &mut d,
            DLT_EN10MB,
            0,
            &tcp4(A4, B4, 40000, 53, 0, TCP_SYN, &[]),
        );
        // Second half first, then first half twice, then everything again.
        assert!(
            run(
                &mut d,
                DLT_EN10MB,
                1,
                &tcp4(A4, B4, 40000, 53, 1 + cut as u32, 0, &s[cut..])
            )
            .is_empty()
        );
        assert_eq!(
            run(
                &mut d,
                DLT_EN10MB,
                2,
                &tcp4(A4, B4, 40000, 53, 1, 0, &s[..cut])
            )
            .len(),
            2
        );
        assert!(
            run(
                &mut d,
                DLT_EN10MB,
                3,
                &tcp4(A4, B4, 40000, 53, 1, 0, &s[..cut])
            )
            .is_empty()
        );
        assert!(run(&mut d, DLT_EN10MB, 4, &tcp4(A4, B4, 40000, 53, 1, 0, &s)).is_empty());
        assert_eq!(d.stats().tcp_messages, 2);
        run(
            &mut d,
            DLT_EN10MB,
            5,
            &tcp4(A4, B4, 40000, 53, 1 + s.len() as u32, TCP_FIN, &[]),
        );
        assert_eq!(d.tcp_flows(), 0);
        // Mid-flow capture start (no SYN).
        let got = run(
            &mut d,
            DLT_EN10MB,
            6,
            &tcp4(B4, A4, 53, 1, 777, 0, &framed(&[b"resp"])),
        );
        assert_eq!(got[0].data, b"resp");
        // Snaplen-cut segment.
        let f = tcp4(B4, A4, 53, 1, 783, 0, &framed(&[b"resp2"]));
        assert!(run(&mut d, DLT_EN10MB, 7, &f[..f.len() - 2]).is_empty());
        assert_eq!(d.stats().error(PacketError::TruncatedTcp), 1);
    }

    #[test]
    fn tcp_capture_gap_acknowledged_by_peer() {
        // As in suricata-verify dns-tcp-ts-gap.pcap: one response segment is
        // missing from the capture, the client's ACK covers it.
        let mut d = PacketDecoder::new(PacketConfig::default());
        let one = framed(&[b"response one"]);
        let two = framed(&[b"response two"]);
        let ack_frame = |src, dst, sport, dport, ack: u32| {
            let mut seg = tcp_seg(sport, dport, 1, 0, &[]);
            seg[8..12].copy_from_slice(&ack.to_be_bytes());
            eth4(&ipv4(src, dst, IPPROTO_TCP, 1, 0, &[], &seg))
        };
        run(
            &mut d,
            DLT_EN10MB,
            0,
            &tcp4(B4, A4, 53, 40000, 0, TCP_SYN, &[]),
        );
        assert_eq!(
            run(&mut d, DLT_EN10MB, 1, &tcp4(B4, A4, 53, 40000, 1, 0, &one)).len(),
            1
        );
        let after_gap = 1 + one.len() as u32 + 40;
        assert!(
            run(
                &mut d,
                DLT_EN10MB,
                2,
                &tcp4(B4, A4, 53, 40000, after_gap, 0, &two)
            )
            .is_empty()
        );
        let got = run(
            &mut d,
            DLT_EN10MB,
            3,
            &ack_frame(A4, B4, 40000, 53, after_gap + two.len() as u32),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, b"response two");
        assert_eq!(
            got[0].src,
            IpAddr::V4(Ipv4Addr::from(B4)),
            "the reverse direction's addressing"
        );
        assert_eq!((got[0].sport, got[0].dport), (53, 40000));
        assert_eq!(got[0].ts_us, 2, "ts of the frame that carried it");
    }

    #[test]
    fn tcp_flow_cap_eviction_counted() {
        let mut d = PacketDecoder::new(PacketConfig {
            max_tcp_flows: 3,
            ..PacketConfig::default()
        });
        for port in 0..5u16 {
            run(
                &mut d,
                DLT_EN10MB,
                i64::from(port),
                &tcp4(A4, B4, 1000 + port, 53, 0, TCP_SYN, &[]),
            );
        }
        assert_eq!(d.tcp_flows(), 3);
        assert_eq!(d.stats().tcp_flow_evictions, 2);
        // The newest flows still work.
        let got = run(
            &mut d,
            DLT_EN10MB,
            9,
            &tcp4(A4, B4, 1004, 53, 1, 0, &framed(&[b"q"])),
        );
        assert_eq!(got.len(), 1);
        // Expiry of idle flows.
        d.expire(9 + PacketConfig::DEFAULT_TCP_FLOW_TIMEOUT_US + 1);
        assert_eq!(d.tcp_flows(), 0);
        assert_eq!(d.stats().tcp_flows_expired, 3);
    }

    #[test]
    fn tcp_buffer_cap_is_tcp_stream_error() {
        let mut d = PacketDecoder::new(PacketConfig {
            max_tcp_buffer_bytes: 64,
            ..PacketConfig::default()
        });
        run(&mut d, DLT_EN10MB, 0, &tcp4(A4, B4, 1, 53, 0, TCP_SYN, &[]));
        run(&mut d, DLT_EN10MB, 0, &tcp4(A4, B4, 1, 53, 1, 0, &[1, 0]));
        run(&mut d, DLT_EN10MB, 0, &tcp4(A4, B4, 1, 53, 3, 0, &[0; 100]));
        assert_eq!(d.stats().error(PacketError::TcpStream), 1);
        assert_eq!(d.tcp_flows(), 0);
    }

    #[test]
    fn stats_merge_and_totals() {
        let mut a = PacketStats {
            frames: 2,
            udp_messages: 1,
            ..PacketStats::default()
        };
        a.errors[PacketError::BadFragment as usize] = 3;
        let mut b = a.clone();
        b.errors[PacketError::TcpStream as usize] = 1;
        b.tcp_messages = 4;
        a.merge(&b);
        assert_eq!(a.frames, 4);
        assert_eq!(a.errors_total(), 7);
        assert_eq!(a.error(PacketError::BadFragment), 6);
        assert_eq!(a.messages(), 6);
    }

    #[test]
    fn shard_key_rules() {
        let key = |f: &[u8]| PacketDecoder::shard_key(DLT_EN10MB, f);
        // Both directions of a TCP connection.
        let c2s = tcp4(A4, B4, 40000, 53, 0, TCP_SYN, &[]);
        let s2c = tcp4(B4, A4, 53, 40000, 0, TCP_SYN, &[]);
        assert_eq!(key(&c2s), key(&s2c));
        assert_ne!(key(&c2s), 0);
        // Every fragment of a datagram, and the unfragmented packets of the
        // same pair.
        let dgram = udp(53, 40000, &big_response());
        let f4 = v4_fragments(3, &dgram, 1480);
        let k = key(&f4[0]);
        assert!(f4.iter().all(|f| key(f) == k));
        assert_eq!(k, key(&eth4(&udp4(40000, 53, QUERY))));
        let f6 = v6_fragments(3, &dgram, 1232, true);
        let k6 = key(&f6[0]);
        assert!(f6.iter().all(|f| key(f) == k6));
        assert_eq!(
            k6,
            key(&eth6(&ipv6(A6, B6, IPPROTO_UDP, &udp(1, 53, QUERY))))
        );
        // Same key through another link type.
        assert_eq!(PacketDecoder::shard_key(LINKTYPE_RAW, &udp4(1, 2, b"")), k);
        // Deterministic across processes: a pinned value.
        assert_eq!(k, PINNED_KEY, "shard_key changed: {k:#x}");
        // Unparseable or non-IP.
        assert_eq!(key(&[1, 2, 3]), 0);
        assert_eq!(key(&eth(&[], 0x0806, &[0; 28])), 0);
        assert_eq!(PacketDecoder::shard_key(9999, &c2s), 0);
        // Different address pairs spread over workers.
        let mut buckets = [0u32; 8];
        for i in 0..4000u32 {
            let src = i.to_be_bytes();
            let f = eth4(&ipv4(src, B4, IPPROTO_UDP, 1, 0, &[], &udp(1, 53, b"")));
            buckets[(key(&f) % 8) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 400 && n < 600), "{buckets:?}");
    }

    const PINNED_KEY: u64 = 0x917b_5158_077a_eb3d;

    #[test]
    fn random_bytes_never_panic() {
        const FRAMES_PER_LINKTYPE: usize = 3000;
        let mut rng = crate::sketch::Rng::new(0x9e37_79b9_7f4a_7c15);
        let dgram = udp(53, 40000, &big_response());
        let mut templates: Vec<Vec<u8>> = vec![
            udp4(40000, 53, QUERY),
            ipv6(A6, B6, IPPROTO_UDP, &udp(1, 53, QUERY)),
            ipv4(
                A4,
                B4,
                IPPROTO_TCP,
                1,
                0,
                &[],
                &tcp_seg(1, 53, 1, 0, &framed(&[QUERY, QUERY])),
            ),
            ipv4(
                A4,
                B4,
                IPPROTO_TCP,
                1,
                0,
                &[],
                &tcp_seg(1, 53, 1, TCP_SYN, &[]),
            ),
        ];
        for f in v4_fragments(5, &dgram, 1480)
            .iter()
            .chain(&v6_fragments(5, &dgram, 1232, true))
        {
            templates.push(f[14..].to_vec());
        }
        let mut linktypes = SUPPORTED_LINKTYPES.to_vec();
        linktypes.push(9);
        for lt in linktypes {
            let mut d = PacketDecoder::new(PacketConfig {
                max_fragment_datagrams: 8,
                max_tcp_flows: 8,
                max_tcp_buffer_bytes: 256,
                ..PacketConfig::default()
            });
            for i in 0..FRAMES_PER_LINKTYPE {
                let frame = if i % 2 == 0 {
                    let n = rng.below(160) as usize;
                    (0..n).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()
                } else {
                    let t = &templates[rng.below(templates.len() as u64) as usize];
                    let mut f = frame_for(lt, t);
                    for _ in 0..1 + rng.below(6) {
                        if !f.is_empty() {
                            let at = rng.below(f.len().min(80) as u64) as usize;
                            f[at] = rng.next_u64() as u8;
                        }
                    }
                    if rng.below(4) == 0 {
                        let n = rng.below(f.len() as u64 + 1) as usize;
                        f.truncate(n);
                    }
                    f
                };
                let ts = (i as i64) * 1000 * rng.below(3) as i64;
                let _ = PacketDecoder::shard_key(lt, &frame);
                d.decode(lt, ts, &frame, |p| {
                    assert!(p.data.len() <= u16::MAX as usize);
                });
            }
            assert_eq!(d.stats().frames, FRAMES_PER_LINKTYPE as u64);
            assert!(d.fragment_datagrams() <= 8 && d.tcp_flows() <= 8);
        }
    }
}
