//! Link layer: strips the link header of a captured frame and returns the
//! network-layer bytes when they are IPv4 or IPv6.
//!
//! Supported pcap link types (`LINKTYPE_*` numbers as stored in the file):
//! BSD loopback (`DLT_NULL` 0, `DLT_LOOP` 108), Ethernet (1), raw IP
//! (12, 14, 101), raw IPv4 (228), raw IPv6 (229), Linux cooked capture v1
//! (113) and v2 (276). Behind an EtherType (Ethernet and Linux cooked) it
//! follows 802.1Q / 802.1ad / QinQ tags (up to [`MAX_VLAN_TAGS`]), PPPoE
//! sessions and MPLS label stacks (up to [`MAX_MPLS_LABELS`]).

use super::PacketError;

pub const DLT_NULL: i32 = 0;
pub const DLT_EN10MB: i32 = 1;
/// `DLT_RAW` as numbered on most BSDs.
pub const DLT_RAW_12: i32 = 12;
/// `DLT_RAW` as numbered on OpenBSD.
pub const DLT_RAW_14: i32 = 14;
pub const LINKTYPE_RAW: i32 = 101;
pub const DLT_LOOP: i32 = 108;
pub const LINKTYPE_LINUX_SLL: i32 = 113;
pub const LINKTYPE_IPV4: i32 = 228;
pub const LINKTYPE_IPV6: i32 = 229;
pub const LINKTYPE_LINUX_SLL2: i32 = 276;

/// Every link type [`network_layer`] decodes.
pub const SUPPORTED_LINKTYPES: [i32; 10] = [
    DLT_NULL,
    DLT_EN10MB,
    DLT_RAW_12,
    DLT_RAW_14,
    LINKTYPE_RAW,
    DLT_LOOP,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL2,
];

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service tag (QinQ outer tag).
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Pre-standard QinQ outer tag.
pub const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// PPPoE session stage (discovery, 0x8863, carries no IP).
pub const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
pub const ETHERTYPE_MPLS_UNICAST: u16 = 0x8847;
pub const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
/// PPP protocol numbers inside a PPPoE session.
pub const PPP_IPV4: u16 = 0x0021;
pub const PPP_IPV6: u16 = 0x0057;
/// PPPoE header (version/type, code, session id, length) plus the PPP
/// protocol field.
pub const PPPOE_HEADER_LEN: usize = 8;
/// One MPLS label stack entry.
pub const MPLS_LABEL_LEN: usize = 4;
/// Most MPLS labels followed before giving up (`TruncatedLink`).
pub const MAX_MPLS_LABELS: usize = 8;

/// Ethernet header without tags: two MACs and the EtherType.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// One 802.1Q/802.1ad tag: TCI then the inner EtherType.
pub const VLAN_TAG_LEN: usize = 4;
/// Most VLAN tags followed before giving up (`TruncatedLink`).
pub const MAX_VLAN_TAGS: usize = 8;
/// BSD loopback header: the address family as a 32-bit word.
pub const NULL_HEADER_LEN: usize = 4;
/// Linux cooked capture v1 header; protocol (EtherType) at offset 14.
pub const SLL_HEADER_LEN: usize = 16;
pub const SLL_PROTOCOL_OFFSET: usize = 14;
/// Linux cooked capture v2 header; protocol (EtherType) at offset 0.
pub const SLL2_HEADER_LEN: usize = 20;
pub const SLL2_PROTOCOL_OFFSET: usize = 0;

/// BSD address family numbers found in `DLT_NULL`/`DLT_LOOP` headers.
pub const BSD_AF_INET: u32 = 2;
/// NetBSD/OpenBSD, FreeBSD and Darwin values of `AF_INET6`.
pub const BSD_AF_INET6: [u32; 3] = [24, 28, 30];

/// Which IP version the link header announced, if it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpHint {
    V4,
    V6,
    /// Raw IP link types: the version nibble decides.
    Any,
}

/// Network-layer bytes of a frame.
#[derive(Clone, Copy, Debug)]
pub struct Network<'a> {
    pub hint: IpHint,
    pub bytes: &'a [u8],
}

/// Strips the link header. `Ok(None)` means a valid frame that does not carry
/// IP (ARP, LLDP, 802.3/LLC...), which the caller counts as `not_dns`.
pub fn network_layer(linktype: i32, frame: &[u8]) -> Result<Option<Network<'_>>, PacketError> {
    match linktype {
        DLT_NULL | DLT_LOOP => null_loop(frame),
        DLT_EN10MB => ethernet(frame),
        DLT_RAW_12 | DLT_RAW_14 | LINKTYPE_RAW => Ok(Some(Network {
            hint: IpHint::Any,
            bytes: frame,
        })),
        LINKTYPE_IPV4 => Ok(Some(Network {
            hint: IpHint::V4,
            bytes: frame,
        })),
        LINKTYPE_IPV6 => Ok(Some(Network {
            hint: IpHint::V6,
            bytes: frame,
        })),
        LINKTYPE_LINUX_SLL => cooked(frame, SLL_HEADER_LEN, SLL_PROTOCOL_OFFSET),
        LINKTYPE_LINUX_SLL2 => cooked(frame, SLL2_HEADER_LEN, SLL2_PROTOCOL_OFFSET),
        _ => Err(PacketError::UnsupportedLinktype),
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

/// Follows VLAN tags, PPPoE and MPLS from `ethertype` (whose payload is
/// `rest`) down to IP.
fn from_ethertype(mut ethertype: u16, mut rest: &[u8]) -> Result<Option<Network<'_>>, PacketError> {
    let mut tags = 0usize;
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(PacketError::TruncatedLink);
        }
        ethertype = be16(rest, 2).ok_or(PacketError::TruncatedLink)?;
        rest = rest.get(VLAN_TAG_LEN..).ok_or(PacketError::TruncatedLink)?;
    }
    let hint = match ethertype {
        ETHERTYPE_IPV4 => IpHint::V4,
        ETHERTYPE_IPV6 => IpHint::V6,
        ETHERTYPE_PPPOE_SESSION => {
            let proto = be16(rest, 6).ok_or(PacketError::TruncatedLink)?;
            rest = rest
                .get(PPPOE_HEADER_LEN..)
                .ok_or(PacketError::TruncatedLink)?;
            match proto {
                PPP_IPV4 => IpHint::V4,
                PPP_IPV6 => IpHint::V6,
                _ => return Ok(None),
            }
        }
        ETHERTYPE_MPLS_UNICAST | ETHERTYPE_MPLS_MULTICAST => {
            let mut labels = 0usize;
            loop {
                labels += 1;
                let bottom = *rest.get(2).ok_or(PacketError::TruncatedLink)? & 1 != 0;
                rest = rest
                    .get(MPLS_LABEL_LEN..)
                    .ok_or(PacketError::TruncatedLink)?;
                if bottom {
                    break;
                }
                if labels >= MAX_MPLS_LABELS {
                    return Err(PacketError::TruncatedLink);
                }
            }
            // No protocol field after MPLS: the version nibble decides;
            // anything else (pseudowires) is not IP.
            match rest.first().map(|b| b >> 4) {
                Some(4 | 6) => IpHint::Any,
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(Network { hint, bytes: rest }))
}

/// BSD loopback: the family is a 32-bit word in the capturing host's byte
/// order (`DLT_NULL`) or network order (`DLT_LOOP`, though some writers use
/// host order there too), so both byte orders are accepted.
fn null_loop(frame: &[u8]) -> Result<Option<Network<'_>>, PacketError> {
    let [a, b, c, d, rest @ ..] = frame else {
        return Err(PacketError::TruncatedLink);
    };
    let le = u32::from_le_bytes([*a, *b, *c, *d]);
    let be = u32::from_be_bytes([*a, *b, *c, *d]);
    // The real family is a small number; the other byte order puts it in
    // the top byte.
    let family = le.min(be);
    let hint = if family == BSD_AF_INET {
        IpHint::V4
    } else if BSD_AF_INET6.contains(&family) {
        IpHint::V6
    } else {
        return Ok(None);
    };
    Ok(Some(Network { hint, bytes: rest }))
}

fn ethernet(frame: &[u8]) -> Result<Option<Network<'_>>, PacketError> {
    let ethertype = be16(frame, 12).ok_or(PacketError::TruncatedLink)?;
    let rest = frame
        .get(ETHERNET_HEADER_LEN..)
        .ok_or(PacketError::TruncatedLink)?;
    from_ethertype(ethertype, rest)
}

fn cooked(
    frame: &[u8],
    header_len: usize,
    proto_at: usize,
) -> Result<Option<Network<'_>>, PacketError> {
    let rest = frame.get(header_len..).ok_or(PacketError::TruncatedLink)?;
    let ethertype = be16(frame, proto_at).ok_or(PacketError::TruncatedLink)?;
    from_ethertype(ethertype, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP4: [u8; 4] = [0x45, 0, 0, 20];

    fn net(linktype: i32, frame: &[u8]) -> (IpHint, Vec<u8>) {
        let n = network_layer(linktype, frame).unwrap().unwrap();
        (n.hint, n.bytes.to_vec())
    }

    #[test]
    fn null_and_loop_both_byte_orders() {
        for lt in [DLT_NULL, DLT_LOOP] {
            let mut le = vec![2, 0, 0, 0];
            le.extend_from_slice(&IP4);
            assert_eq!(net(lt, &le), (IpHint::V4, IP4.to_vec()));
            let mut be = vec![0, 0, 0, 2];
            be.extend_from_slice(&IP4);
            assert_eq!(net(lt, &be), (IpHint::V4, IP4.to_vec()));
            for af in BSD_AF_INET6 {
                let f = [af as u8, 0, 0, 0, 0x60];
                assert_eq!(net(lt, &f).0, IpHint::V6);
                let f = [0, 0, 0, af as u8, 0x60];
                assert_eq!(net(lt, &f).0, IpHint::V6);
            }
            // Unknown family: not IP, not an error.
            assert!(network_layer(lt, &[7, 0, 0, 0, 1]).unwrap().is_none());
            assert_eq!(
                network_layer(lt, &[2, 0, 0]).unwrap_err(),
                PacketError::TruncatedLink
            );
        }
    }

    fn eth(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xaa; 12];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0x00, 0x64]); // TCI
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn ethernet_plain_vlan_qinq() {
        let f = eth(&[], ETHERTYPE_IPV4, &IP4);
        assert_eq!(net(DLT_EN10MB, &f), (IpHint::V4, IP4.to_vec()));
        let f = eth(&[ETHERTYPE_VLAN], ETHERTYPE_IPV6, &IP4);
        assert_eq!(net(DLT_EN10MB, &f), (IpHint::V6, IP4.to_vec()));
        let f = eth(&[ETHERTYPE_QINQ, ETHERTYPE_VLAN], ETHERTYPE_IPV4, &IP4);
        assert_eq!(net(DLT_EN10MB, &f), (IpHint::V4, IP4.to_vec()));
        let f = eth(&[ETHERTYPE_QINQ_OLD, ETHERTYPE_VLAN], ETHERTYPE_IPV4, &IP4);
        assert_eq!(net(DLT_EN10MB, &f), (IpHint::V4, IP4.to_vec()));
        let tags = [ETHERTYPE_VLAN; MAX_VLAN_TAGS];
        let f = eth(&tags, ETHERTYPE_IPV4, &IP4);
        assert_eq!(net(DLT_EN10MB, &f).1, IP4.to_vec());
        let tags = [ETHERTYPE_VLAN; MAX_VLAN_TAGS + 1];
        let f = eth(&tags, ETHERTYPE_IPV4, &IP4);
        assert_eq!(
            network_layer(DLT_EN10MB, &f).unwrap_err(),
            PacketError::TruncatedLink
        );
        // ARP is not IP.
        let f = eth(&[ETHERTYPE_VLAN], 0x0806, &[0; 28]);
        assert!(network_layer(DLT_EN10MB, &f).unwrap().is_none());
        // Truncated inside a tag.
        let f = eth(&[ETHERTYPE_VLAN], ETHERTYPE_IPV4, &[]);
        assert_eq!(
            network_layer(DLT_EN10MB, &f[..16]).unwrap_err(),
            PacketError::TruncatedLink
        );
        assert_eq!(
            network_layer(DLT_EN10MB, &[0; 13]).unwrap_err(),
            PacketError::TruncatedLink
        );
    }

    #[test]
    fn pppoe_and_mpls() {
        let mut pppoe = vec![0x11, 0, 0x12, 0x34, 0, 6];
        pppoe.extend_from_slice(&PPP_IPV4.to_be_bytes());
        pppoe.extend_from_slice(&IP4);
        let f = eth(
            &[ETHERTYPE_VLAN, ETHERTYPE_VLAN],
            ETHERTYPE_PPPOE_SESSION,
            &pppoe,
        );
        assert_eq!(net(DLT_EN10MB, &f), (IpHint::V4, IP4.to_vec()));
        // LCP inside PPPoE: not IP.
        let lcp = [0x11, 0, 0x12, 0x34, 0, 6, 0xc0, 0x21, 1, 1];
        let f = eth(&[], ETHERTYPE_PPPOE_SESSION, &lcp);
        assert!(network_layer(DLT_EN10MB, &f).unwrap().is_none());
        let f = eth(&[], ETHERTYPE_PPPOE_SESSION, &lcp[..7]);
        assert_eq!(
            network_layer(DLT_EN10MB, &f).unwrap_err(),
            PacketError::TruncatedLink
        );
        // Two MPLS labels, bottom of stack on the second.
        let mut mpls = vec![0, 1, 0x00, 64, 0, 2, 0x01, 64];
        mpls.extend_from_slice(&IP4);
        let f = eth(&[], ETHERTYPE_MPLS_UNICAST, &mpls);
        assert_eq!(net(DLT_EN10MB, &f), (IpHint::Any, IP4.to_vec()));
        // Pseudowire (control word 0): not IP.
        let f = eth(&[], ETHERTYPE_MPLS_UNICAST, &[0, 1, 0x01, 64, 0, 0, 0, 0]);
        assert!(network_layer(DLT_EN10MB, &f).unwrap().is_none());
        // Label stack without a bottom.
        let f = eth(
            &[],
            ETHERTYPE_MPLS_UNICAST,
            &[0u8; 4 * (MAX_MPLS_LABELS + 1)],
        );
        assert_eq!(
            network_layer(DLT_EN10MB, &f).unwrap_err(),
            PacketError::TruncatedLink
        );
    }

    #[test]
    fn raw_ip_linktypes() {
        for lt in [DLT_RAW_12, DLT_RAW_14, LINKTYPE_RAW] {
            assert_eq!(net(lt, &IP4), (IpHint::Any, IP4.to_vec()));
        }
        assert_eq!(net(LINKTYPE_IPV4, &IP4).0, IpHint::V4);
        assert_eq!(net(LINKTYPE_IPV6, &IP4).0, IpHint::V6);
        // Empty raw frames reach the IP layer, which rejects them.
        assert_eq!(net(LINKTYPE_RAW, &[]).1, Vec::<u8>::new());
    }

    #[test]
    fn linux_cooked_v1_v2() {
        let mut sll = vec![0u8; SLL_HEADER_LEN];
        sll[14..16].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        sll.extend_from_slice(&IP4);
        assert_eq!(net(LINKTYPE_LINUX_SLL, &sll), (IpHint::V4, IP4.to_vec()));
        let mut sll2 = vec![0u8; SLL2_HEADER_LEN];
        sll2[0..2].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        sll2.extend_from_slice(&IP4);
        assert_eq!(net(LINKTYPE_LINUX_SLL2, &sll2), (IpHint::V6, IP4.to_vec()));
        assert_eq!(
            network_layer(LINKTYPE_LINUX_SLL, &[0; 15]).unwrap_err(),
            PacketError::TruncatedLink
        );
        assert_eq!(
            network_layer(LINKTYPE_LINUX_SLL2, &[0; 19]).unwrap_err(),
            PacketError::TruncatedLink
        );
        // Protocol 0x0004 (802.2 LLC): not IP.
        let mut llc = vec![0u8; SLL_HEADER_LEN];
        llc[15] = 4;
        assert!(network_layer(LINKTYPE_LINUX_SLL, &llc).unwrap().is_none());
    }

    #[test]
    fn unsupported() {
        assert_eq!(
            network_layer(9, &[0; 40]).unwrap_err(),
            PacketError::UnsupportedLinktype
        );
    }
}
