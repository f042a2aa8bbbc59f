//! The dnstap protobuf message (dnstap.proto, proto2) as hand-written
//! `prost` structs, and its mapping onto the DNS payload the packet path
//! produces. Fields this crate does not use (policy, HTTP protocol, zone)
//! are skipped by prost as unknown fields.
//!
//! Mapping: the query side (`query_address`/`query_port`) is the initiator
//! (the client, for CLIENT_*), the response side is the server. A query
//! goes from the query side to the response side, a response back. Time is
//! `query_time` for queries and `response_time` for responses (the other
//! one when that is missing). Nothing is guessed: a message without DNS
//! bytes, without a client address or without a time is counted under its
//! reason and skipped; a missing server address becomes the unspecified
//! address of the client's family (counted as `no_server_address`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::DnstapError;
use crate::packet::{Payload, Transport};

/// `Dnstap` (the outer message).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dnstap {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub identity: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub version: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub extra: Option<Vec<u8>>,
    #[prost(message, optional, tag = "14")]
    pub message: Option<Message>,
    /// `Dnstap.Type`: 1 = MESSAGE.
    #[prost(int32, required, tag = "15")]
    pub r#type: i32,
}

/// `Message`: one DNS message as the server saw it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// `Message.Type` (see [`MessageType`]).
    #[prost(int32, required, tag = "1")]
    pub r#type: i32,
    /// 1 = INET, 2 = INET6.
    #[prost(int32, optional, tag = "2")]
    pub socket_family: Option<i32>,
    /// 1 = UDP, 2 = TCP, 3 = DOT, 4 = DOH, 5/6 = DNSCrypt UDP/TCP, 7 = DOQ.
    #[prost(int32, optional, tag = "3")]
    pub socket_protocol: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub query_address: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub response_address: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "6")]
    pub query_port: Option<u32>,
    #[prost(uint32, optional, tag = "7")]
    pub response_port: Option<u32>,
    #[prost(uint64, optional, tag = "8")]
    pub query_time_sec: Option<u64>,
    #[prost(fixed32, optional, tag = "9")]
    pub query_time_nsec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "10")]
    pub query_message: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "12")]
    pub response_time_sec: Option<u64>,
    #[prost(fixed32, optional, tag = "13")]
    pub response_time_nsec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "14")]
    pub response_message: Option<Vec<u8>>,
}

/// `Message.Type`, plus `Other` for values this build does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    AuthQuery,
    AuthResponse,
    ResolverQuery,
    ResolverResponse,
    ClientQuery,
    ClientResponse,
    ForwarderQuery,
    ForwarderResponse,
    StubQuery,
    StubResponse,
    ToolQuery,
    ToolResponse,
    UpdateQuery,
    UpdateResponse,
    Other,
}

impl MessageType {
    pub const ALL: [MessageType; 15] = [
        MessageType::AuthQuery,
        MessageType::AuthResponse,
        MessageType::ResolverQuery,
        MessageType::ResolverResponse,
        MessageType::ClientQuery,
        MessageType::ClientResponse,
        MessageType::ForwarderQuery,
        MessageType::ForwarderResponse,
        MessageType::StubQuery,
        MessageType::StubResponse,
        MessageType::ToolQuery,
        MessageType::ToolResponse,
        MessageType::UpdateQuery,
        MessageType::UpdateResponse,
        MessageType::Other,
    ];

    pub fn from_i32(v: i32) -> Self {
        usize::try_from(v)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .filter(|&i| i < 14)
            .map_or(MessageType::Other, |i| MessageType::ALL[i])
    }

    /// Label value (`dnsmonitor_dnstap_messages_total{type}`).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::AuthQuery => "auth_query",
            MessageType::AuthResponse => "auth_response",
            MessageType::ResolverQuery => "resolver_query",
            MessageType::ResolverResponse => "resolver_response",
            MessageType::ClientQuery => "client_query",
            MessageType::ClientResponse => "client_response",
            MessageType::ForwarderQuery => "forwarder_query",
            MessageType::ForwarderResponse => "forwarder_response",
            MessageType::StubQuery => "stub_query",
            MessageType::StubResponse => "stub_response",
            MessageType::ToolQuery => "tool_query",
            MessageType::ToolResponse => "tool_response",
            MessageType::UpdateQuery => "update_query",
            MessageType::UpdateResponse => "update_response",
            MessageType::Other => "other",
        }
    }

    /// A response (its DNS bytes are `response_message`).
    pub fn is_response(self) -> bool {
        matches!(
            self,
            MessageType::AuthResponse
                | MessageType::ResolverResponse
                | MessageType::ClientResponse
                | MessageType::ForwarderResponse
                | MessageType::StubResponse
                | MessageType::ToolResponse
                | MessageType::UpdateResponse
        )
    }

    /// Traffic between clients and this server (CLIENT_*, AUTH_*): what the
    /// client detectors look at. RESOLVER_*/FORWARDER_* are the server's own
    /// upstream traffic; the rest is neither.
    pub fn is_client_side(self) -> bool {
        matches!(
            self,
            MessageType::ClientQuery
                | MessageType::ClientResponse
                | MessageType::AuthQuery
                | MessageType::AuthResponse
        )
    }

    /// The server's upstream traffic (RESOLVER_*, FORWARDER_*).
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            MessageType::ResolverQuery
                | MessageType::ResolverResponse
                | MessageType::ForwarderQuery
                | MessageType::ForwarderResponse
        )
    }
}

/// Decode the outer message (protobuf errors are `DnstapError::Protobuf`).
pub fn decode(frame: &[u8]) -> Result<Dnstap, DnstapError> {
    <Dnstap as prost::Message>::decode(frame).map_err(|_| DnstapError::Protobuf)
}

/// The inner message of a decoded frame, with its type.
pub fn inner(d: &Dnstap) -> Result<(&Message, MessageType), DnstapError> {
    let m = d.message.as_ref().ok_or(DnstapError::NoMessage)?;
    Ok((m, MessageType::from_i32(m.r#type)))
}

fn time_us(sec: Option<u64>, nsec: Option<u32>) -> Option<i64> {
    let sec = i64::try_from(sec?).ok()?;
    let us = i64::from(nsec.unwrap_or(0).min(999_999_999) / 1000);
    sec.checked_mul(1_000_000)?.checked_add(us)
}

/// The message's event time (µs since the epoch): see the module doc.
pub fn message_time_us(m: &Message, t: MessageType) -> Option<i64> {
    let q = || time_us(m.query_time_sec, m.query_time_nsec);
    let r = || time_us(m.response_time_sec, m.response_time_nsec);
    if t.is_response() {
        r().or_else(q)
    } else {
        q().or_else(r)
    }
}

/// Event time of a raw frame, `None` when it does not decode or has none.
pub fn frame_time_us(frame: &[u8]) -> Option<i64> {
    frame_time(frame).ok()
}

/// Event time of a raw frame, or why it has none.
pub fn frame_time(frame: &[u8]) -> Result<i64, DnstapError> {
    let d = decode(frame)?;
    let (m, t) = inner(&d)?;
    message_time_us(m, t).ok_or(DnstapError::NoTime)
}

fn address(b: Option<&Vec<u8>>) -> Option<IpAddr> {
    match b?.as_slice() {
        &[a, b, c, d] => Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d))),
        s if s.len() == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(s);
            Some(IpAddr::V6(Ipv6Addr::from(o)))
        }
        _ => None,
    }
}

fn port(p: Option<u32>) -> u16 {
    p.and_then(|p| u16::try_from(p).ok()).unwrap_or(0)
}

/// A message mapped onto a DNS payload, with what was missing.
pub struct Mapped<'a> {
    pub payload: Payload<'a>,
    /// The server address was absent (unspecified address used).
    pub no_server_address: bool,
}

/// Map a message of type `t` onto the payload the packet path produces.
pub fn to_payload(m: &Message, t: MessageType) -> Result<Mapped<'_>, DnstapError> {
    let dns = if t.is_response() {
        &m.response_message
    } else {
        &m.query_message
    };
    let dns = dns.as_deref().ok_or(DnstapError::NoDnsBytes)?;
    let ts_us = message_time_us(m, t).ok_or(DnstapError::NoTime)?;
    let client = address(m.query_address.as_ref()).ok_or(DnstapError::NoAddress)?;
    let server = address(m.response_address.as_ref());
    let no_server_address = server.is_none();
    let server = server.unwrap_or(match client {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let (cport, sport) = (port(m.query_port), port(m.response_port));
    // UDP and DNSCrypt-over-UDP are datagrams; everything else is a stream.
    let transport = match m.socket_protocol {
        Some(1) | Some(5) | None => Transport::Udp,
        Some(_) => Transport::Tcp,
    };
    let (src, sport_, dst, dport) = if t.is_response() {
        (server, sport, client, cport)
    } else {
        (client, cport, server, sport)
    };
    Ok(Mapped {
        payload: Payload {
            ts_us,
            src,
            dst,
            sport: sport_,
            dport,
            transport,
            data: dns,
        },
        no_server_address,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use prost::Message as _;

    /// A CLIENT_QUERY/RESPONSE frame from 127.0.0.9:4444 to 127.0.0.2:53.
    pub(crate) fn client_frame(t: MessageType, dns: &[u8], sec: u64) -> Vec<u8> {
        let resp = t.is_response();
        let m = Message {
            r#type: MessageType::ALL.iter().position(|x| *x == t).unwrap() as i32 + 1,
            socket_family: Some(1),
            socket_protocol: Some(1),
            query_address: Some(vec![127, 0, 0, 9]),
            response_address: Some(vec![127, 0, 0, 2]),
            query_port: Some(4444),
            response_port: Some(53),
            query_time_sec: (!resp).then_some(sec),
            query_time_nsec: (!resp).then_some(5_000),
            query_message: (!resp).then(|| dns.to_vec()),
            response_time_sec: resp.then_some(sec),
            response_time_nsec: resp.then_some(7_000),
            response_message: resp.then(|| dns.to_vec()),
        };
        Dnstap {
            identity: Some(b"test".to_vec()),
            version: None,
            extra: None,
            message: Some(m),
            r#type: 1,
        }
        .encode_to_vec()
    }

    #[test]
    fn client_query_and_response_map_both_ways() {
        let f = client_frame(MessageType::ClientQuery, b"QQ", 1_700_000_000);
        let d = decode(&f).unwrap();
        let (m, t) = inner(&d).unwrap();
        assert_eq!(t, MessageType::ClientQuery);
        let p = to_payload(m, t).unwrap().payload;
        assert_eq!(p.src.to_string(), "127.0.0.9");
        assert_eq!((p.sport, p.dport), (4444, 53));
        assert_eq!(p.ts_us, 1_700_000_000_000_005);
        assert_eq!(p.data, b"QQ");
        let f = client_frame(MessageType::ClientResponse, b"RR", 1_700_000_001);
        let d = decode(&f).unwrap();
        let (m, t) = inner(&d).unwrap();
        let p = to_payload(m, t).unwrap().payload;
        assert_eq!(
            (p.src.to_string(), p.dst.to_string()),
            ("127.0.0.2".into(), "127.0.0.9".into())
        );
        assert_eq!((p.sport, p.dport), (53, 4444));
        assert_eq!(p.ts_us, 1_700_000_001_000_007);
        assert_eq!(frame_time_us(&f), Some(1_700_000_001_000_007));
    }

    #[test]
    fn missing_fields_are_counted_not_guessed() {
        let mut m = Message {
            r#type: 5,
            ..Default::default()
        };
        assert_eq!(
            to_payload(&m, MessageType::ClientQuery).err(),
            Some(DnstapError::NoDnsBytes)
        );
        m.query_message = Some(vec![0; 12]);
        assert_eq!(
            to_payload(&m, MessageType::ClientQuery).err(),
            Some(DnstapError::NoTime)
        );
        m.query_time_sec = Some(5);
        assert_eq!(
            to_payload(&m, MessageType::ClientQuery).err(),
            Some(DnstapError::NoAddress)
        );
        m.query_address = Some(vec![1, 2, 3]);
        assert_eq!(
            to_payload(&m, MessageType::ClientQuery).err(),
            Some(DnstapError::NoAddress)
        );
        m.query_address = Some(vec![0; 16]);
        let got = to_payload(&m, MessageType::ClientQuery).unwrap();
        assert!(got.no_server_address);
        assert_eq!(got.payload.dst, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }

    #[test]
    fn garbage_is_a_protobuf_error_and_types_are_closed() {
        assert_eq!(decode(&[0xff; 7]).err(), Some(DnstapError::Protobuf));
        assert_eq!(MessageType::from_i32(0), MessageType::Other);
        assert_eq!(MessageType::from_i32(99), MessageType::Other);
        assert_eq!(MessageType::from_i32(-3), MessageType::Other);
        assert_eq!(MessageType::from_i32(6), MessageType::ClientResponse);
        assert!(MessageType::ResolverResponse.is_upstream());
        assert!(!MessageType::ResolverResponse.is_client_side());
    }
}
