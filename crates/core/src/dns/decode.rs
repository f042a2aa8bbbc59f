//! DNS message decoding: one payload's bytes into a compact [`DnsMessage`]
//! that borrows them. Owns the mapping from wire faults to the small
//! [`DecodeError`] set (whose `as_str()` is the metric/summary `reason`).
//! Parsing is done by the `domain` crate over the borrowed slice; the hot
//! path ([`decode`]) reads the header, the first question (name copied into
//! an inline [`QName`]) and, only when `arcount > 0`, walks the records to
//! find the OPT pseudo-record. It never allocates. [`DnsMessage::answers`]
//! renders the answer section for the event log and does allocate; it is
//! not on the hot path. Must not know where the bytes came from (no
//! addresses, ports, transport).

use std::fmt::Write as _;

use domain::base::iana::Rtype;
use domain::base::name::ParsedName;
use domain::base::wire::ParseError;
use domain::base::{Message, ParsedRecord, QuestionSection, UnknownRecordData};
use domain::dep::octseq::Parser;
use domain::rdata::{A, Aaaa, Cname, Mx, Ns, Ptr, Soa, Srv, Txt};

use super::name::{NameError, QName};

/// Size of the fixed DNS header.
pub const HEADER_LEN: usize = 12;

/// Why a payload did not decode into a [`DnsMessage`]. Small and `Copy`;
/// `as_str()` is the `reason` label of the decode-error counter and the
/// key in the end-of-run summary, so the set is closed and bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecodeError {
    /// Shorter than the 12-byte header.
    Truncated,
    /// The question section ends before the first question does (a name
    /// cut short, or qtype/qclass missing).
    BadQuestion,
    /// The first question's name breaks a wire rule: label length octet
    /// with the reserved 0x40/0x80 bits, compression pointer that points
    /// forward, at itself or into a loop, or a name over 255 octets.
    BadName,
    /// An answer, authority or additional record could not be parsed while
    /// looking for the OPT record. Never returned by [`decode`]: the message
    /// is kept and this is reported in [`DnsMessage::record_error`].
    BadRecord,
}

impl DecodeError {
    pub const ALL: [DecodeError; 4] = [
        DecodeError::Truncated,
        DecodeError::BadQuestion,
        DecodeError::BadName,
        DecodeError::BadRecord,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DecodeError::Truncated => "truncated",
            DecodeError::BadQuestion => "bad_question",
            DecodeError::BadName => "bad_name",
            DecodeError::BadRecord => "bad_record",
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for DecodeError {}

/// The EDNS(0) fields carried in the OPT pseudo-record's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Edns {
    /// Requestor's UDP payload size (the OPT record's CLASS).
    pub udp_size: u16,
    pub version: u8,
    /// DNSSEC OK.
    pub do_bit: bool,
}

/// Header flag bits (Z is not kept).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub ad: bool,
    pub cd: bool,
}

/// The first question of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub qname: QName,
    pub qtype: u16,
    pub qclass: u16,
}

/// One decoded DNS message, borrowing the payload bytes.
#[derive(Clone, Debug)]
pub struct DnsMessage<'a> {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    /// 12-bit response code: the header's 4 bits, extended by the OPT
    /// record's upper 8 bits when an OPT record was found.
    pub rcode: u16,
    pub flags: Flags,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    /// The first question; `None` when `qdcount == 0`. Further questions
    /// (qdcount > 1 is legal on the wire but unused in practice) are not
    /// decoded.
    pub question: Option<Question>,
    /// From the first OPT record of the additional section, if any.
    pub edns: Option<Edns>,
    /// `Some(DecodeError::BadRecord)` when the walk to the OPT record hit
    /// an unparseable answer/authority/additional record. The header and
    /// question are still valid, `edns` is `None` and `rcode` is the plain
    /// header rcode. Only set when `arcount > 0` (no walk happens otherwise).
    pub record_error: Option<DecodeError>,
    /// Message length in bytes.
    pub size: u32,
    /// The whole message.
    pub raw: &'a [u8],
}

/// One answer-section record rendered for the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Owner name in presentation form (RFC 1035 escapes, no trailing dot).
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    /// Presentation form of the record data (see [`DnsMessage::answers`]).
    pub data: String,
}

/// Decode one DNS message.
///
/// Cost model: header and first question always (no allocation, the name is
/// copied into an inline `QName`); the answer and authority sections are
/// skipped and the additional section scanned for OPT only when
/// `arcount > 0`. The common shapes are read by hand (one question of
/// plain labels, then nothing or an OPT record first in the additional
/// section: about 1 130 instructions a message on the bench capture's
/// flood through `domain`, 640 so, the name's hash included); everything else, and every error, goes through `domain`
/// (`decode_with_domain`), which a test holds the fast path equal to.
///
/// Decision on a broken record section: if the OPT lookup fails (an
/// answer/authority/additional record is unparseable) the message is still
/// returned, with `edns: None`, the plain 4-bit rcode and `record_error:
/// Some(BadRecord)`. Dropping it would lose a valid header and question that
/// tshark still reports: on the real captures (tests/dns_tshark.rs) tshark
/// shows id, flags, rcode, question and counts for such a message
/// (suricata-verify/dns-corrupt-additionals frame 2, an additional record
/// cut short) and only marks the frame malformed, so keeping it is what
/// agrees. Only the OPT record's fixed header is read, not its options, so a
/// malformed EDNS option (zeek/dns-edns-bad-length) still yields `edns`. A
/// malformed first question, on the other hand, is an error: there is
/// nothing to key the message on.
pub fn decode(data: &[u8]) -> Result<DnsMessage<'_>, DecodeError> {
    if data.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    // Built in place: the question name (about 400 bytes) is written where
    // it stays, not built apart and moved in.
    let mut out = header_of(data);
    if out.qdcount == 1
        && let Some(end) = plain_question(data, &mut out)
    {
        if out.arcount == 0 {
            return Ok(out);
        }
        if out.ancount == 0
            && out.nscount == 0
            && let Some((edns, ext_rcode)) = first_record_opt(data, end)
        {
            out.edns = Some(edns);
            out.rcode |= u16::from(ext_rcode) << 4;
            return Ok(out);
        }
        // The OPT record lies past other records: `domain` walks to it.
        let msg = Message::from_slice(data).map_err(|_| DecodeError::Truncated)?;
        let mut questions = msg.question();
        if let Some(Ok(_)) = questions.next() {
            opt_into(questions, &mut out);
            return Ok(out);
        }
        // Not reached (`domain` reads any question `plain_question` does):
        // decode the whole message its way.
        out.question = None;
    }
    decode_with_domain(data, out)
}

/// The header fields of `data` (at least `HEADER_LEN` bytes long), no
/// question or EDNS yet.
fn header_of(data: &[u8]) -> DnsMessage<'_> {
    let count = |at: usize| u16::from_be_bytes([data[at], data[at + 1]]);
    let (b2, b3) = (data[2], data[3]);
    DnsMessage {
        id: count(0),
        qr: b2 & 0x80 != 0,
        opcode: (b2 >> 3) & 0x0f,
        rcode: u16::from(b3 & 0x0f),
        flags: Flags {
            aa: b2 & 0x04 != 0,
            tc: b2 & 0x02 != 0,
            rd: b2 & 0x01 != 0,
            ra: b3 & 0x80 != 0,
            ad: b3 & 0x20 != 0,
            cd: b3 & 0x10 != 0,
        },
        qdcount: count(4),
        ancount: count(6),
        nscount: count(8),
        arcount: count(10),
        question: None,
        edns: None,
        record_error: None,
        // A slice never exceeds isize::MAX; payloads are at most 64 KiB.
        size: u32::try_from(data.len()).unwrap_or(u32::MAX),
        raw: data,
    }
}

/// The fast path for the question nearly every message has: a name of
/// plain labels (no compression pointer) within the bounds, then type and
/// class. Fills `out.question` and returns where the question ends; `None`
/// (with `out.question` possibly half filled) for anything else, which
/// `decode_with_domain` then reads and classifies.
fn plain_question(data: &[u8], out: &mut DnsMessage<'_>) -> Option<usize> {
    let question = out.question.insert(Question {
        qname: QName::new(),
        qtype: 0,
        qclass: 0,
    });
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*data.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        // A pointer or a reserved label type.
        if len > 63 {
            return None;
        }
        let label = data.get(at + 1..at + 1 + len)?;
        question.qname.push_label(label).ok()?;
        at += 1 + len;
    }
    let fixed = data.get(at..at + 4)?;
    question.qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    question.qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
    question.qname.seal();
    Some(at + 4)
}

/// The EDNS fields and extended-rcode octet when the record at `at` (the
/// first of the additional section, nothing before it) is an OPT record
/// owned by the root, whole within `data`; `None` for anything else.
fn first_record_opt(data: &[u8], at: usize) -> Option<(Edns, u8)> {
    let r = data.get(at..at + 11)?;
    let rdlen = usize::from(u16::from_be_bytes([r[9], r[10]]));
    if r[0] != 0 || u16::from_be_bytes([r[1], r[2]]) != Rtype::OPT.to_int() {
        return None;
    }
    data.get(at + 11..at + 11 + rdlen)?;
    let ttl = u32::from_be_bytes([r[5], r[6], r[7], r[8]]);
    Some(opt_fields(u16::from_be_bytes([r[3], r[4]]), ttl))
}

/// The OPT "header" reuses CLASS as the UDP size and TTL as
/// ext-rcode(8) | version(8) | DO(1) | Z(15) (RFC 6891 6.1.3).
fn opt_fields(class: u16, ttl: u32) -> (Edns, u8) {
    let edns = Edns {
        udp_size: class,
        version: (ttl >> 16) as u8,
        do_bit: ttl & 0x8000 != 0,
    };
    (edns, (ttl >> 24) as u8)
}

/// `find_opt` from `questions` on, its result written into `out`.
fn opt_into(questions: QuestionSection<'_, [u8]>, out: &mut DnsMessage<'_>) {
    match find_opt(questions) {
        Ok(Some((e, ext_rcode))) => {
            out.edns = Some(e);
            out.rcode |= u16::from(ext_rcode) << 4;
        }
        Ok(None) => {}
        Err(_) => out.record_error = Some(DecodeError::BadRecord),
    }
}

/// `decode` by `domain` alone, from the header fields in `out`: every
/// message the fast path is not sure of, and the reference the fast path
/// is tested against.
fn decode_with_domain<'a>(
    data: &'a [u8],
    mut out: DnsMessage<'a>,
) -> Result<DnsMessage<'a>, DecodeError> {
    let msg = Message::from_slice(data).map_err(|_| DecodeError::Truncated)?;
    let mut questions = msg.question();
    if out.qdcount != 0 {
        match questions.next() {
            Some(Ok(q)) => {
                let question = out.question.insert(Question {
                    qname: QName::new(),
                    qtype: q.qtype().to_int(),
                    qclass: q.qclass().to_int(),
                });
                read_qname(q.qname(), &mut question.qname)?;
            }
            Some(Err(_)) | None => return Err(classify_question_error(data)),
        }
    }
    if out.arcount > 0 {
        opt_into(questions, &mut out);
    }
    Ok(out)
}

/// A parsed (possibly compressed) name as a new `QName`.
fn to_qname(name: &ParsedName<&[u8]>) -> Result<QName, DecodeError> {
    let mut out = QName::new();
    read_qname(name, &mut out)?;
    Ok(out)
}

/// Copy a parsed (possibly compressed) name into `out` (empty).
fn read_qname(name: &ParsedName<&[u8]>, out: &mut QName) -> Result<(), DecodeError> {
    for label in name.iter() {
        let label = label.as_slice();
        if label.is_empty() {
            // The root label ends the name.
            break;
        }
        out.push_label(label).map_err(|e| match e {
            NameError::LabelTooLong | NameError::NameTooLong | NameError::EmptyLabel => {
                DecodeError::BadName
            }
        })?;
    }
    out.seal();
    Ok(())
}

/// The first question failed to parse: tell a broken name from a question
/// that is merely cut short. Off the hot path (error case only).
fn classify_question_error(data: &[u8]) -> DecodeError {
    let mut parser = Parser::from_ref(data);
    if parser.advance(HEADER_LEN).is_err() {
        return DecodeError::Truncated;
    }
    match ParsedName::parse(&mut parser) {
        // domain reports forward/self pointers, loops (pointer chains over
        // 255), names over 255 octets and reserved label types as form
        // errors; a pointer past the end is a forward pointer, so also one.
        Err(ParseError::Form(_)) => DecodeError::BadName,
        // Name cut short, or name fine and qtype/qclass missing.
        Err(ParseError::ShortInput) | Ok(_) => DecodeError::BadQuestion,
    }
}

/// Skip the rest of the question, the answer and authority sections, and
/// return the EDNS fields and extended-rcode octet of the first OPT record
/// in the additional section.
fn find_opt(questions: QuestionSection<'_, [u8]>) -> Result<Option<(Edns, u8)>, ParseError> {
    let answer = questions.answer()?;
    let Some(authority) = answer.next_section()? else {
        return Ok(None);
    };
    let Some(additional) = authority.next_section()? else {
        return Ok(None);
    };
    for record in additional {
        let record = record?;
        if record.rtype() == Rtype::OPT {
            // Read from the record header as OptRecord::from_record does,
            // without requiring the options in RDATA to be well formed.
            return Ok(Some(opt_fields(
                record.class().to_int(),
                record.ttl().as_secs(),
            )));
        }
    }
    Ok(None)
}

impl DnsMessage<'_> {
    /// Answer-section records for the event log. Allocates; not for the hot
    /// path. Stops at the first record that does not parse (the records
    /// before it are returned).
    ///
    /// `data` is the presentation form: A, AAAA as addresses; CNAME, NS,
    /// PTR as a name; MX as `pref exchange`; TXT as each character string
    /// in double quotes with `"`/`\` backslash-escaped and bytes outside
    /// printable ASCII as `\DDD` (like dig); SOA as `mname rname serial
    /// refresh retry expire minimum`; SRV as `priority weight port target`.
    /// Names are in the same form as the qname (RFC 1035 escapes, no
    /// trailing dot, the root is `.`). Any other type, and a known type
    /// whose RDATA does not parse, is written in the RFC 3597 generic form
    /// `\# len HEX` (`\# 0` when empty).
    pub fn answers(&self) -> Vec<Answer> {
        let mut out = Vec::new();
        let Ok(msg) = Message::from_slice(self.raw) else {
            return out;
        };
        let Ok(section) = msg.answer() else {
            return out;
        };
        for record in section {
            let Ok(record) = record else { break };
            let Ok(name) = to_qname(&record.owner()) else {
                break;
            };
            out.push(Answer {
                name: name.to_string(),
                rtype: record.rtype().to_int(),
                ttl: record.ttl().as_secs(),
                data: rdata_presentation(&record),
            });
        }
        out
    }
}

/// Name in presentation form, or `None` if it breaks the name bounds.
fn name_text(name: &ParsedName<&[u8]>) -> Option<String> {
    to_qname(name).ok().map(|n| n.to_string())
}

fn rdata_presentation(record: &ParsedRecord<'_, [u8]>) -> String {
    known_rdata(record).unwrap_or_else(|| generic_rdata(record))
}

/// Presentation of the types we render; `None` for other types or RDATA
/// that does not parse.
fn known_rdata(record: &ParsedRecord<'_, [u8]>) -> Option<String> {
    type N<'a> = ParsedName<&'a [u8]>;
    let rtype = record.rtype();
    let text = if rtype == Rtype::A {
        record.to_record::<A>().ok()??.data().addr().to_string()
    } else if rtype == Rtype::AAAA {
        record.to_record::<Aaaa>().ok()??.data().addr().to_string()
    } else if rtype == Rtype::CNAME {
        name_text(record.to_record::<Cname<N<'_>>>().ok()??.data().cname())?
    } else if rtype == Rtype::NS {
        name_text(record.to_record::<Ns<N<'_>>>().ok()??.data().nsdname())?
    } else if rtype == Rtype::PTR {
        name_text(record.to_record::<Ptr<N<'_>>>().ok()??.data().ptrdname())?
    } else if rtype == Rtype::MX {
        let r = record.to_record::<Mx<N<'_>>>().ok()??;
        format!(
            "{} {}",
            r.data().preference(),
            name_text(r.data().exchange())?
        )
    } else if rtype == Rtype::TXT {
        let r = record.to_record::<Txt<&[u8]>>().ok()??;
        let mut s = String::new();
        for (i, chars) in r.data().iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            write_charstr_quoted(&mut s, chars);
        }
        s
    } else if rtype == Rtype::SOA {
        let r = record.to_record::<Soa<N<'_>>>().ok()??;
        let d = r.data();
        format!(
            "{} {} {} {} {} {} {}",
            name_text(d.mname())?,
            name_text(d.rname())?,
            d.serial().into_int(),
            d.refresh().as_secs(),
            d.retry().as_secs(),
            d.expire().as_secs(),
            d.minimum().as_secs()
        )
    } else if rtype == Rtype::SRV {
        let r = record.to_record::<Srv<N<'_>>>().ok()??;
        let d = r.data();
        format!(
            "{} {} {} {}",
            d.priority(),
            d.weight(),
            d.port(),
            name_text(d.target())?
        )
    } else {
        return None;
    };
    Some(text)
}

/// RFC 3597 generic form: `\# len HEX`.
fn generic_rdata(record: &ParsedRecord<'_, [u8]>) -> String {
    let data = record.to_record::<UnknownRecordData<&[u8]>>();
    let bytes: &[u8] = match &data {
        Ok(Some(r)) => r.data().data(),
        _ => &[],
    };
    let mut s = String::with_capacity(6 + bytes.len() * 2);
    let _ = write!(s, "\\# {}", bytes.len());
    if !bytes.is_empty() {
        s.push(' ');
        for b in bytes {
            let _ = write!(s, "{b:02X}");
        }
    }
    s
}

/// A character string in dig's form: quoted, `"` and `\` escaped with a
/// backslash, bytes outside printable ASCII as `\DDD`.
fn write_charstr_quoted(out: &mut String, chars: &[u8]) {
    out.push('"');
    for &b in chars {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a message from header fields and raw section bytes.
    fn msg(id: u16, flags: u16, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&flags.to_be_bytes());
        for c in counts {
            v.extend_from_slice(&c.to_be_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    fn wire_name(text: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for label in text.split('.').filter(|l| !l.is_empty()) {
            v.push(label.len() as u8);
            v.extend_from_slice(label.as_bytes());
        }
        v.push(0);
        v
    }

    fn question(name: &str, qtype: u16, qclass: u16) -> Vec<u8> {
        let mut v = wire_name(name);
        v.extend_from_slice(&qtype.to_be_bytes());
        v.extend_from_slice(&qclass.to_be_bytes());
        v
    }

    /// A resource record with an owner given as raw wire bytes.
    fn rr(owner: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut v = owner.to_vec();
        v.extend_from_slice(&rtype.to_be_bytes());
        v.extend_from_slice(&class.to_be_bytes());
        v.extend_from_slice(&ttl.to_be_bytes());
        v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        v.extend_from_slice(rdata);
        v
    }

    fn opt(udp: u16, ext_rcode: u8, version: u8, do_bit: bool) -> Vec<u8> {
        let ttl = (u32::from(ext_rcode) << 24)
            | (u32::from(version) << 16)
            | if do_bit { 0x8000 } else { 0 };
        rr(&[0], 41, udp, ttl, &[])
    }

    /// Compression pointer to the question name (at offset 12).
    const PTR_QNAME: [u8; 2] = [0xc0, 0x0c];

    #[test]
    fn query() {
        let m = msg(
            0x1234,
            0x0100,
            [1, 0, 0, 0],
            &question("www.Example.com", 1, 1),
        );
        let d = decode(&m).unwrap();
        assert_eq!(d.id, 0x1234);
        assert!(!d.qr);
        assert_eq!(d.opcode, 0);
        assert_eq!(d.rcode, 0);
        assert_eq!(
            d.flags,
            Flags {
                rd: true,
                ..Flags::default()
            }
        );
        assert_eq!((d.qdcount, d.ancount, d.nscount, d.arcount), (1, 0, 0, 0));
        let q = d.question.as_ref().unwrap();
        assert_eq!(q.qname.to_string(), "www.Example.com");
        assert_eq!(q.qname, QName::from_text("www.example.com").unwrap());
        assert_eq!((q.qtype, q.qclass), (1, 1));
        assert_eq!(d.edns, None);
        assert_eq!(d.record_error, None);
        assert_eq!(d.size as usize, m.len());
        assert_eq!(d.raw, &m[..]);
        assert!(d.answers().is_empty());
    }

    #[test]
    fn opcode_flags_and_root_question() {
        // QR, opcode 5 (UPDATE), AA TC RD RA, Z, AD CD, rcode 3.
        let flags =
            0x8000 | (5 << 11) | 0x0400 | 0x0200 | 0x0100 | 0x0080 | 0x0040 | 0x0020 | 0x0010 | 3;
        let m = msg(7, flags, [1, 0, 0, 0], &question(".", 2, 1));
        let d = decode(&m).unwrap();
        assert!(d.qr);
        assert_eq!(d.opcode, 5);
        assert_eq!(d.rcode, 3);
        assert_eq!(
            d.flags,
            Flags {
                aa: true,
                tc: true,
                rd: true,
                ra: true,
                ad: true,
                cd: true
            }
        );
        let q = d.question.unwrap();
        assert!(q.qname.is_root());
        assert_eq!(q.qname.to_string(), ".");
    }

    #[test]
    fn no_question() {
        let m = msg(1, 0x8000, [0, 0, 0, 0], &[]);
        let d = decode(&m).unwrap();
        assert!(d.question.is_none());
        // qdcount 0 but trailing junk: still fine, nothing else is read.
        let m = msg(1, 0x8000, [0, 0, 0, 0], &[0xff, 0xff]);
        assert!(decode(&m).unwrap().question.is_none());
    }

    #[test]
    fn response_with_answers() {
        let mut body = question("example.com", 1, 1);
        body.extend(rr(&PTR_QNAME, 1, 1, 300, &[192, 0, 2, 1]));
        body.extend(rr(
            &PTR_QNAME,
            28,
            1,
            60,
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ));
        let mut cname = wire_name("www");
        cname.truncate(cname.len() - 1);
        cname.extend_from_slice(&PTR_QNAME);
        body.extend(rr(&PTR_QNAME, 5, 1, 10, &cname));
        let mut mx = 10u16.to_be_bytes().to_vec();
        mx.extend(wire_name("mail.example.com"));
        body.extend(rr(&PTR_QNAME, 15, 1, 10, &mx));
        body.extend(rr(&PTR_QNAME, 16, 1, 10, b"\x05hello\x08a \"b\\c\x01\xff"));
        let mut soa = wire_name("ns1.example.com");
        soa.extend(wire_name("host\\.master.example.com"));
        for v in [2024010101u32, 7200, 3600, 1209600, 300] {
            soa.extend_from_slice(&v.to_be_bytes());
        }
        body.extend(rr(&PTR_QNAME, 6, 1, 10, &soa));
        let mut srv = Vec::new();
        for v in [1u16, 2, 443] {
            srv.extend_from_slice(&v.to_be_bytes());
        }
        srv.extend(wire_name("."));
        body.extend(rr(&PTR_QNAME, 33, 1, 10, &srv));
        body.extend(rr(&PTR_QNAME, 99, 1, 10, &[0xde, 0xad]));
        body.extend(rr(&PTR_QNAME, 1, 1, 10, &[1, 2, 3])); // bad A -> generic
        body.extend(rr(&PTR_QNAME, 65, 1, 10, &[]));
        body.extend(rr(&PTR_QNAME, 12, 1, 10, &wire_name("a.b")));
        body.extend(rr(&PTR_QNAME, 2, 1, 10, &wire_name("ns.b")));
        let m = msg(9, 0x8180, [1, 12, 0, 0], &body);
        let d = decode(&m).unwrap();
        assert_eq!(d.ancount, 12);
        let a = d.answers();
        let got: Vec<(&str, u16, u32, &str)> = a
            .iter()
            .map(|x| (x.name.as_str(), x.rtype, x.ttl, x.data.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("example.com", 1, 300, "192.0.2.1"),
                ("example.com", 28, 60, "2001:db8::1"),
                ("example.com", 5, 10, "www.example.com"),
                ("example.com", 15, 10, "10 mail.example.com"),
                (
                    "example.com",
                    16,
                    10,
                    "\"hello\" \"a \\\"b\\\\c\\001\\255\""
                ),
                (
                    "example.com",
                    6,
                    10,
                    "ns1.example.com host\\\\.master.example.com 2024010101 7200 3600 1209600 300"
                ),
                ("example.com", 33, 10, "1 2 443 ."),
                ("example.com", 99, 10, "\\# 2 DEAD"),
                ("example.com", 1, 10, "\\# 3 010203"),
                ("example.com", 65, 10, "\\# 0"),
                ("example.com", 12, 10, "a.b"),
                ("example.com", 2, 10, "ns.b"),
            ]
        );
    }

    #[test]
    fn soa_rname_with_escaped_dot() {
        // A label holding a literal dot prints as `\.`.
        let mut n = vec![11];
        n.extend_from_slice(b"host.master");
        n.extend(wire_name("example"));
        let mut body = question("example", 6, 1);
        let mut soa = wire_name("ns");
        soa.extend(&n);
        soa.extend_from_slice(&[0; 20]);
        body.extend(rr(&PTR_QNAME, 6, 1, 0, &soa));
        let m = msg(1, 0x8000, [1, 1, 0, 0], &body);
        let a = decode(&m).unwrap().answers();
        assert_eq!(a[0].data, "ns host\\.master.example 0 0 0 0 0");
    }

    #[test]
    fn opt_with_extended_rcode_and_do() {
        let mut body = question("example.com", 16, 1);
        body.extend(rr(&PTR_QNAME, 1, 1, 1, &[1, 2, 3, 4]));
        body.extend(rr(&[0], 2, 1, 1, &wire_name("a.root-servers.net")));
        body.extend(rr(&wire_name("a.root-servers.net"), 1, 1, 1, &[1, 2, 3, 4]));
        body.extend(opt(1232, 1, 0, true)); // BADVERS = 16 = ext 1, rcode 0
        let m = msg(2, 0x8000, [1, 1, 1, 2], &body);
        let d = decode(&m).unwrap();
        assert_eq!(
            d.edns,
            Some(Edns {
                udp_size: 1232,
                version: 0,
                do_bit: true
            })
        );
        assert_eq!(d.rcode, 16);
        assert_eq!(d.record_error, None);

        // BADCOOKIE 23 = ext 1, header rcode 7; version 1, DO clear.
        let mut body = question("example.com", 1, 1);
        body.extend(opt(4096, 1, 1, false));
        let m = msg(3, 0x8007, [1, 0, 0, 1], &body);
        let d = decode(&m).unwrap();
        assert_eq!(d.rcode, 23);
        assert_eq!(
            d.edns,
            Some(Edns {
                udp_size: 4096,
                version: 1,
                do_bit: false
            })
        );

        // No OPT among the additionals.
        let mut body = question("example.com", 1, 1);
        body.extend(rr(&PTR_QNAME, 1, 1, 1, &[1, 2, 3, 4]));
        let m = msg(3, 0x8003, [1, 0, 0, 1], &body);
        let d = decode(&m).unwrap();
        assert_eq!((d.rcode, d.edns, d.record_error), (3, None, None));
    }

    #[test]
    fn broken_answer_keeps_header_and_question() {
        // ancount 2 but only one record present, then an OPT that we can't
        // reach: header and question survive, edns is unknown.
        let mut body = question("example.com", 1, 1);
        body.extend(rr(&PTR_QNAME, 1, 1, 1, &[1, 2, 3, 4]));
        let m = msg(4, 0x8002, [1, 2, 0, 1], &body);
        let d = decode(&m).unwrap();
        assert_eq!(
            d.question.as_ref().unwrap().qname.to_string(),
            "example.com"
        );
        assert_eq!((d.rcode, d.edns), (2, None));
        assert_eq!(d.record_error, Some(DecodeError::BadRecord));
        // The record before the break is still rendered.
        assert_eq!(d.answers().len(), 1);
        // Without arcount nothing past the question is read.
        let m = msg(4, 0x8002, [1, 2, 0, 0], &body);
        assert_eq!(decode(&m).unwrap().record_error, None);
    }

    #[test]
    fn truncated_header_and_question() {
        for n in 0..HEADER_LEN {
            assert_eq!(decode(&[0u8; 12][..n]).unwrap_err(), DecodeError::Truncated);
        }
        let full = msg(1, 0x0100, [1, 0, 0, 0], &question("www.example.com", 1, 1));
        for n in HEADER_LEN..full.len() {
            assert_eq!(
                decode(&full[..n]).unwrap_err(),
                DecodeError::BadQuestion,
                "len {n}"
            );
        }
        assert!(decode(&full).is_ok());
    }

    #[test]
    fn pointer_loop_and_forward_pointer() {
        // Name that points at itself.
        let m = msg(1, 0, [1, 0, 0, 0], &[0xc0, 0x0c, 0, 1, 0, 1]);
        assert_eq!(decode(&m).unwrap_err(), DecodeError::BadName);
        // Two labels pointing at each other: a(12) -> ptr 16, b(16) -> ptr 12.
        let m = msg(
            1,
            0,
            [1, 0, 0, 0],
            &[1, b'a', 0xc0, 16, 1, b'b', 0xc0, 12, 0, 1, 0, 1],
        );
        assert_eq!(decode(&m).unwrap_err(), DecodeError::BadName);
        // A backward loop: label at 12 then a pointer back to 12.
        let m = msg(1, 0, [1, 0, 0, 0], &[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(decode(&m).unwrap_err(), DecodeError::BadName);
        // Forward pointer to a valid name later in the message.
        let mut body = vec![0xc0, 18, 0, 1, 0, 1];
        body.extend(wire_name("example.com"));
        let m = msg(1, 0, [1, 0, 0, 0], &body);
        assert_eq!(decode(&m).unwrap_err(), DecodeError::BadName);
        // Pointer beyond the end.
        let m = msg(1, 0, [1, 0, 0, 0], &[0xc0, 0xff, 0, 1, 0, 1]);
        assert_eq!(decode(&m).unwrap_err(), DecodeError::BadName);
        // Reserved label types 0x40 and 0x80.
        for t in [0x41u8, 0x81] {
            let m = msg(1, 0, [1, 0, 0, 0], &[t, b'a', 0, 0, 1, 0, 1]);
            assert_eq!(decode(&m).unwrap_err(), DecodeError::BadName);
        }
    }

    #[test]
    fn backward_pointer_in_question_is_fine() {
        // Second question compressed against the first: only the first is
        // decoded, the second is skipped when looking for OPT.
        let mut body = question("example.com", 1, 1);
        body.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 12, 0, 28, 0, 1]);
        body.extend(opt(512, 0, 0, false));
        let m = msg(1, 0, [2, 0, 0, 1], &body);
        let d = decode(&m).unwrap();
        assert_eq!(d.question.unwrap().qname.to_string(), "example.com");
        assert_eq!(d.edns.unwrap().udp_size, 512);
    }

    #[test]
    fn name_length_bounds() {
        // 4 labels of 63 = 256 octets with the root: too long.
        let mut long = Vec::new();
        for _ in 0..4 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        let m = msg(1, 0, [1, 0, 0, 0], &long);
        assert_eq!(decode(&m).unwrap_err(), DecodeError::BadName);
        // 3*64 + 62 + 1 = 255 octets exactly: fine.
        let mut ok = Vec::new();
        for _ in 0..3 {
            ok.push(63);
            ok.extend_from_slice(&[b'a'; 63]);
        }
        ok.push(61);
        ok.extend_from_slice(&[b'b'; 61]);
        ok.extend_from_slice(&[0, 0, 1, 0, 1]);
        let m = msg(1, 0, [1, 0, 0, 0], &ok);
        assert_eq!(decode(&m).unwrap().question.unwrap().qname.wire_len(), 255);
        // Too long through compression: a suffix of 200 octets reused by a
        // name adding 63+1 more.
        let mut body = Vec::new();
        for _ in 0..3 {
            body.push(63);
            body.extend_from_slice(&[b'c'; 63]);
        }
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        body.push(63);
        body.extend_from_slice(&[b'd'; 63]);
        body.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let m = msg(1, 0, [2, 0, 0, 1], &body);
        // First question is fine; the second (too long) breaks the OPT walk.
        let d = decode(&m).unwrap();
        assert_eq!(d.record_error, Some(DecodeError::BadRecord));
    }

    #[test]
    fn hostile_label_bytes_are_kept_and_escaped() {
        let mut body = vec![5, b'a', b'.', b'\\', 0, 0xff, 3, b'c', b'o', b'm', 0];
        body.extend_from_slice(&[0, 1, 0, 1]);
        let m = msg(1, 0, [1, 0, 0, 0], &body);
        let q = decode(&m).unwrap().question.unwrap();
        assert_eq!(q.qname.label(0), b"a.\\\x00\xff");
        assert_eq!(q.qname.to_string(), "a\\.\\\\\\000\\255.com");
    }

    #[test]
    fn error_strings_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for e in DecodeError::ALL {
            let s = e.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s));
        }
    }

    fn seed_messages() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut body = question("www.example.com", 1, 1);
        body.extend(opt(1232, 0, 0, true));
        out.push(msg(1, 0x0120, [1, 0, 0, 1], &body));
        let mut body = question("example.com", 1, 1);
        body.extend(rr(&PTR_QNAME, 1, 1, 300, &[192, 0, 2, 1]));
        body.extend(rr(&PTR_QNAME, 16, 1, 10, b"\x05hello\x02hi"));
        let mut mx = 10u16.to_be_bytes().to_vec();
        mx.extend_from_slice(&[4, b'm', b'a', b'i', b'l', 0xc0, 12]);
        body.extend(rr(&PTR_QNAME, 15, 1, 10, &mx));
        body.extend(rr(&[0], 2, 1, 1, &[1, b'a', 0xc0, 12]));
        body.extend(opt(4096, 1, 0, false));
        out.push(msg(2, 0x8180, [1, 3, 1, 1], &body));
        out
    }

    /// A byte that breaks a message tellingly: a compression pointer, a
    /// label length, a zero, 0xff, the OPT type's low byte, or noise.
    fn hostile_byte(rng: &mut crate::sketch::Rng) -> u8 {
        match rng.below(6) {
            0 => 0xc0 | (rng.next_u64() as u8 & 0x3f),
            1 => rng.below(64) as u8,
            2 => 0,
            3 => 0xff,
            4 => 41,
            _ => rng.next_u64() as u8,
        }
    }

    /// Everything `decode` says about a message, names by their exact
    /// wire bytes (case kept) and hash.
    fn fingerprint(r: &Result<DnsMessage<'_>, DecodeError>) -> String {
        match r {
            Err(e) => format!("{e:?}"),
            Ok(m) => {
                let q = m
                    .question
                    .as_ref()
                    .map(|q| (q.qname.wire().to_vec(), q.qname.hash(), q.qtype, q.qclass));
                format!(
                    "{} {} {} {} {:?} {:?} {:?} {:?} {:?} {} {:?}",
                    m.id,
                    m.qr,
                    m.opcode,
                    m.rcode,
                    m.flags,
                    [m.qdcount, m.ancount, m.nscount, m.arcount],
                    q,
                    m.edns,
                    m.record_error,
                    m.size,
                    m.raw.as_ptr(),
                )
            }
        }
    }

    /// The fast path (plain question, OPT right after it) says exactly
    /// what `domain` alone says, on the seeds and on 100 000 mutations of
    /// them: queries with and without OPT, OPT behind other records,
    /// compressed and odd names, cut-short and broken records.
    #[test]
    fn the_fast_path_agrees_with_domain_on_every_message() {
        let mut rng = crate::sketch::Rng::new(0x2545_f491_4f6c_dd1d);
        let mut seeds = seed_messages();
        // A query with OPT then TSIG-like junk, an OPT not first, a
        // compressed question, two questions, an OPT cut short.
        let mut body = question("a.b", 1, 1);
        body.extend(rr(&[0], 250, 255, 0, &[1, 2, 3]));
        body.extend(opt(512, 3, 1, true));
        seeds.push(msg(3, 0x0100, [1, 0, 0, 2], &body));
        let mut body = question("x.example", 28, 1);
        body.extend(opt(1400, 0x80, 0, true));
        seeds.push(msg(4, 0x0100, [1, 0, 0, 1], &body));
        let mut body = question("x.example", 28, 1);
        body.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        body.extend(opt(1400, 0, 0, false));
        seeds.push(msg(5, 0x0100, [2, 0, 0, 1], &body));
        let mut body = question("Mixed.CASE.example", 16, 3);
        let o = opt(1232, 0, 0, false);
        body.extend_from_slice(&o[..o.len() - 1]);
        seeds.push(msg(6, 0x0100, [1, 0, 0, 1], &body));
        let mut fast = 0usize;
        for i in 0..100_000 {
            let mut m = seeds[i % seeds.len()].clone();
            for _ in 0..rng.below(4) {
                let at = rng.below(m.len() as u64) as usize;
                m[at] = hostile_byte(&mut rng);
            }
            if rng.below(5) == 0 {
                let keep = rng.below(m.len() as u64 + 1) as usize;
                m.truncate(keep);
            }
            let reference = if m.len() < HEADER_LEN {
                Err(DecodeError::Truncated)
            } else {
                decode_with_domain(&m, header_of(&m))
            };
            let got = decode(&m);
            assert_eq!(fingerprint(&got), fingerprint(&reference), "{m:02x?}");
            if m.len() >= HEADER_LEN && m[5] == 1 && m[4] == 0 {
                let mut probe = header_of(&m);
                fast += usize::from(plain_question(&m, &mut probe).is_some());
            }
        }
        assert!(fast > 30_000, "the fast path took only {fast}");
    }

    #[test]
    fn random_and_mutated_messages_never_panic() {
        let mut rng = crate::sketch::Rng::new(0x9e37_79b9_7f4a_7c15);
        let seeds = seed_messages();
        let mut ok = 0usize;
        for i in 0..20_000 {
            let mut m = if i % 4 == 0 {
                // Pure noise with a plausible header.
                let len = rng.below(80) as usize;
                (0..len).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()
            } else {
                seeds[i % seeds.len()].clone()
            };
            // Mutate: flip bytes, plant pointers and odd lengths, truncate.
            let flips = rng.below(6);
            for _ in 0..flips {
                if m.is_empty() {
                    break;
                }
                let at = rng.below(m.len() as u64) as usize;
                m[at] = hostile_byte(&mut rng);
            }
            if rng.below(4) == 0 && !m.is_empty() {
                let keep = rng.below(m.len() as u64 + 1) as usize;
                m.truncate(keep);
            }
            if let Ok(d) = decode(&m) {
                ok += 1;
                let _ = d.answers();
                if let Some(q) = &d.question {
                    assert!(q.qname.wire_len() <= 255);
                    let _ = q.qname.to_string();
                }
            }
        }
        assert!(ok > 1000, "too few messages decoded: {ok}");
    }
}
