//! Frame Streams (the transport of dnstap), sans I/O: parse one frame from
//! the front of a byte buffer, and build the control frames a receiver
//! sends. Every length read off the wire is checked against a named bound
//! before anything is allocated or sliced; nothing here reads a socket or a
//! file.
//!
//! Wire format: a data frame is a big-endian `u32` length (non-zero) and
//! that many bytes. A control frame is an escape (`u32` zero), a `u32`
//! control length, a `u32` control type and fields (`u32` type, `u32`
//! length, bytes); the only field is the content type.

use super::DnstapError;

/// The content type dnstap senders offer.
pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// Largest data frame accepted: a dnstap message holds at most two DNS
/// messages (64 KiB each over TCP) plus addresses and identity strings.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;
/// Largest control frame accepted (libfstrm's own limit).
pub const MAX_CONTROL_BYTES: usize = 512;
/// Most content-type fields kept from one control frame.
pub const MAX_CONTENT_TYPES: usize = 8;

const FIELD_CONTENT_TYPE: u32 = 1;

/// The control frame types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlType {
    Accept = 1,
    Start = 2,
    Stop = 3,
    Ready = 4,
    Finish = 5,
}

impl ControlType {
    fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => ControlType::Accept,
            2 => ControlType::Start,
            3 => ControlType::Stop,
            4 => ControlType::Ready,
            5 => ControlType::Finish,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ControlType::Accept => "ACCEPT",
            ControlType::Start => "START",
            ControlType::Stop => "STOP",
            ControlType::Ready => "READY",
            ControlType::Finish => "FINISH",
        }
    }
}

/// A control frame: its type and the content types it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    pub kind: ControlType,
    pub content_types: Vec<Vec<u8>>,
}

impl Control {
    /// True when it names no content type or names dnstap's.
    pub fn offers_dnstap(&self) -> bool {
        self.content_types.is_empty() || self.content_types.iter().any(|c| c == CONTENT_TYPE)
    }

    /// The first content type named, for messages (escape before printing).
    pub fn first_content_type(&self) -> &[u8] {
        self.content_types.first().map_or(&[][..], |c| &c[..])
    }
}

/// One frame parsed from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Data(&'a [u8]),
    Control(Control),
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parse the frame at the front of `buf`: `Ok(None)` when more bytes are
/// needed, else the frame and the bytes it took. A length over a bound is
/// an error at once (before its bytes arrive), so a hostile length
/// never makes the caller buffer or allocate it.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, DnstapError> {
    let Some(len) = be32(buf, 0) else {
        return Ok(None);
    };
    if len != 0 {
        let len = len as usize;
        if len > MAX_FRAME_BYTES {
            return Err(DnstapError::FrameTooLong);
        }
        return Ok(buf.get(4..4 + len).map(|d| (Frame::Data(d), 4 + len)));
    }
    let Some(clen) = be32(buf, 4) else {
        return Ok(None);
    };
    let clen = clen as usize;
    if clen > MAX_CONTROL_BYTES {
        return Err(DnstapError::ControlTooLong);
    }
    let Some(body) = buf.get(8..8 + clen) else {
        return Ok(None);
    };
    Ok(Some((Frame::Control(parse_control(body)?), 8 + clen)))
}

/// The body of a control frame (after escape and length).
pub fn parse_control(body: &[u8]) -> Result<Control, DnstapError> {
    let kind = be32(body, 0)
        .and_then(ControlType::from_u32)
        .ok_or(DnstapError::BadControl)?;
    let mut content_types = Vec::new();
    let mut at = 4;
    while at < body.len() {
        let (Some(ftype), Some(flen)) = (be32(body, at), be32(body, at + 4)) else {
            return Err(DnstapError::BadControl);
        };
        let start = at + 8;
        let end = start
            .checked_add(flen as usize)
            .ok_or(DnstapError::BadControl)?;
        let value = body.get(start..end).ok_or(DnstapError::BadControl)?;
        if ftype == FIELD_CONTENT_TYPE && content_types.len() < MAX_CONTENT_TYPES {
            content_types.push(value.to_vec());
        }
        at = end;
    }
    Ok(Control {
        kind,
        content_types,
    })
}

/// A control frame's bytes (escape, length, type, content-type field).
pub fn control(kind: ControlType, content_type: Option<&[u8]>) -> Vec<u8> {
    let mut body = (kind as u32).to_be_bytes().to_vec();
    if let Some(ct) = content_type {
        body.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        body.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        body.extend_from_slice(ct);
    }
    let mut out = 0u32.to_be_bytes().to_vec();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A data frame's bytes (length and payload), for tests and writers.
pub fn data(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_round_trip() {
        let b = control(ControlType::Ready, Some(CONTENT_TYPE));
        let (f, n) = parse(&b).unwrap().unwrap();
        assert_eq!(n, b.len());
        let Frame::Control(c) = f else { panic!() };
        assert_eq!(c.kind, ControlType::Ready);
        assert!(c.offers_dnstap());
        let b = control(ControlType::Start, Some(b"text/plain"));
        let Frame::Control(c) = parse(&b).unwrap().unwrap().0 else {
            panic!()
        };
        assert!(!c.offers_dnstap());
        assert_eq!(c.first_content_type(), b"text/plain");
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let b = data(b"hello");
        for cut in 0..b.len() {
            assert_eq!(parse(&b[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(parse(&b).unwrap(), Some((Frame::Data(b"hello"), 9)));
        let c = control(ControlType::Stop, None);
        for cut in 0..c.len() {
            assert_eq!(parse(&c[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn lengths_over_the_bounds_are_refused_before_their_bytes() {
        let huge = (100u32 * 1024 * 1024).to_be_bytes();
        assert_eq!(parse(&huge), Err(DnstapError::FrameTooLong));
        let mut c = vec![0, 0, 0, 0];
        c.extend_from_slice(&(MAX_CONTROL_BYTES as u32 + 1).to_be_bytes());
        assert_eq!(parse(&c), Err(DnstapError::ControlTooLong));
    }

    #[test]
    fn bad_control_bodies() {
        assert_eq!(parse_control(&[0, 0, 0, 9]), Err(DnstapError::BadControl));
        assert_eq!(parse_control(&[0, 0]), Err(DnstapError::BadControl));
        // a field whose length runs past the body
        let mut b = 2u32.to_be_bytes().to_vec();
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse_control(&b), Err(DnstapError::BadControl));
    }
}
