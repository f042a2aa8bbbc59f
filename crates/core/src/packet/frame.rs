//! Ethernet/IP/UDP-or-TCP frames carrying hand-written DNS messages: the
//! inverse of the decoder, for the library's tests and the traffic
//! generator (crates/synth, which re-exports it).

use std::net::{IpAddr, SocketAddr};

use crate::packet::Transport;

/// DNS record types used by tests (host order values).
pub mod qtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const OPT: u16 = 41;
    pub const ANY: u16 = 255;
}

/// DNS response codes.
pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;
}

/// TCP flag bits for [`FrameBuilder::tcp_segment`].
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// EDNS UDP payload size advertised by [`FrameBuilder::query`].
pub const EDNS_UDP_SIZE: u16 = 1232;
/// TTL of the answer records written by [`FrameBuilder::response`].
pub const ANSWER_TTL: u32 = 300;
/// Source MAC of every built frame (locally administered).
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC of every built frame (locally administered).
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;
const TCP_LEN: usize = 20;
/// Largest DNS message that fits one UDP/IPv4 datagram.
const MAX_DNS_LEN: usize = 65_535 - IPV4_LEN - UDP_LEN;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Builds Ethernet/IPv4-or-IPv6/UDP (and TCP with 2-byte framing) frames
/// carrying DNS messages, into reused buffers (no allocation per frame after
/// warm-up). Correct IPv4 header checksum; UDP checksums are computed for
/// both families, TCP checksums always.
///
/// The transport is UDP unless [`set_transport`](Self::set_transport)
/// selects TCP; a TCP frame is one PSH|ACK segment (seq 1, ack 1) whose
/// payload is the 2-byte length prefix and the message. Lower-level pieces
/// ([`query_message`](Self::query_message), [`udp_frame`](Self::udp_frame),
/// [`tcp_segment`](Self::tcp_segment)) build handshakes, split segments and
/// malformed input.
///
/// Panics on a `src`/`dst` address-family mismatch and on a qname with an
/// empty or over-long (> 63 bytes) label or over 255 bytes in wire form.
#[derive(Debug)]
pub struct FrameBuilder {
    frame: Vec<u8>,
    msg: Vec<u8>,
    transport: Transport,
    ip_id: u16,
}

impl Default for FrameBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBuilder {
    pub fn new() -> Self {
        FrameBuilder {
            frame: Vec::with_capacity(2048),
            msg: Vec::with_capacity(1024),
            transport: Transport::Udp,
            ip_id: 1,
        }
    }

    /// Transport of the frames built by `query` / `response` from now on.
    pub fn set_transport(&mut self, t: Transport) -> &mut Self {
        self.transport = t;
        self
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// DNS query: id, qname (presentation text), qtype, RD set, optional
    /// EDNS OPT (udp size 1232), in a frame from `src` to `dst`.
    pub fn query(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        id: u16,
        qname: &str,
        qtype: u16,
        edns: bool,
    ) -> &[u8] {
        write_query(&mut self.msg, id, qname, qtype, edns);
        self.frame_for_msg(src, dst)
    }

    /// DNS response echoing the question (QR, RD, RA set), with `rcode` and
    /// one A (for `IpAddr::V4`) or AAAA (`V6`) record of ttl 300 per
    /// `answers` entry, owner name compressed to the question. If `pad_to`
    /// exceeds the message length, an EDNS OPT record with a Padding option
    /// (RFC 7830) makes the message at least `pad_to` bytes long (capped at
    /// 65507, the largest UDP/IPv4 payload).
    #[allow(clippy::too_many_arguments)]
    pub fn response(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        id: u16,
        qname: &str,
        qtype: u16,
        rcode: u8,
        answers: &[IpAddr],
        pad_to: usize,
    ) -> &[u8] {
        write_response(&mut self.msg, id, qname, qtype, rcode, answers, pad_to);
        self.frame_for_msg(src, dst)
    }

    /// Only the DNS message of [`query`](Self::query) (no framing).
    pub fn query_message(&mut self, id: u16, qname: &str, qtype: u16, edns: bool) -> &[u8] {
        write_query(&mut self.msg, id, qname, qtype, edns);
        &self.msg
    }

    /// Only the DNS message of [`response`](Self::response) (no framing).
    #[allow(clippy::too_many_arguments)]
    pub fn response_message(
        &mut self,
        id: u16,
        qname: &str,
        qtype: u16,
        rcode: u8,
        answers: &[IpAddr],
        pad_to: usize,
    ) -> &[u8] {
        write_response(&mut self.msg, id, qname, qtype, rcode, answers, pad_to);
        &self.msg
    }

    /// An Ethernet/IP/UDP frame carrying `payload` as is.
    pub fn udp_frame(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> &[u8] {
        build_udp(&mut self.frame, &mut self.ip_id, src, dst, &[payload]);
        &self.frame
    }

    /// An Ethernet/IP/TCP frame: one segment with the given sequence and
    /// acknowledgement numbers, flags ([`tcp_flags`]) and `payload` as is
    /// (add the 2-byte DNS length prefix yourself).
    pub fn tcp_segment(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) -> &[u8] {
        build_tcp(
            &mut self.frame,
            &mut self.ip_id,
            src,
            dst,
            seq,
            ack,
            flags,
            &[payload],
        );
        &self.frame
    }

    fn frame_for_msg(&mut self, src: SocketAddr, dst: SocketAddr) -> &[u8] {
        match self.transport {
            Transport::Udp => build_udp(&mut self.frame, &mut self.ip_id, src, dst, &[&self.msg]),
            Transport::Tcp => {
                let len = (self.msg.len().min(u16::MAX as usize) as u16).to_be_bytes();
                build_tcp(
                    &mut self.frame,
                    &mut self.ip_id,
                    src,
                    dst,
                    1,
                    1,
                    tcp_flags::PSH | tcp_flags::ACK,
                    &[&len, &self.msg],
                )
            }
        }
        &self.frame
    }
}

// ---------------------------------------------------------------- DNS ----

fn write_header(m: &mut Vec<u8>, id: u16, flags: u16, qd: u16, an: u16, ar: u16) {
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&qd.to_be_bytes());
    m.extend_from_slice(&an.to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes()); // nscount
    m.extend_from_slice(&ar.to_be_bytes());
}

/// Appends `name` (presentation format, `\.`, `\\` and `\DDD` escapes,
/// optional trailing dot) in uncompressed wire format.
fn write_name(m: &mut Vec<u8>, name: &str) {
    let start = m.len();
    let b = name.as_bytes();
    if b.is_empty() || b == b"." {
        m.push(0);
        return;
    }
    let mut len_at = m.len();
    m.push(0);
    let mut open = true;
    let mut i = 0;
    while i < b.len() {
        if !open {
            len_at = m.len();
            m.push(0);
            open = true;
        }
        match b[i] {
            b'.' => {
                close_label(m, len_at, name);
                open = false;
                i += 1;
            }
            b'\\' if i + 4 <= b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) => {
                let v = (b[i + 1] - b'0') as u16 * 100
                    + (b[i + 2] - b'0') as u16 * 10
                    + (b[i + 3] - b'0') as u16;
                assert!(v <= 255, "bad \\DDD escape in {name:?}");
                m.push(v as u8);
                i += 4;
            }
            b'\\' if i + 1 < b.len() => {
                m.push(b[i + 1]);
                i += 2;
            }
            c => {
                m.push(c);
                i += 1;
            }
        }
    }
    if open {
        close_label(m, len_at, name);
    }
    m.push(0);
    assert!(
        m.len() - start <= 255,
        "name {name:?} is longer than 255 bytes"
    );
}

fn close_label(m: &mut [u8], len_at: usize, name: &str) {
    let n = m.len() - len_at - 1;
    assert!(n > 0, "empty label in {name:?}");
    assert!(n <= 63, "label longer than 63 bytes in {name:?}");
    m[len_at] = n as u8;
}

fn write_question(m: &mut Vec<u8>, qname: &str, qtype: u16) {
    write_name(m, qname);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes()); // class IN
}

/// OPT pseudo-record header: root owner, type 41, class = UDP size, TTL 0.
fn write_opt(m: &mut Vec<u8>, rdlen: u16) {
    m.push(0);
    m.extend_from_slice(&qtype::OPT.to_be_bytes());
    m.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&rdlen.to_be_bytes());
}

fn write_query(m: &mut Vec<u8>, id: u16, qname: &str, qtype: u16, edns: bool) {
    m.clear();
    write_header(m, id, 0x0100, 1, 0, edns as u16);
    write_question(m, qname, qtype);
    if edns {
        write_opt(m, 0);
    }
}

fn write_response(
    m: &mut Vec<u8>,
    id: u16,
    qname: &str,
    qtype: u16,
    rcode: u8,
    answers: &[IpAddr],
    pad_to: usize,
) {
    m.clear();
    let flags = 0x8180 | (rcode & 0x0f) as u16;
    let an = answers.len().min(u16::MAX as usize) as u16;
    write_header(m, id, flags, 1, an, 0);
    write_question(m, qname, qtype);
    for a in &answers[..an as usize] {
        m.extend_from_slice(&[0xc0, 0x0c]); // pointer to the question name
        let (t, data): (u16, &[u8]) = match a {
            IpAddr::V4(v4) => (qtype::A, &v4.octets()[..]),
            IpAddr::V6(v6) => (qtype::AAAA, &v6.octets()[..]),
        };
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&ANSWER_TTL.to_be_bytes());
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(data);
    }
    let pad_to = pad_to.min(MAX_DNS_LEN);
    if pad_to > m.len() {
        // OPT RR (11 bytes) + option header (4 bytes) + padding
        let pad = pad_to.saturating_sub(m.len() + 15);
        write_opt(m, (4 + pad) as u16);
        m.extend_from_slice(&12u16.to_be_bytes()); // option code: Padding
        m.extend_from_slice(&(pad as u16).to_be_bytes());
        m.resize(m.len() + pad, 0);
        m[10..12].copy_from_slice(&1u16.to_be_bytes()); // arcount
    }
}

// ------------------------------------------------------------- frames ----

fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u32) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Writes Ethernet + IP headers for an L4 segment of `l4_len` bytes and
/// returns the partial pseudo-header sum for the L4 checksum.
fn write_l2_l3(
    f: &mut Vec<u8>,
    ip_id: &mut u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    l4_len: usize,
) -> u32 {
    f.clear();
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let total = (IPV4_LEN + l4_len).min(u16::MAX as usize) as u16;
            let ip = f.len();
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&total.to_be_bytes());
            f.extend_from_slice(&ip_id.to_be_bytes());
            *ip_id = ip_id.wrapping_add(1);
            f.extend_from_slice(&0x4000u16.to_be_bytes()); // DF, offset 0
            f.extend_from_slice(&[64, proto, 0, 0]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
            let ck = fold(sum16(0, &f[ip..ip + IPV4_LEN]));
            f[ip + 10..ip + 12].copy_from_slice(&ck.to_be_bytes());
            let acc = sum16(0, &s.octets());
            sum16(acc, &d.octets()) + proto as u32 + l4_len as u32
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            f.extend_from_slice(&0x6000_0000u32.to_be_bytes());
            f.extend_from_slice(&(l4_len as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
            let acc = sum16(0, &s.octets());
            let len = l4_len as u32;
            sum16(acc, &d.octets()) + (len >> 16) + (len & 0xffff) + proto as u32
        }
        _ => panic!("synth: source {src} and destination {dst} differ in address family"),
    }
}

fn build_udp(
    f: &mut Vec<u8>,
    ip_id: &mut u16,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[&[u8]],
) {
    let plen: usize = payload.iter().map(|p| p.len()).sum();
    let l4_len = UDP_LEN + plen;
    let pseudo = write_l2_l3(f, ip_id, src.ip(), dst.ip(), PROTO_UDP, l4_len);
    let udp = f.len();
    f.extend_from_slice(&src.port().to_be_bytes());
    f.extend_from_slice(&dst.port().to_be_bytes());
    f.extend_from_slice(&(l4_len.min(u16::MAX as usize) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    for p in payload {
        f.extend_from_slice(p);
    }
    let mut ck = fold(sum16(pseudo, &f[udp..]));
    if ck == 0 {
        ck = 0xffff;
    }
    f[udp + 6..udp + 8].copy_from_slice(&ck.to_be_bytes());
}

#[allow(clippy::too_many_arguments)]
fn build_tcp(
    f: &mut Vec<u8>,
    ip_id: &mut u16,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[&[u8]],
) {
    let plen: usize = payload.iter().map(|p| p.len()).sum();
    let l4_len = TCP_LEN + plen;
    let pseudo = write_l2_l3(f, ip_id, src.ip(), dst.ip(), PROTO_TCP, l4_len);
    let tcp = f.len();
    f.extend_from_slice(&src.port().to_be_bytes());
    f.extend_from_slice(&dst.port().to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[(TCP_LEN as u8 / 4) << 4, flags]);
    f.extend_from_slice(&0xffffu16.to_be_bytes()); // window
    f.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    for p in payload {
        f.extend_from_slice(p);
    }
    let ck = fold(sum16(pseudo, &f[tcp..]));
    f[tcp + 16..tcp + 18].copy_from_slice(&ck.to_be_bytes());
}
