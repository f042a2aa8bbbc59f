//! dnstap input: Frame Streams transport (`frames`), the dnstap protobuf
//! message and its mapping onto a DNS payload (`message`) and unidirectional
//! files (`file`). The bidirectional socket listener is a source
//! (`sources::dnstap_listen`).
//!
//! A dnstap frame travels through the rest of dnsmonitor like a captured
//! packet: as a [`RawPacket`](crate::sources::RawPacket) whose link type is
//! [`LINKTYPE_DNSTAP`] and whose bytes are the protobuf payload of one data
//! frame, so replay, the dataflow source, sensor batches and `consume` need
//! no second path. `process_dnstap` in ingest.rs is where such a
//! frame meets the ingest: it decodes the message, counts it by type, and
//! hands client-side messages (CLIENT_*, AUTH_*) to the same entry point
//! the packet path uses; the resolver's own upstream traffic (RESOLVER_*,
//! FORWARDER_*) is counted (with upstream SERVFAILs) and kept out of the
//! client detectors. This module only decodes and counts: it imports
//! nothing above `dns`/`packet`.
//!
//! Must not read the wall clock: event time is the message's own time.

pub mod file;
pub mod frames;
pub mod message;

pub use message::MessageType;

/// Link type of a dnstap frame inside dnsmonitor (pcap batches, raw
/// packets). Outside the range tcpdump.org assigns (0..=299) and the
/// reserved private range (147..=162): it never comes from a capture file.
pub const LINKTYPE_DNSTAP: i32 = 0x0d75_7a70;

/// Why a dnstap connection, file or frame was rejected. Small and `Copy`;
/// `as_str()` is the `reason` label of `dnsmonitor_dnstap_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnstapError {
    /// A data frame length over `frames::MAX_FRAME_BYTES`.
    FrameTooLong,
    /// A control frame length over `frames::MAX_CONTROL_BYTES`.
    ControlTooLong,
    /// A control frame of unknown type or with a malformed field.
    BadControl,
    /// A control frame out of order (data before START, a second READY).
    UnexpectedControl,
    /// READY/START naming no `protobuf:dnstap.Dnstap` content type.
    WrongContentType,
    /// The stream ended inside a frame or before STOP.
    Truncated,
    /// The peer sent nothing for too long during the handshake.
    Timeout,
    /// The frame is not a protobuf `Dnstap` message.
    Protobuf,
    /// A `Dnstap` without its `message`.
    NoMessage,
    /// A message type that carries no DNS bytes (or an empty one).
    NoDnsBytes,
    /// No (or a malformed) client address.
    NoAddress,
    /// Neither query nor response time.
    NoTime,
    /// The DNS bytes do not decode (see the `dns` parse errors).
    BadDns,
    /// Over `sources::dnstap_listen::MAX_CONNECTIONS` connections at once.
    TooManyConnections,
}

impl DnstapError {
    pub const ALL: [DnstapError; 14] = [
        DnstapError::FrameTooLong,
        DnstapError::ControlTooLong,
        DnstapError::BadControl,
        DnstapError::UnexpectedControl,
        DnstapError::WrongContentType,
        DnstapError::Truncated,
        DnstapError::Timeout,
        DnstapError::Protobuf,
        DnstapError::NoMessage,
        DnstapError::NoDnsBytes,
        DnstapError::NoAddress,
        DnstapError::NoTime,
        DnstapError::BadDns,
        DnstapError::TooManyConnections,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DnstapError::FrameTooLong => "frame_too_long",
            DnstapError::ControlTooLong => "control_too_long",
            DnstapError::BadControl => "bad_control",
            DnstapError::UnexpectedControl => "unexpected_control",
            DnstapError::WrongContentType => "wrong_content_type",
            DnstapError::Truncated => "truncated",
            DnstapError::Timeout => "timeout",
            DnstapError::Protobuf => "protobuf",
            DnstapError::NoMessage => "no_message",
            DnstapError::NoDnsBytes => "no_dns_bytes",
            DnstapError::NoAddress => "no_address",
            DnstapError::NoTime => "no_time",
            DnstapError::BadDns => "bad_dns",
            DnstapError::TooManyConnections => "too_many_connections",
        }
    }

    /// A human sentence for logs.
    pub fn describe(self) -> &'static str {
        match self {
            DnstapError::FrameTooLong => "data frame longer than the 256 KiB limit",
            DnstapError::ControlTooLong => "control frame longer than the 512-byte limit",
            DnstapError::BadControl => "malformed control frame",
            DnstapError::UnexpectedControl => "control frame out of order",
            DnstapError::WrongContentType => "content type is not protobuf:dnstap.Dnstap",
            DnstapError::Truncated => "stream ended inside a frame or before STOP",
            DnstapError::Timeout => "handshake timed out",
            DnstapError::Protobuf => "frame is not a dnstap protobuf message",
            DnstapError::NoMessage => "dnstap frame without a message",
            DnstapError::NoDnsBytes => "message carries no DNS bytes",
            DnstapError::NoAddress => "message has no valid client address",
            DnstapError::NoTime => "message has no time",
            DnstapError::BadDns => "DNS bytes do not decode",
            DnstapError::TooManyConnections => "too many connections",
        }
    }
}

impl std::fmt::Display for DnstapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl std::error::Error for DnstapError {}

/// What the dnstap input counted: transport side (frames, bytes,
/// connections; by the listener or file reader) and message side (by
/// type, errors by reason; by the ingest). Merged for the summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnstapCounters {
    /// Data frames read.
    pub frames: u64,
    /// Bytes of data frames (payload).
    pub bytes: u64,
    /// Connections accepted (listener).
    pub connections: u64,
    /// Connections closed for a protocol error.
    pub connections_rejected: u64,
    /// Messages by [`MessageType`] (index in `MessageType::ALL`).
    pub messages: [u64; 15],
    /// Errors by [`DnstapError`] (index in `DnstapError::ALL`).
    pub errors: [u64; 14],
    /// Messages without a server address (mapped to the unspecified one).
    pub no_server_address: u64,
    /// Upstream (RESOLVER_/FORWARDER_RESPONSE) answers with rcode SERVFAIL.
    pub upstream_servfail: u64,
}

impl DnstapCounters {
    pub fn error(&mut self, e: DnstapError) {
        self.errors[e as usize] += 1;
    }

    pub fn message(&mut self, t: MessageType) {
        self.messages[t as usize] += 1;
    }

    pub fn merge(&mut self, o: &DnstapCounters) {
        self.frames += o.frames;
        self.bytes += o.bytes;
        self.connections += o.connections;
        self.connections_rejected += o.connections_rejected;
        for (a, b) in self.messages.iter_mut().zip(o.messages) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
        self.no_server_address += o.no_server_address;
        self.upstream_servfail += o.upstream_servfail;
    }

    pub fn is_empty(&self) -> bool {
        *self == DnstapCounters::default()
    }

    /// Non-zero message counts, by type label.
    pub fn nonzero_messages(&self) -> Vec<(&'static str, u64)> {
        MessageType::ALL
            .iter()
            .filter(|t| self.messages[**t as usize] > 0)
            .map(|t| (t.as_str(), self.messages[*t as usize]))
            .collect()
    }

    /// Non-zero error counts, by reason label.
    pub fn nonzero_errors(&self) -> Vec<(&'static str, u64)> {
        DnstapError::ALL
            .iter()
            .filter(|e| self.errors[**e as usize] > 0)
            .map(|e| (e.as_str(), self.errors[*e as usize]))
            .collect()
    }
}

/// Flow-affinity key of a dnstap frame, like `PacketDecoder::shard_key`
/// (both addresses in sorted order, so a query and its response meet on
/// one worker); 0 when it does not decode.
pub fn shard_key(data: &[u8]) -> u64 {
    let Ok(d) = message::decode(data) else {
        return 0;
    };
    let Some(m) = d.message.as_ref() else {
        return 0;
    };
    let (a, b) = (
        m.query_address.as_deref().unwrap_or(&[]),
        m.response_address.as_deref().unwrap_or(&[]),
    );
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    crate::sketch::stable_hash(&(a, b))
}
