//! The per-message event log line: one JSON object per DNS message, a
//! passive-DNS-like record. The field set and order are an outside contract
//! (documented with the event schema); change them only with a new schema
//! version. Owns JSON string escaping and the RFC 3339 timestamp rendering
//! (civil date from the packet's own timestamp; never reads a clock).
//!
//! Fields, in order: `schema` (always [`SCHEMA`]), `frame`, `ts`, `src`, `sport`, `dst`, `dport`,
//! `transport`, `id`, `qr`, `opcode`, `rcode`, `flags` {`aa`,`tc`,`rd`,`ra`,
//! `ad`,`cd`}, `qname`, `qtype`, `qclass` (the three `null` without a
//! question), `qdcount`, `ancount`, `nscount`, `arcount`, `size`, `edns`
//! (`null` or {`udp_size`,`version`,`do`}), `answers`
//! ([{`name`,`type`,`ttl`,`data`}]). The ingest appends `source` (pcap,
//! dnstap or a sensor id) after `answers`.

use std::fmt;
use std::io::Write as _;

use serde::{Deserialize, Serialize};

use super::decode::DnsMessage;
use crate::packet::Payload;

/// The `schema` field of every event line: tells events from alerts and
/// reports sharing one stream. A breaking change gets a new name.
pub const SCHEMA: &str = "dnsmonitor.event/1";

/// One event-log line on its way to the output: the record of the event
/// sinks, rendered where the message was decoded (so a message is rendered
/// once, on the worker of its shard) and put in capture order by where it
/// was found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventLine {
    /// The capture file among the inputs, and the frame in it.
    pub file: u32,
    pub frame: u64,
    /// The JSON object and its `'\n'` ([`write_event`] and the ingest's
    /// `source`).
    pub line: Vec<u8>,
}

/// Append one JSON object and a `'\n'` to `out`.
///
/// `frame` is the 1-based packet number in the capture. Allocation-free
/// except for the answer records (rendered only when `ancount > 0`).
pub fn write_event(out: &mut Vec<u8>, frame: u64, p: &Payload<'_>, m: &DnsMessage<'_>) {
    out.extend_from_slice(b"{\"schema\":\"");
    out.extend_from_slice(SCHEMA.as_bytes());
    out.extend_from_slice(b"\",\"frame\":");
    write_uint(out, frame);
    out.extend_from_slice(b",\"ts\":\"");
    write_rfc3339_us(out, p.ts_us);
    out.extend_from_slice(b"\",\"src\":\"");
    // IpAddr's Display is plain ASCII (digits, hex, '.', ':'): no escaping.
    let _ = write!(out, "{}", p.src);
    out.extend_from_slice(b"\",\"sport\":");
    write_uint(out, p.sport.into());
    out.extend_from_slice(b",\"dst\":\"");
    let _ = write!(out, "{}", p.dst);
    out.extend_from_slice(b"\",\"dport\":");
    write_uint(out, p.dport.into());
    out.extend_from_slice(b",\"transport\":\"");
    out.extend_from_slice(p.transport.as_str().as_bytes());
    out.extend_from_slice(b"\",\"id\":");
    write_uint(out, m.id.into());
    out.extend_from_slice(b",\"qr\":");
    write_bool(out, m.qr);
    out.extend_from_slice(b",\"opcode\":");
    write_uint(out, m.opcode.into());
    out.extend_from_slice(b",\"rcode\":");
    write_uint(out, m.rcode.into());
    let f = &m.flags;
    out.extend_from_slice(b",\"flags\":{\"aa\":");
    write_bool(out, f.aa);
    out.extend_from_slice(b",\"tc\":");
    write_bool(out, f.tc);
    out.extend_from_slice(b",\"rd\":");
    write_bool(out, f.rd);
    out.extend_from_slice(b",\"ra\":");
    write_bool(out, f.ra);
    out.extend_from_slice(b",\"ad\":");
    write_bool(out, f.ad);
    out.extend_from_slice(b",\"cd\":");
    write_bool(out, f.cd);
    out.extend_from_slice(b"},\"qname\":");
    match &m.question {
        Some(q) => {
            write_json_display(out, &q.qname);
            out.extend_from_slice(b",\"qtype\":");
            write_uint(out, q.qtype.into());
            out.extend_from_slice(b",\"qclass\":");
            write_uint(out, q.qclass.into());
        }
        None => out.extend_from_slice(b"null,\"qtype\":null,\"qclass\":null"),
    }
    out.extend_from_slice(b",\"qdcount\":");
    write_uint(out, m.qdcount.into());
    out.extend_from_slice(b",\"ancount\":");
    write_uint(out, m.ancount.into());
    out.extend_from_slice(b",\"nscount\":");
    write_uint(out, m.nscount.into());
    out.extend_from_slice(b",\"arcount\":");
    write_uint(out, m.arcount.into());
    out.extend_from_slice(b",\"size\":");
    write_uint(out, m.size.into());
    out.extend_from_slice(b",\"edns\":");
    match &m.edns {
        Some(e) => {
            out.extend_from_slice(b"{\"udp_size\":");
            write_uint(out, e.udp_size.into());
            out.extend_from_slice(b",\"version\":");
            write_uint(out, e.version.into());
            out.extend_from_slice(b",\"do\":");
            write_bool(out, e.do_bit);
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"answers\":[");
    if m.ancount > 0 {
        for (i, a) in m.answers().iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            write_json_str(out, &a.name);
            out.extend_from_slice(b",\"type\":");
            write_uint(out, a.rtype.into());
            out.extend_from_slice(b",\"ttl\":");
            write_uint(out, a.ttl.into());
            out.extend_from_slice(b",\"data\":");
            write_json_str(out, &a.data);
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"]}\n");
}

fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Decimal without going through `fmt`.
fn write_uint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Zero-padded decimal of exactly `width` digits (value must fit).
fn write_padded(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    for i in (0..width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC. Years outside 0..=9999 (not
/// representable in RFC 3339; no real capture has them) are written with
/// as many digits as needed and a leading '-' when negative.
pub fn write_rfc3339_us(out: &mut Vec<u8>, ts_us: i64) {
    let secs = ts_us.div_euclid(1_000_000);
    let micros = ts_us.rem_euclid(1_000_000) as u64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u64;
    let (year, month, day) = crate::time::civil_from_days(days);
    if (0..=9999).contains(&year) {
        write_padded(out, year as u64, 4);
    } else {
        if year < 0 {
            out.push(b'-');
        }
        write_uint(out, year.unsigned_abs());
    }
    out.push(b'-');
    write_padded(out, month.into(), 2);
    out.push(b'-');
    write_padded(out, day.into(), 2);
    out.push(b'T');
    write_padded(out, sod / 3600, 2);
    out.push(b':');
    write_padded(out, sod / 60 % 60, 2);
    out.push(b':');
    write_padded(out, sod % 60, 2);
    out.push(b'.');
    write_padded(out, micros, 6);
    out.push(b'Z');
}

/// A JSON string literal for `s`: `"` and `\` backslash-escaped, control
/// characters (and DEL) as `\u00XX`; everything else verbatim (a `&str` is
/// valid UTF-8, so the output is too).
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// A JSON string literal of a value's `Display`, escaped as it streams (no
/// intermediate `String`).
fn write_json_display(out: &mut Vec<u8>, v: &dyn fmt::Display) {
    struct Escaper<'a>(&'a mut Vec<u8>);
    impl fmt::Write for Escaper<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            escape_into(self.0, s);
            Ok(())
        }
    }
    out.push(b'"');
    let _ = fmt::write(&mut Escaper(out), format_args!("{v}"));
    out.push(b'"');
}

fn escape_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::decode::decode;
    use crate::dns::name::QName;
    use crate::packet::Transport;
    use serde_json::Value;

    fn payload(data: &[u8], ts_us: i64) -> Payload<'_> {
        Payload {
            ts_us,
            src: "192.0.2.1".parse().unwrap(),
            dst: "2001:db8::53".parse().unwrap(),
            sport: 53000,
            dport: 53,
            transport: Transport::Udp,
            data,
        }
    }

    fn wire(name: &QName) -> Vec<u8> {
        let mut v = Vec::new();
        for l in name.labels() {
            v.push(l.len() as u8);
            v.extend_from_slice(l);
        }
        v.push(0);
        v
    }

    fn query(name: &QName, arcount: u16, extra: &[u8]) -> Vec<u8> {
        let mut m = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend(wire(name));
        m.extend_from_slice(&[0, 1, 0, 1]);
        m.extend_from_slice(extra);
        m
    }

    fn line(frame: u64, p: &Payload<'_>) -> (Vec<u8>, Value) {
        let m = decode(p.data).unwrap();
        let mut out = Vec::new();
        write_event(&mut out, frame, p, &m);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: Value = serde_json::from_slice(&out).unwrap();
        (out, v)
    }

    #[test]
    fn exact_line_for_a_query() {
        let name = QName::from_text("www.example.com").unwrap();
        // OPT: udp 1232, DO.
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0];
        let data = query(&name, 1, &opt);
        let p = payload(&data, 1_704_164_645_123_456);
        let (out, _) = line(7, &p);
        let expected = concat!(
            r#"{"schema":"dnsmonitor.event/1","frame":7,"ts":"2024-01-02T03:04:05.123456Z","src":"192.0.2.1","sport":53000,"#,
            r#""dst":"2001:db8::53","dport":53,"transport":"udp","id":43981,"qr":false,"opcode":0,"rcode":0,"#,
            r#""flags":{"aa":false,"tc":false,"rd":true,"ra":false,"ad":false,"cd":false},"#,
            r#""qname":"www.example.com","qtype":1,"qclass":1,"qdcount":1,"ancount":0,"nscount":0,"arcount":1,"#,
            r#""size":44,"edns":{"udp_size":1232,"version":0,"do":true},"answers":[]}"#,
            "\n"
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn no_question_and_answers() {
        // Response with qdcount 0 and one TXT answer holding hostile bytes.
        let mut m = vec![0, 1, 0x84, 0x03, 0, 0, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'x', 0, 0, 16, 0, 1, 0, 0, 0, 5]);
        let txt = b"\x08a\"b\\c\n\x00\xff";
        m.extend_from_slice(&(txt.len() as u16).to_be_bytes());
        m.extend_from_slice(txt);
        let p = Payload {
            transport: Transport::Tcp,
            ..payload(&m, 0)
        };
        let (_, v) = line(1, &p);
        assert_eq!(v["ts"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["transport"], "tcp");
        assert_eq!(v["qr"], true);
        assert_eq!(v["rcode"], 3);
        assert_eq!(v["flags"]["aa"], true);
        assert!(v["qname"].is_null() && v["qtype"].is_null() && v["qclass"].is_null());
        assert!(v["edns"].is_null());
        let a = &v["answers"][0];
        assert_eq!(a["name"], "x");
        assert_eq!(a["type"], 16);
        assert_eq!(a["ttl"], 5);
        assert_eq!(a["data"], "\"a\\\"b\\\\c\\010\\000\\255\"");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        // serde_json's default map is sorted; check the set, order is checked
        // by exact_line_for_a_query.
        assert_eq!(keys.len(), 23);
    }

    #[test]
    fn hostile_names_round_trip() {
        let hostile: [&[u8]; 7] = [
            b"\"},{\"evil\":1",
            b"a\\b",
            b"\x00\x01\x1f\x7f\x80\xff",
            b"line\nbreak\r\t",
            b"dot.inside",
            b"\xe2\x80\xa8", // U+2028 in UTF-8
            b"sp ace",
        ];
        for (i, label) in hostile.iter().enumerate() {
            let mut name = QName::new();
            name.push_label(label).unwrap();
            name.push_label(b"Example").unwrap();
            let data = query(&name, 0, &[]);
            let p = payload(&data, -1);
            let (out, v) = line(i as u64 + 1, &p);
            assert!(
                out[..out.len() - 1]
                    .iter()
                    .all(|&b| (0x20..0x7f).contains(&b)),
                "non-printable output"
            );
            let text = v["qname"].as_str().unwrap();
            let back = QName::from_text(text).unwrap();
            assert_eq!(back.label_count(), 2);
            assert_eq!(back.label(0), *label);
            assert_eq!(back.label(1), b"Example");
            assert_eq!(v["ts"], "1969-12-31T23:59:59.999999Z");
        }
    }

    #[test]
    fn json_escaping_of_every_char() {
        let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
        let mut out = Vec::new();
        write_json_str(&mut out, &all);
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, all);
        assert!(!out.iter().any(|&b| b < 0x20));
    }

    #[test]
    fn civil_dates() {
        let ts = |us: i64| {
            let mut v = Vec::new();
            write_rfc3339_us(&mut v, us);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(ts(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(ts(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(ts(4_107_542_399_999_999), "2100-02-28T23:59:59.999999Z");
        assert_eq!(ts(253_402_300_799_000_000), "9999-12-31T23:59:59.000000Z");
        assert_eq!(ts(-62_135_596_800_000_000), "0001-01-01T00:00:00.000000Z");
        assert_eq!(ts(i64::MIN), "-290308-12-21T19:59:05.224192Z");
        assert_eq!(ts(i64::MAX), "294247-01-10T04:00:54.775807Z");
        // Every day boundary for 600 years agrees with a naive day walk.
        let (mut y, mut mo, mut d) = (1900i64, 1u8, 1u8);
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for days in -25_567i64..194_000 {
            assert_eq!(
                crate::time::civil_from_days(days),
                (y, u32::from(mo), u32::from(d))
            );
            let dim = match mo {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > dim {
                d = 1;
                mo += 1;
                if mo > 12 {
                    mo = 1;
                    y += 1;
                }
            }
        }
    }
}
