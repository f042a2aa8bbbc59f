//! The frames of a labelled capture: DNS lookups (query and response), bare
//! responses and TCP exchanges, queued by time and written in order.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use super::world::answers_for;
use crate::{FrameBuilder, PcapWriter, Rng, qtype, rcode, tcp_flags};

pub(super) const QTYPE_HTTPS: u16 = 65;
pub(super) const QTYPE_NULL: u16 = 10;

/// One frame to write.
pub(super) enum Msg {
    Query {
        src: SocketAddr,
        dst: SocketAddr,
        id: u16,
        qname: String,
        qtype: u16,
        edns: bool,
    },
    Response {
        src: SocketAddr,
        dst: SocketAddr,
        id: u16,
        qname: String,
        qtype: u16,
        rcode: u8,
        answers: Vec<IpAddr>,
        pad_to: usize,
    },
    /// A UDP datagram with a prebuilt DNS message.
    Udp {
        src: SocketAddr,
        dst: SocketAddr,
        payload: Vec<u8>,
    },
    Tcp {
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: Vec<u8>,
    },
}

/// Where the traffic is drawn and queued: the randomness, the frame
/// builder, and the frames not yet written, in time order. Every part of a
/// capture pushes into it; [`Gen::flush_before`] writes what is due.
pub(super) struct Gen {
    pub rng: Rng,
    pub fb: FrameBuilder,
    /// Frames not yet written, by (timestamp, insertion order).
    queue: BTreeMap<(i64, u64), Msg>,
    seq: u64,
    /// Frames written so far.
    pub frames: u64,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            fb: FrameBuilder::new(),
            queue: BTreeMap::new(),
            seq: 0,
            frames: 0,
        }
    }

    pub fn push(&mut self, ts: i64, m: Msg) {
        self.seq += 1;
        self.queue.insert((ts, self.seq), m);
    }

    /// Write every queued frame stamped before `ts` to `w`.
    pub fn flush_before<W: Write>(&mut self, w: &mut PcapWriter<W>, ts: i64) -> io::Result<()> {
        while let Some(e) = self.queue.first_entry() {
            if e.key().0 >= ts {
                break;
            }
            let t = e.key().0;
            let m = e.remove();
            let f = match &m {
                Msg::Query {
                    src,
                    dst,
                    id,
                    qname,
                    qtype,
                    edns,
                } => self.fb.query(*src, *dst, *id, qname, *qtype, *edns),
                Msg::Response {
                    src,
                    dst,
                    id,
                    qname,
                    qtype,
                    rcode,
                    answers,
                    pad_to,
                } => self
                    .fb
                    .response(*src, *dst, *id, qname, *qtype, *rcode, answers, *pad_to),
                Msg::Udp { src, dst, payload } => self.fb.udp_frame(*src, *dst, payload),
                Msg::Tcp {
                    src,
                    dst,
                    seq,
                    ack,
                    flags,
                    payload,
                } => self.fb.tcp_segment(*src, *dst, *seq, *ack, *flags, payload),
            };
            w.write_frame(t, f)?;
            self.frames += 1;
        }
        Ok(())
    }

    pub fn port(&mut self) -> u16 {
        1024 + self.rng.below(64_000) as u16
    }

    pub fn id(&mut self) -> u16 {
        self.rng.next_u64() as u16
    }

    /// Query from `client` at `ts` and, unless `rc` is `None`, its
    /// response `delay` µs later (answers for NOERROR only).
    #[allow(clippy::too_many_arguments)]
    pub fn lookup(
        &mut self,
        ts: i64,
        client: IpAddr,
        server: IpAddr,
        qname: String,
        qt: u16,
        edns: bool,
        rc: Option<u8>,
        delay: i64,
    ) {
        let src = SocketAddr::new(client, self.port());
        let dst = SocketAddr::new(server, 53);
        let id = self.id();
        if let Some(rc) = rc {
            let answers = if rc == rcode::NOERROR {
                answers_for(&qname, qt)
            } else {
                Vec::new()
            };
            self.push(
                ts + delay,
                Msg::Response {
                    src: dst,
                    dst: src,
                    id,
                    qname: qname.clone(),
                    qtype: qt,
                    rcode: rc,
                    answers,
                    pad_to: 0,
                },
            );
        }
        self.push(
            ts,
            Msg::Query {
                src,
                dst,
                id,
                qname,
                qtype: qt,
                edns,
            },
        );
    }

    /// Resolver latency: cache hits (70 %) 1-3 ms, misses 8-30 ms.
    pub fn delay(&mut self) -> i64 {
        if self.rng.unit() < 0.7 {
            1000 + self.rng.below(2000) as i64
        } else {
            8000 + self.rng.below(22_000) as i64
        }
    }

    /// A lookup over TCP; with `handshake`, SYN / SYN-ACK / ACK before and
    /// FIN / FIN / ACK after, else only the two data segments (the capture
    /// joins the connection mid-flow).
    pub fn tcp_lookup(
        &mut self,
        ts: i64,
        client: IpAddr,
        server: IpAddr,
        qname: &str,
        handshake: bool,
    ) {
        let c = SocketAddr::new(client, self.port());
        let s = SocketAddr::new(server, 53);
        let id = self.id();
        let qt = if self.rng.unit() < 0.5 {
            qtype::A
        } else {
            qtype::AAAA
        };
        let framed = |m: &[u8]| {
            let mut v = (m.len() as u16).to_be_bytes().to_vec();
            v.extend_from_slice(m);
            v
        };
        let q = framed(self.fb.query_message(id, qname, qt, true));
        let answers = answers_for(qname, qt);
        let r = framed(
            self.fb
                .response_message(id, qname, qt, rcode::NOERROR, &answers, 0),
        );
        let (ci, si) = (self.rng.next_u64() as u32, self.rng.next_u64() as u32);
        let (cd, sd) = (ci.wrapping_add(1), si.wrapping_add(1));
        let (ql, rl) = (q.len() as u32, r.len() as u32);
        let rtt = 200 + self.rng.below(800) as i64;
        let mut t = ts;
        let seg = |g: &mut Self,
                   t: i64,
                   from_client: bool,
                   seq: u32,
                   ack: u32,
                   flags: u8,
                   payload: Vec<u8>| {
            let (src, dst) = if from_client { (c, s) } else { (s, c) };
            g.push(
                t,
                Msg::Tcp {
                    src,
                    dst,
                    seq,
                    ack,
                    flags,
                    payload,
                },
            );
        };
        use tcp_flags::{ACK, FIN, PSH, SYN};
        if handshake {
            seg(self, t, true, ci, 0, SYN, Vec::new());
            t += rtt;
            seg(self, t, false, si, cd, SYN | ACK, Vec::new());
            t += rtt / 4;
            seg(self, t, true, cd, sd, ACK, Vec::new());
        }
        t += 50;
        seg(self, t, true, cd, sd, PSH | ACK, q);
        t += rtt + self.delay();
        seg(self, t, false, sd, cd.wrapping_add(ql), PSH | ACK, r);
        if handshake {
            let (cf, sf) = (cd.wrapping_add(ql), sd.wrapping_add(rl));
            t += rtt / 4;
            seg(self, t, true, cf, sf, FIN | ACK, Vec::new());
            t += rtt;
            seg(
                self,
                t,
                false,
                sf,
                cf.wrapping_add(1),
                FIN | ACK,
                Vec::new(),
            );
            t += rtt / 4;
            seg(
                self,
                t,
                true,
                cf.wrapping_add(1),
                sf.wrapping_add(1),
                ACK,
                Vec::new(),
            );
        }
    }
}

/// A response message with one record of type `rtype` carrying `rdata`
/// (built on the question `FrameBuilder` encodes).
pub(super) fn record_response(
    fb: &mut FrameBuilder,
    id: u16,
    qname: &str,
    qt: u16,
    rtype: u16,
    rdata: &[u8],
) -> Vec<u8> {
    let mut m = fb.query_message(id, qname, qt, false).to_vec();
    m[2..4].copy_from_slice(&0x8180u16.to_be_bytes());
    m[6..8].copy_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&[0xc0, 0x0c]);
    m.extend_from_slice(&rtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes()); // TTL 0, as tunnels answer
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(rdata);
    m
}
