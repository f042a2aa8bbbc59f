//! Unidirectional Frame Streams files (as `fstrm_capture` or a resolver's
//! file output writes them): START with the dnstap content type, data
//! frames, STOP. Recognised by content ([`sniff`]), never by name. Reads
//! through one reused buffer; a length over a bound ends the file with an
//! error naming the frame and byte offset.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use super::DnstapError;
use super::frames::{self, ControlType, MAX_CONTROL_BYTES, MAX_FRAME_BYTES};

/// True when the file starts like a Frame Streams stream: an escape and a
/// START control frame (a pcap or pcapng file never starts with zeros).
pub fn sniff(path: &Path) -> bool {
    let mut head = [0u8; 12];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    f.read_exact(&mut head).is_ok()
        && head[..4] == [0; 4]
        && head[8..12] == (ControlType::Start as u32).to_be_bytes()
}

/// A dnstap file being read.
#[derive(Debug)]
pub struct DnstapFile {
    r: BufReader<File>,
    buf: Vec<u8>,
    /// Bytes consumed so far (frames and control frames).
    pub offset: u64,
    /// Data frames read.
    pub frames: u64,
    done: bool,
}

/// Where a file went wrong: the error and the byte offset of the frame.
#[derive(Debug)]
pub struct FileError {
    pub error: DnstapError,
    pub offset: u64,
    pub frame: u64,
    /// The I/O error, when there was one.
    pub io: Option<String>,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dnstap frame {} at byte offset {}: {}",
            self.frame, self.offset, self.error
        )?;
        if let Some(io) = &self.io {
            write!(f, " ({io})")?;
        }
        Ok(())
    }
}

impl DnstapFile {
    /// Open and check the START frame (content type dnstap, or none).
    pub fn open(path: &Path) -> Result<DnstapFile, String> {
        let f = File::open(path).map_err(|e| e.to_string())?;
        let mut me = DnstapFile {
            r: BufReader::with_capacity(1 << 16, f),
            buf: Vec::with_capacity(4096),
            offset: 0,
            frames: 0,
            done: false,
        };
        match me.frame() {
            Ok(Some(None)) => {
                let start = frames::parse_control(&me.buf).map_err(|e| e.to_string())?;
                if start.kind != ControlType::Start {
                    return Err(format!(
                        "not a dnstap file: it starts with a {} control frame, not START",
                        start.kind.as_str()
                    ));
                }
                if !start.offers_dnstap() {
                    return Err(format!(
                        "not a dnstap file: content type \"{}\" is not protobuf:dnstap.Dnstap",
                        crate::escape::for_terminal(&String::from_utf8_lossy(
                            start.first_content_type()
                        ))
                    ));
                }
                Ok(me)
            }
            Ok(_) => Err("not a Frame Streams file: no START control frame".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The next frame into `buf`: `Some(Some(len))` for data,
    /// `Some(None)` for a control frame (its body in `buf`), `None` at a
    /// clean end of file before any byte of a frame.
    fn frame(&mut self) -> Result<Option<Option<usize>>, FileError> {
        let at = self.offset;
        let err = |error, io: Option<std::io::Error>, frame| FileError {
            error,
            offset: at,
            frame,
            io: io.map(|e| e.to_string()),
        };
        let frame_no = self.frames + 1;
        let mut len = [0u8; 4];
        match read_full(&mut self.r, &mut len) {
            Ok(0) => return Ok(None),
            Ok(4) => {}
            Ok(_) => return Err(err(DnstapError::Truncated, None, frame_no)),
            Err(e) => return Err(err(DnstapError::Truncated, Some(e), frame_no)),
        }
        let len = u32::from_be_bytes(len) as usize;
        let (body_len, control) = if len == 0 {
            let mut clen = [0u8; 4];
            self.r
                .read_exact(&mut clen)
                .map_err(|e| err(DnstapError::Truncated, Some(e), frame_no))?;
            let clen = u32::from_be_bytes(clen) as usize;
            if clen > MAX_CONTROL_BYTES {
                return Err(err(DnstapError::ControlTooLong, None, frame_no));
            }
            (clen, true)
        } else {
            if len > MAX_FRAME_BYTES {
                return Err(err(DnstapError::FrameTooLong, None, frame_no));
            }
            (len, false)
        };
        self.buf.resize(body_len, 0);
        self.r
            .read_exact(&mut self.buf)
            .map_err(|e| err(DnstapError::Truncated, Some(e), frame_no))?;
        self.offset += if control { 8 } else { 4 } + body_len as u64;
        Ok(Some((!control).then_some(body_len)))
    }

    /// The next data frame's payload; `Ok(None)` after STOP. A file that
    /// ends without STOP, or breaks a bound, is an error.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FileError> {
        while !self.done {
            let at = self.offset;
            match self.frame()? {
                Some(Some(_)) => {
                    self.frames += 1;
                    return Ok(Some(&self.buf));
                }
                Some(None) => {
                    let c = frames::parse_control(&self.buf).map_err(|error| FileError {
                        error,
                        offset: at,
                        frame: self.frames + 1,
                        io: None,
                    })?;
                    if c.kind == ControlType::Stop {
                        self.done = true;
                    } else {
                        return Err(FileError {
                            error: DnstapError::UnexpectedControl,
                            offset: at,
                            frame: self.frames + 1,
                            io: Some(format!("{} inside a file", c.kind.as_str())),
                        });
                    }
                }
                None => {
                    self.done = true;
                    return Err(FileError {
                        error: DnstapError::Truncated,
                        offset: at,
                        frame: self.frames + 1,
                        io: Some("end of file without a STOP frame".into()),
                    });
                }
            }
        }
        Ok(None)
    }
}

/// Read until `buf` is full or the end of the input; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The time of the first message of a dnstap file, when it has one.
pub fn first_time_us(path: &Path) -> Option<i64> {
    let mut f = DnstapFile::open(path).ok()?;
    while let Ok(Some(d)) = f.next_frame() {
        if let Some(t) = super::message::frame_time_us(d) {
            return Some(t);
        }
    }
    None
}

/// Write a unidirectional dnstap file of these frames (tests, tools).
pub fn write(path: &Path, payloads: &[Vec<u8>]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(File::create(path)?);
    out.write_all(&frames::control(
        ControlType::Start,
        Some(frames::CONTENT_TYPE),
    ))?;
    for p in payloads {
        out.write_all(&frames::data(p))?;
    }
    out.write_all(&frames::control(ControlType::Stop, None))?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnstap::message::{MessageType, tests::client_frame};

    #[test]
    fn a_written_file_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.fstrm");
        let frames: Vec<Vec<u8>> = (0..3)
            .map(|i| client_frame(MessageType::ClientQuery, &[i; 12], 100 + i as u64))
            .collect();
        write(&p, &frames).unwrap();
        assert!(sniff(&p));
        let mut f = DnstapFile::open(&p).unwrap();
        for want in &frames {
            assert_eq!(f.next_frame().unwrap().unwrap(), &want[..]);
        }
        assert!(f.next_frame().unwrap().is_none());
        assert_eq!(first_time_us(&p), Some(100_000_005));
    }

    #[test]
    fn truncation_and_huge_lengths_name_the_frame() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.fstrm");
        let f = client_frame(MessageType::ClientQuery, &[0; 12], 1);
        write(&p, std::slice::from_ref(&f)).unwrap();
        let all = std::fs::read(&p).unwrap();
        // cut inside the data frame
        std::fs::write(&p, &all[..all.len() - 20]).unwrap();
        let mut r = DnstapFile::open(&p).unwrap();
        let e = r.next_frame().unwrap_err();
        assert_eq!((e.error, e.frame), (DnstapError::Truncated, 1));
        // a 100 MB length after START
        let start = frames::control(ControlType::Start, Some(frames::CONTENT_TYPE));
        let mut b = start.clone();
        b.extend_from_slice(&(100u32 << 20).to_be_bytes());
        std::fs::write(&p, &b).unwrap();
        let mut r = DnstapFile::open(&p).unwrap();
        let e = r.next_frame().unwrap_err();
        assert_eq!(e.error, DnstapError::FrameTooLong);
        assert_eq!(e.offset, start.len() as u64);
        // not dnstap content
        std::fs::write(&p, frames::control(ControlType::Start, Some(b"x/y"))).unwrap();
        assert!(DnstapFile::open(&p).unwrap_err().contains("x/y"));
    }
}
