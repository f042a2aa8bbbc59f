//! Packet layer: link-layer framing, IPv4/IPv6 (extension headers), fragment
//! reassembly and TCP stream reassembly, turning captured frames into DNS
//! payloads. Owns every bound on packet state (fragment table, TCP flows).
//! Must not decode DNS and must not read the wall clock: all time is the
//! packet's capture timestamp.

use std::net::IpAddr;

mod aged;
pub mod fragments;
/// The inverse of the decoder: frames built around hand-written DNS
/// messages, for the tests here and the traffic generator (crates/synth).
pub mod frame;
pub mod ip;
pub mod link;
pub mod spec;
pub mod tcp;

mod decoder;
pub use decoder::{PacketConfig, PacketDecoder, PacketStats};

/// Transport a DNS message was carried over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// One DNS message's bytes with its addressing, borrowed from the packet
/// (or from a reassembly buffer) for the duration of a callback.
#[derive(Clone, Copy, Debug)]
pub struct Payload<'a> {
    /// Capture timestamp, microseconds since the Unix epoch.
    pub ts_us: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub transport: Transport,
    /// The DNS message (for TCP: without the 2-byte length prefix).
    pub data: &'a [u8],
}

/// Why a frame produced no DNS payload. Small and `Copy`; `as_str()` is the
/// `reason` used in the summary and (later) the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PacketError {
    /// Link type this build does not decode.
    UnsupportedLinktype,
    /// Frame shorter than its link header.
    TruncatedLink,
    /// IPv4/IPv6 header truncated or inconsistent (bad IHL, length).
    TruncatedIp,
    /// IP version nibble neither 4 nor 6.
    BadIpVersion,
    /// UDP header truncated or length field inconsistent.
    TruncatedUdp,
    /// TCP header truncated or data offset inconsistent.
    TruncatedTcp,
    /// Fragment rejected: overlapping, over `MAX_DATAGRAM_BYTES`, or table full.
    BadFragment,
    /// TCP stream state rejected (oversized message, buffer cap exceeded).
    TcpStream,
}

impl PacketError {
    pub const ALL: [PacketError; 8] = [
        PacketError::UnsupportedLinktype,
        PacketError::TruncatedLink,
        PacketError::TruncatedIp,
        PacketError::BadIpVersion,
        PacketError::TruncatedUdp,
        PacketError::TruncatedTcp,
        PacketError::BadFragment,
        PacketError::TcpStream,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PacketError::UnsupportedLinktype => "unsupported_linktype",
            PacketError::TruncatedLink => "truncated_link",
            PacketError::TruncatedIp => "truncated_ip",
            PacketError::BadIpVersion => "bad_ip_version",
            PacketError::TruncatedUdp => "truncated_udp",
            PacketError::TruncatedTcp => "truncated_tcp",
            PacketError::BadFragment => "bad_fragment",
            PacketError::TcpStream => "tcp_stream",
        }
    }
}
