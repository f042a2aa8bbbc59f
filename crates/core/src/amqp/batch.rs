//! The body of a packet batch on the wire (RabbitMQ ingest): one complete
//! classic pcap file in memory — 24-byte global header, then records of a
//! 16-byte header and the captured bytes. Content type
//! [`CONTENT_TYPE`]. Any program that writes pcap can produce it; see the
//! README ("Packet batches") for the message headers that go with it.
//!
//! A second kind of batch carries dnstap (content type
//! [`DNSTAP_CONTENT_TYPE`]): one unidirectional Frame Streams stream in
//! memory — START with the content type `protobuf:dnstap.Dnstap`, data
//! frames, STOP — exactly what `fstrm_capture` writes to a file. Its frames
//! come out as records of link type `dnstap::LINKTYPE_DNSTAP`, timed by
//! their messages. [`PcapBatch::parse`] tells the two apart by the first
//! bytes (a Frame Streams stream starts with a zero escape, a pcap file
//! with its magic number).
//!
//! [`BatchWriter`] builds one (little-endian, microsecond timestamps);
//! [`PcapBatch::parse`] checks a whole body before anything is used (both
//! byte orders, microsecond and nanosecond magic), so a malformed message is
//! rejected as a whole and never half-processed.

use thiserror::Error;

/// AMQP content type of a batch.
pub const CONTENT_TYPE: &str = "application/vnd.tcpdump.pcap";
/// AMQP content type of a dnstap batch (a Frame Streams stream).
pub const DNSTAP_CONTENT_TYPE: &str = "application/vnd.dnstap.fstrm";
/// Largest record a batch may hold (libpcap's maximum snapshot length).
pub const MAX_RECORD: u32 = 262_144;
/// Size of the pcap global header.
pub const GLOBAL_HEADER: usize = 24;
/// Size of a record header.
pub const RECORD_HEADER: usize = 16;

/// Message header: the sensor's id (string).
pub const H_SENSOR: &str = "dnsmonitor-sensor";
/// Message header: the sensor process's run id (string; new at every start).
pub const H_RUN: &str = "dnsmonitor-run";
/// Message header: sequence number of the batch within the run (from 1).
pub const H_SEQ: &str = "dnsmonitor-seq";
/// Message header: packets in the batch.
pub const H_PACKETS: &str = "dnsmonitor-packets";
/// Message header: true on the sensor's last batch (its input ended).
pub const H_EOS: &str = "dnsmonitor-eos";

const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;

/// Why a body is not a usable batch.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    #[error("body is {0} bytes, shorter than the 24-byte pcap global header")]
    Short(usize),
    #[error("not a pcap file: magic number {0:#010x}")]
    Magic(u32),
    #[error("unsupported pcap version {0}.{1}")]
    Version(u16, u16),
    #[error("record {record} at byte {offset}: header cut off ({left} bytes left)")]
    RecordHeader {
        record: u64,
        offset: usize,
        left: usize,
    },
    #[error(
        "record {record} at byte {offset}: captured length {caplen} exceeds {what} ({limit} bytes)"
    )]
    RecordLength {
        record: u64,
        offset: usize,
        caplen: u32,
        what: &'static str,
        limit: usize,
    },
    #[error("dnstap frame {frame} at byte {offset}: {error}")]
    Dnstap {
        frame: u64,
        offset: usize,
        error: crate::dnstap::DnstapError,
    },
}

impl BatchError {
    /// A short, fixed reason (for counters and logs).
    pub fn reason(&self) -> &'static str {
        match self {
            BatchError::Short(_) => "short",
            BatchError::Magic(_) => "magic",
            BatchError::Version(..) => "version",
            BatchError::RecordHeader { .. } => "record_header",
            BatchError::RecordLength { .. } => "record_length",
            BatchError::Dnstap { .. } => "dnstap",
        }
    }
}

/// A checked batch, borrowing the message body.
#[derive(Debug)]
pub struct PcapBatch<'a> {
    pub linktype: i32,
    pub snaplen: u32,
    big_endian: bool,
    nanos: bool,
    records: &'a [u8],
    /// Number of records.
    pub packets: u64,
    /// Newest record timestamp (µs), if any.
    pub max_ts_us: Option<i64>,
    /// A dnstap batch: each frame's (time, start, end) in `records`.
    dnstap: Option<Vec<(i64, usize, usize)>>,
}

/// One record of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub ts_us: i64,
    pub orig_len: u32,
    pub data: &'a [u8],
}

fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    let a = [b[at], b[at + 1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

impl<'a> PcapBatch<'a> {
    /// Check the whole body: header, then every record's bounds.
    pub fn parse(body: &'a [u8]) -> Result<Self, BatchError> {
        if body.starts_with(&[0; 4]) {
            return Self::parse_dnstap(body);
        }
        if body.len() < GLOBAL_HEADER {
            return Err(BatchError::Short(body.len()));
        }
        let le = u32_at(body, 0, false);
        let (big_endian, nanos) = match le {
            MAGIC_US => (false, false),
            MAGIC_NS => (false, true),
            _ => match u32_at(body, 0, true) {
                MAGIC_US => (true, false),
                MAGIC_NS => (true, true),
                _ => {
                    return Err(BatchError::Magic(u32::from_be_bytes([
                        body[0], body[1], body[2], body[3],
                    ])));
                }
            },
        };
        let major = u16_at(body, 4, big_endian);
        let minor = u16_at(body, 6, big_endian);
        if major != 2 {
            return Err(BatchError::Version(major, minor));
        }
        let snaplen = u32_at(body, 16, big_endian);
        // The link type lives in the low 16 bits (the rest is FCS info).
        let linktype = (u32_at(body, 20, big_endian) & 0xffff) as i32;
        let mut batch = PcapBatch {
            linktype,
            snaplen,
            big_endian,
            nanos,
            records: &body[GLOBAL_HEADER..],
            packets: 0,
            max_ts_us: None,
            dnstap: None,
        };
        let mut at = 0usize;
        let recs = batch.records;
        while at < recs.len() {
            let record = batch.packets + 1;
            let offset = GLOBAL_HEADER + at;
            let left = recs.len() - at;
            if left < RECORD_HEADER {
                return Err(BatchError::RecordHeader {
                    record,
                    offset,
                    left,
                });
            }
            let caplen = u32_at(recs, at + 8, big_endian);
            if caplen > MAX_RECORD {
                return Err(BatchError::RecordLength {
                    record,
                    offset,
                    caplen,
                    what: "the largest snapshot length",
                    limit: MAX_RECORD as usize,
                });
            }
            if caplen as usize > left - RECORD_HEADER {
                return Err(BatchError::RecordLength {
                    record,
                    offset,
                    caplen,
                    what: "the bytes left in the body",
                    limit: left - RECORD_HEADER,
                });
            }
            let ts = batch.ts_at(at);
            batch.max_ts_us = Some(batch.max_ts_us.map_or(ts, |m| m.max(ts)));
            at += RECORD_HEADER + caplen as usize;
            batch.packets += 1;
        }
        Ok(batch)
    }

    /// A dnstap batch: START, data frames, STOP, each length bounded; a
    /// frame without a time takes the previous frame's (the ingest counts
    /// it as malformed).
    fn parse_dnstap(body: &'a [u8]) -> Result<Self, BatchError> {
        use crate::dnstap::DnstapError;
        use crate::dnstap::frames::{self, ControlType, Frame};
        let mut list: Vec<(i64, usize, usize)> = Vec::new();
        let (mut at, mut started, mut stopped) = (0usize, false, false);
        let mut max_ts_us: Option<i64> = None;
        let err = |frame: usize, offset: usize, error| BatchError::Dnstap {
            frame: frame as u64 + 1,
            offset,
            error,
        };
        while at < body.len() {
            let rest = &body[at..];
            match frames::parse(rest).map_err(|e| err(list.len(), at, e))? {
                None => return Err(err(list.len(), at, DnstapError::Truncated)),
                Some((Frame::Control(c), n)) => {
                    match c.kind {
                        ControlType::Start if !started => {
                            if !c.offers_dnstap() {
                                return Err(err(list.len(), at, DnstapError::WrongContentType));
                            }
                            started = true;
                        }
                        ControlType::Stop if started && !stopped => stopped = true,
                        _ => return Err(err(list.len(), at, DnstapError::UnexpectedControl)),
                    }
                    at += n;
                }
                Some((Frame::Data(d), n)) => {
                    if !started || stopped {
                        return Err(err(list.len(), at, DnstapError::UnexpectedControl));
                    }
                    let prev = list.last().map_or(0, |f| f.0);
                    let ts = crate::dnstap::message::frame_time_us(d).unwrap_or(prev);
                    max_ts_us = Some(max_ts_us.map_or(ts, |m| m.max(ts)));
                    list.push((ts, at + 4, at + n));
                    at += n;
                }
            }
        }
        if !stopped {
            return Err(err(list.len(), at, DnstapError::Truncated));
        }
        Ok(PcapBatch {
            linktype: crate::dnstap::LINKTYPE_DNSTAP,
            snaplen: frames::MAX_FRAME_BYTES as u32,
            big_endian: false,
            nanos: false,
            records: body,
            packets: list.len() as u64,
            max_ts_us,
            dnstap: Some(list),
        })
    }

    /// The content type this batch was built with.
    pub fn content_type(&self) -> &'static str {
        if self.dnstap.is_some() {
            DNSTAP_CONTENT_TYPE
        } else {
            CONTENT_TYPE
        }
    }

    fn ts_at(&self, at: usize) -> i64 {
        let secs = u32_at(self.records, at, self.big_endian) as i64;
        let frac = u32_at(self.records, at + 4, self.big_endian) as i64;
        secs * 1_000_000 + if self.nanos { frac / 1000 } else { frac }
    }

    /// The records in order (bounds were checked by `parse`).
    pub fn records(&self) -> impl Iterator<Item = Record<'a>> + '_ {
        self.records_from(0).map(|(_, r)| r)
    }

    /// The records from byte `offset` of the record area (0 = the first),
    /// each with the offset of the record after it (to resume there).
    /// (dnstap batches: the offset is a frame index.)
    pub fn records_from(&self, offset: usize) -> impl Iterator<Item = (usize, Record<'a>)> + '_ {
        let recs = self.records;
        let mut at = offset;
        std::iter::from_fn(move || {
            if let Some(list) = &self.dnstap {
                let &(ts_us, start, end) = list.get(at)?;
                at += 1;
                let data = &recs[start..end];
                return Some((
                    at,
                    Record {
                        ts_us,
                        orig_len: data.len() as u32,
                        data,
                    },
                ));
            }
            if at >= recs.len() {
                return None;
            }
            let ts_us = self.ts_at(at);
            let caplen = u32_at(recs, at + 8, self.big_endian) as usize;
            let orig_len = u32_at(recs, at + 12, self.big_endian);
            let data = &recs[at + RECORD_HEADER..at + RECORD_HEADER + caplen];
            at += RECORD_HEADER + caplen;
            Some((
                at,
                Record {
                    ts_us,
                    orig_len,
                    data,
                },
            ))
        })
    }
}

/// Builds one batch body.
#[derive(Debug, Clone)]
pub struct BatchWriter {
    buf: Vec<u8>,
    linktype: i32,
    packets: u64,
    /// A dnstap batch (Frame Streams body).
    dnstap: bool,
}

impl BatchWriter {
    /// An empty batch (global header only) for frames of `linktype`.
    pub fn new(linktype: i32, snaplen: u32) -> Self {
        use crate::dnstap::frames;
        if linktype == crate::dnstap::LINKTYPE_DNSTAP {
            let mut buf = Vec::with_capacity(64 * 1024);
            buf.extend_from_slice(&frames::control(
                frames::ControlType::Start,
                Some(frames::CONTENT_TYPE),
            ));
            return BatchWriter {
                buf,
                linktype,
                packets: 0,
                dnstap: true,
            };
        }
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(&MAGIC_US.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        buf.extend_from_slice(&snaplen.clamp(1, MAX_RECORD).to_le_bytes());
        buf.extend_from_slice(&(linktype as u32).to_le_bytes());
        BatchWriter {
            buf,
            linktype,
            packets: 0,
            dnstap: false,
        }
    }

    /// The AMQP content type of this batch.
    pub fn content_type(&self) -> &'static str {
        if self.dnstap {
            DNSTAP_CONTENT_TYPE
        } else {
            CONTENT_TYPE
        }
    }

    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// Records so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Body size so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no record was added.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// Append one frame (cut to [`MAX_RECORD`] bytes).
    pub fn push(&mut self, ts_us: i64, data: &[u8], orig_len: u32) {
        if self.dnstap {
            // The time is inside the message; frames over the bound never
            // come out of the dnstap readers, and are dropped here too.
            if data.is_empty() || data.len() > crate::dnstap::frames::MAX_FRAME_BYTES {
                return;
            }
            self.buf
                .extend_from_slice(&(data.len() as u32).to_be_bytes());
            self.buf.extend_from_slice(data);
            self.packets += 1;
            return;
        }
        let data = &data[..data.len().min(MAX_RECORD as usize)];
        let ts = ts_us.max(0);
        self.buf
            .extend_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(data);
        self.packets += 1;
    }

    /// The finished body.
    pub fn into_bytes(mut self) -> Vec<u8> {
        if self.dnstap {
            self.buf.extend_from_slice(&crate::dnstap::frames::control(
                crate::dnstap::frames::ControlType::Stop,
                None,
            ));
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut w = BatchWriter::new(1, 65535);
        w.push(1_700_000_000_123_456, b"abc", 3);
        w.push(1_700_000_001_000_001, &[7u8; 100], 1500);
        let body = w.into_bytes();
        let b = PcapBatch::parse(&body).unwrap();
        assert_eq!(b.linktype, 1);
        assert_eq!(b.packets, 2);
        assert_eq!(b.max_ts_us, Some(1_700_000_001_000_001));
        let r: Vec<_> = b.records().collect();
        assert_eq!(r[0].ts_us, 1_700_000_000_123_456);
        assert_eq!(r[0].data, b"abc");
        assert_eq!(r[1].orig_len, 1500);
        assert_eq!(r[1].data.len(), 100);
        // Resuming part-way gives the rest.
        let (off, _) = b.records_from(0).next().unwrap();
        let rest: Vec<_> = b.records_from(off).map(|x| x.1).collect();
        assert_eq!(rest, r[1..]);
    }

    #[test]
    fn header_only_is_an_empty_batch() {
        let body = BatchWriter::new(113, 1500).into_bytes();
        let b = PcapBatch::parse(&body).unwrap();
        assert_eq!((b.linktype, b.packets, b.max_ts_us), (113, 0, None));
    }

    #[test]
    fn big_endian_nanosecond_files_parse() {
        let mut body = vec![];
        body.extend_from_slice(&MAGIC_NS.to_be_bytes());
        body.extend_from_slice(&2u16.to_be_bytes());
        body.extend_from_slice(&4u16.to_be_bytes());
        body.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&65535u32.to_be_bytes());
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&10u32.to_be_bytes());
        body.extend_from_slice(&5_000_000u32.to_be_bytes());
        body.extend_from_slice(&2u32.to_be_bytes());
        body.extend_from_slice(&2u32.to_be_bytes());
        body.extend_from_slice(b"hi");
        let b = PcapBatch::parse(&body).unwrap();
        let r: Vec<_> = b.records().collect();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].ts_us, 10_005_000);
        assert_eq!(r[0].data, b"hi");
    }

    #[test]
    fn malformed_bodies_name_what_is_wrong() {
        assert_eq!(
            PcapBatch::parse(b"hello").unwrap_err(),
            BatchError::Short(5)
        );
        let e = PcapBatch::parse(&[b'x'; 40]).unwrap_err();
        assert_eq!(e.reason(), "magic");
        let mut w = BatchWriter::new(1, 65535);
        w.push(1, &[0u8; 50], 50);
        let mut body = w.into_bytes();
        body.truncate(body.len() - 10);
        let e = PcapBatch::parse(&body).unwrap_err();
        assert!(
            matches!(
                e,
                BatchError::RecordLength {
                    record: 1,
                    offset: 24,
                    caplen: 50,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("record 1 at byte 24"), "{e}");
        let mut body = BatchWriter::new(1, 65535).into_bytes();
        body.extend_from_slice(&[0u8; 7]);
        let e = PcapBatch::parse(&body).unwrap_err();
        assert!(matches!(e, BatchError::RecordHeader { left: 7, .. }), "{e}");
        let mut body = BatchWriter::new(1, 65535).into_bytes();
        body[4] = 3;
        assert_eq!(
            PcapBatch::parse(&body).unwrap_err(),
            BatchError::Version(3, 4)
        );
    }

    #[test]
    fn dnstap_batches_round_trip_and_are_checked() {
        use crate::dnstap::message::{MessageType, tests::client_frame};
        let lt = crate::dnstap::LINKTYPE_DNSTAP;
        let mut w = BatchWriter::new(lt, MAX_RECORD);
        assert_eq!(w.content_type(), DNSTAP_CONTENT_TYPE);
        let f1 = client_frame(MessageType::ClientQuery, &[1; 12], 100);
        let f2 = client_frame(MessageType::ClientResponse, &[2; 12], 101);
        w.push(0, &f1, 0);
        w.push(0, &f2, 0);
        let body = w.into_bytes();
        let b = PcapBatch::parse(&body).unwrap();
        assert_eq!((b.linktype, b.packets), (lt, 2));
        assert_eq!(b.content_type(), DNSTAP_CONTENT_TYPE);
        assert_eq!(b.max_ts_us, Some(101_000_007));
        let recs: Vec<_> = b.records().collect();
        assert_eq!(recs[0].data, &f1[..]);
        assert_eq!(recs[1].data, &f2[..]);
        assert_eq!(recs[0].ts_us, 100_000_005);
        // without STOP: truncated; cut inside a frame: truncated
        let e = PcapBatch::parse(&body[..body.len() - 12]).unwrap_err();
        assert_eq!(e.reason(), "dnstap");
        let e = PcapBatch::parse(&body[..body.len() - 20]).unwrap_err();
        assert!(e.to_string().contains("dnstap frame 2"), "{e}");
        // an empty (end-of-stream) dnstap batch parses
        let eos = BatchWriter::new(lt, MAX_RECORD).into_bytes();
        assert_eq!(PcapBatch::parse(&eos).unwrap().packets, 0);
    }
}
