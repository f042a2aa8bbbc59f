//! IPv4 and IPv6 headers, including IPv6 extension headers. Returns the
//! addresses, the upper-layer protocol and its bytes, plus the fragment
//! fields when the packet is a fragment (reassembly is in `fragments`).
//!
//! Lengths: the header's length field (IPv4 total length, IPv6 payload
//! length) bounds the payload, which cuts off Ethernet padding; when the
//! capture holds fewer bytes than declared (snaplen) the payload is the
//! captured part and [`IpPacket::truncated`] says so. A length field smaller
//! than the header itself is inconsistent (`TruncatedIp`). A length field of
//! zero (TCP segmentation offload captures, IPv6 jumbograms) means "as
//! captured".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::PacketError;
use super::link::{IpHint, Network};

pub const IPPROTO_HOPOPTS: u8 = 0;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ROUTING: u8 = 43;
pub const IPPROTO_FRAGMENT: u8 = 44;
pub const IPPROTO_AH: u8 = 51;
pub const IPPROTO_NONE: u8 = 59;
pub const IPPROTO_DSTOPTS: u8 = 60;

pub const IPV4_MIN_HEADER_LEN: usize = 20;
pub const IPV6_HEADER_LEN: usize = 40;
pub const IPV6_FRAGMENT_HEADER_LEN: usize = 8;
/// Most IPv6 extension headers walked before giving up (`TruncatedIp`).
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// IPv4 flags/fragment-offset word: "more fragments" bit.
const IPV4_MF: u16 = 0x2000;
/// IPv4 flags/fragment-offset word: offset in 8-byte units.
const IPV4_OFFSET_MASK: u16 = 0x1fff;
/// IPv6 fragment header offset word: offset already in bytes (13 bits << 3).
const IPV6_OFFSET_MASK: u16 = 0xfff8;
const IPV6_MF: u16 = 0x0001;

/// Fragment fields of a packet that is one piece of a larger datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 fragment identification.
    pub id: u32,
    /// Byte offset of this piece in the reassembled payload.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
}

/// A parsed IP packet.
#[derive(Clone, Copy, Debug)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol after any extension headers; for a fragment, the
    /// protocol (IPv4) or fragment-header next header (IPv6) of the datagram.
    pub protocol: u8,
    /// The captured bytes of the upper-layer payload (or of the fragment).
    pub payload: &'a [u8],
    /// Payload length the IP header declares; larger than `payload.len()`
    /// when the capture was cut short.
    pub declared_len: usize,
    pub fragment: Option<Fragment>,
}

impl IpPacket<'_> {
    /// The capture holds fewer payload bytes than the header declares.
    pub fn truncated(&self) -> bool {
        self.payload.len() < self.declared_len
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..)? {
        [x, y, ..] => Some(u16::from_be_bytes([*x, *y])),
        _ => None,
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..)? {
        [w, x, y, z, ..] => Some(u32::from_be_bytes([*w, *x, *y, *z])),
        _ => None,
    }
}

/// Parses the IP header of network-layer bytes.
pub fn parse(net: Network<'_>) -> Result<IpPacket<'_>, PacketError> {
    let first = *net.bytes.first().ok_or(PacketError::TruncatedIp)?;
    match (first >> 4, net.hint) {
        (4, IpHint::V4 | IpHint::Any) => parse_v4(net.bytes),
        (6, IpHint::V6 | IpHint::Any) => parse_v6(net.bytes),
        _ => Err(PacketError::BadIpVersion),
    }
}

fn parse_v4(b: &[u8]) -> Result<IpPacket<'_>, PacketError> {
    let header: &[u8; IPV4_MIN_HEADER_LEN] = b
        .get(..IPV4_MIN_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(PacketError::TruncatedIp)?;
    let ihl = usize::from(header[0] & 0x0f) * 4;
    if ihl < IPV4_MIN_HEADER_LEN || ihl > b.len() {
        return Err(PacketError::TruncatedIp);
    }
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let total = if total == 0 { b.len() } else { total };
    if total < ihl {
        return Err(PacketError::TruncatedIp);
    }
    let end = total.min(b.len());
    let payload = b.get(ihl..end).ok_or(PacketError::TruncatedIp)?;
    let id = u16::from_be_bytes([header[4], header[5]]);
    let flags = u16::from_be_bytes([header[6], header[7]]);
    let offset = usize::from(flags & IPV4_OFFSET_MASK) * 8;
    let more = flags & IPV4_MF != 0;
    let fragment = (more || offset != 0).then_some(Fragment {
        id: u32::from(id),
        offset,
        more,
    });
    let src = Ipv4Addr::new(header[12], header[13], header[14], header[15]);
    let dst = Ipv4Addr::new(header[16], header[17], header[18], header[19]);
    Ok(IpPacket {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        protocol: header[9],
        payload,
        declared_len: total - ihl,
        fragment,
    })
}

fn parse_v6(b: &[u8]) -> Result<IpPacket<'_>, PacketError> {
    let header: &[u8; IPV6_HEADER_LEN] = b
        .get(..IPV6_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(PacketError::TruncatedIp)?;
    let plen = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let after = b.get(IPV6_HEADER_LEN..).unwrap_or_default();
    let declared = if plen == 0 { after.len() } else { plen };
    let avail = after.get(..declared.min(after.len())).unwrap_or_default();
    let mut src = [0u8; 16];
    src.copy_from_slice(&header[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&header[24..40]);
    let walk = walk_ext(header[6], avail, true)?;
    Ok(IpPacket {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        protocol: walk.protocol,
        payload: walk.payload,
        declared_len: declared.saturating_sub(walk.consumed),
        fragment: walk.fragment,
    })
}

/// Result of walking IPv6 extension headers.
#[derive(Clone, Copy, Debug)]
pub struct ExtWalk<'a> {
    pub protocol: u8,
    pub payload: &'a [u8],
    /// Extension-header bytes skipped.
    pub consumed: usize,
    pub fragment: Option<Fragment>,
}

/// Skips the extension headers that start `bytes` (the first one of type
/// `next`), up to [`MAX_IPV6_EXT_HEADERS`]. Used on the reassembled payload
/// of an IPv6 datagram, whose fragmentable part may begin with destination
/// options; a second fragment header there is returned as the protocol
/// (not transport) and so dropped as not DNS.
pub fn skip_ipv6_ext(next: u8, bytes: &[u8]) -> Result<ExtWalk<'_>, PacketError> {
    walk_ext(next, bytes, false)
}

fn walk_ext(mut next: u8, bytes: &[u8], allow_fragment: bool) -> Result<ExtWalk<'_>, PacketError> {
    let mut rest = bytes;
    let mut consumed = 0usize;
    let mut fragment = None;
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        let len = match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                (usize::from(*rest.get(1).ok_or(PacketError::TruncatedIp)?) + 1) * 8
            }
            IPPROTO_AH => (usize::from(*rest.get(1).ok_or(PacketError::TruncatedIp)?) + 2) * 4,
            IPPROTO_FRAGMENT if allow_fragment => {
                let word = be16(rest, 2).ok_or(PacketError::TruncatedIp)?;
                let id = be32(rest, 4).ok_or(PacketError::TruncatedIp)?;
                let offset = usize::from(word & IPV6_OFFSET_MASK);
                let more = word & IPV6_MF != 0;
                let inner = *rest.first().ok_or(PacketError::TruncatedIp)?;
                let after = rest
                    .get(IPV6_FRAGMENT_HEADER_LEN..)
                    .ok_or(PacketError::TruncatedIp)?;
                consumed += IPV6_FRAGMENT_HEADER_LEN;
                if offset == 0 && !more {
                    // Atomic fragment (RFC 6946): process as unfragmented.
                    next = inner;
                    rest = after;
                    continue;
                }
                fragment = Some(Fragment { id, offset, more });
                return Ok(ExtWalk {
                    protocol: inner,
                    payload: after,
                    consumed,
                    fragment,
                });
            }
            _ => {
                return Ok(ExtWalk {
                    protocol: next,
                    payload: rest,
                    consumed,
                    fragment,
                });
            }
        };
        next = *rest.first().ok_or(PacketError::TruncatedIp)?;
        rest = rest.get(len..).ok_or(PacketError::TruncatedIp)?;
        consumed += len;
    }
    Err(PacketError::TruncatedIp)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// IPv4 header (checksum left zero: never verified) with `options`.
    pub(crate) fn ipv4(
        src: [u8; 4],
        dst: [u8; 4],
        protocol: u8,
        id: u16,
        frag_word: u16,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let ihl = 20 + options.len();
        let total = (ihl + payload.len()) as u16;
        let mut p = vec![0x40 | (ihl / 4) as u8, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&frag_word.to_be_bytes());
        p.extend_from_slice(&[64, protocol, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(options);
        p.extend_from_slice(payload);
        p
    }

    /// IPv6 header followed by `rest` (extension headers + payload).
    pub(crate) fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(rest);
        p
    }

    /// A generic 8-byte extension header (hop-by-hop, routing, dst options).
    pub(crate) fn ext8(next: u8) -> Vec<u8> {
        vec![next, 0, 1, 4, 0, 0, 0, 0]
    }

    pub(crate) fn frag6(next: u8, offset: usize, more: bool, id: u32) -> Vec<u8> {
        let word = (offset as u16 & IPV6_OFFSET_MASK) | u16::from(more);
        let mut h = vec![next, 0];
        h.extend_from_slice(&word.to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h
    }

    fn any(b: &[u8]) -> Result<IpPacket<'_>, PacketError> {
        parse(Network {
            hint: IpHint::Any,
            bytes: b,
        })
    }

    #[test]
    fn ipv4_plain_options_and_padding() {
        let p = ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, 7, 0, &[], b"abcdefgh");
        let ip = any(&p).unwrap();
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ip.protocol, 17);
        assert_eq!(ip.payload, b"abcdefgh");
        assert!(ip.fragment.is_none());
        assert!(!ip.truncated());
        // Options (NOP NOP NOP EOL) are skipped.
        let p = ipv4([1; 4], [2; 4], 6, 7, 0, &[1, 1, 1, 0], b"xyz");
        assert_eq!(any(&p).unwrap().payload, b"xyz");
        // Ethernet padding beyond total length is cut off.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0; 20]);
        assert_eq!(any(&padded).unwrap().payload, b"xyz");
        // Snaplen cut: captured part, flagged truncated.
        let ip = any(&p[..p.len() - 1]).unwrap();
        assert_eq!(ip.payload, b"xy");
        assert!(ip.truncated());
    }

    #[test]
    fn ipv4_bad_headers() {
        let p = ipv4([1; 4], [2; 4], 17, 1, 0, &[], b"abc");
        let mut bad = p.clone();
        bad[0] = 0x44; // IHL 16 bytes
        assert_eq!(any(&bad).unwrap_err(), PacketError::TruncatedIp);
        let mut bad = p.clone();
        bad[0] = 0x4f; // IHL 60 bytes, beyond the frame
        assert_eq!(any(&bad).unwrap_err(), PacketError::TruncatedIp);
        let mut bad = p.clone();
        bad[2..4].copy_from_slice(&10u16.to_be_bytes()); // total < IHL
        assert_eq!(any(&bad).unwrap_err(), PacketError::TruncatedIp);
        assert_eq!(any(&p[..19]).unwrap_err(), PacketError::TruncatedIp);
        assert_eq!(any(&[]).unwrap_err(), PacketError::TruncatedIp);
        let mut bad = p.clone();
        bad[0] = 0x55;
        assert_eq!(any(&bad).unwrap_err(), PacketError::BadIpVersion);
        let v6_hint = Network {
            hint: IpHint::V6,
            bytes: &p,
        };
        assert_eq!(parse(v6_hint).unwrap_err(), PacketError::BadIpVersion);
    }

    #[test]
    fn ipv4_fragment_fields() {
        let p = ipv4([1; 4], [2; 4], 17, 0x1234, IPV4_MF | 3, &[], b"12345678");
        let f = any(&p).unwrap().fragment.unwrap();
        assert_eq!(
            f,
            Fragment {
                id: 0x1234,
                offset: 24,
                more: true
            }
        );
        // DF alone is not a fragment.
        let p = ipv4([1; 4], [2; 4], 17, 1, 0x4000, &[], b"x");
        assert!(any(&p).unwrap().fragment.is_none());
    }

    #[test]
    fn ipv6_extension_headers() {
        let mut rest = ext8(IPPROTO_ROUTING); // hop-by-hop -> routing
        rest.extend(ext8(IPPROTO_AH)); // routing -> AH
        rest.extend([IPPROTO_DSTOPTS, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // AH (12 bytes) -> dst opts
        rest.extend(ext8(IPPROTO_UDP)); // dst opts -> UDP
        rest.extend_from_slice(b"udpdata!");
        let p = ipv6([1; 16], [2; 16], IPPROTO_HOPOPTS, &rest);
        let ip = any(&p).unwrap();
        assert_eq!(ip.protocol, IPPROTO_UDP);
        assert_eq!(ip.payload, b"udpdata!");
        assert_eq!(ip.declared_len, 8);
        assert!(ip.fragment.is_none());
        // Extension header running past the end.
        let p = ipv6([1; 16], [2; 16], IPPROTO_HOPOPTS, &[17, 3, 0, 0]);
        assert_eq!(any(&p).unwrap_err(), PacketError::TruncatedIp);
        // Too many extension headers.
        let mut rest = Vec::new();
        for _ in 0..=MAX_IPV6_EXT_HEADERS {
            rest.extend(ext8(IPPROTO_DSTOPTS));
        }
        let p = ipv6([1; 16], [2; 16], IPPROTO_DSTOPTS, &rest);
        assert_eq!(any(&p).unwrap_err(), PacketError::TruncatedIp);
        assert_eq!(any(&p[..39]).unwrap_err(), PacketError::TruncatedIp);
    }

    #[test]
    fn ipv6_fragment_header() {
        let mut rest = ext8(IPPROTO_FRAGMENT);
        rest.extend(frag6(IPPROTO_UDP, 1232, true, 0xdeadbeef));
        rest.extend_from_slice(b"fragdata");
        let p = ipv6([1; 16], [2; 16], IPPROTO_HOPOPTS, &rest);
        let ip = any(&p).unwrap();
        assert_eq!(ip.protocol, IPPROTO_UDP);
        assert_eq!(ip.payload, b"fragdata");
        assert_eq!(
            ip.fragment,
            Some(Fragment {
                id: 0xdeadbeef,
                offset: 1232,
                more: true
            })
        );
        // Atomic fragment: treated as unfragmented.
        let mut rest = frag6(IPPROTO_UDP, 0, false, 9);
        rest.extend_from_slice(b"whole");
        let p = ipv6([1; 16], [2; 16], IPPROTO_FRAGMENT, &rest);
        let ip = any(&p).unwrap();
        assert!(ip.fragment.is_none());
        assert_eq!(ip.payload, b"whole");
        assert_eq!(ip.protocol, IPPROTO_UDP);
    }

    #[test]
    fn ipv6_payload_length_bounds() {
        let mut p = ipv6([1; 16], [2; 16], IPPROTO_UDP, b"12345678");
        p.extend_from_slice(&[0; 6]); // padding
        let ip = any(&p).unwrap();
        assert_eq!(ip.payload, b"12345678");
        let ip = any(&p[..44]).unwrap();
        assert!(ip.truncated());
        assert_eq!(ip.payload, b"1234");
    }
}
