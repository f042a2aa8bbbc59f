//! Going on after a corrupt record in a classic pcap file. libpcap stops
//! at the first record header that makes no sense; [`find_next`] looks for
//! the next plausible one (time near the last good record, lengths within
//! the file's snap length, and the record after it plausible too), and
//! [`Resumed`] reads the rest of the file by hand from there. Only regular
//! files in the classic layout: a stream cannot be searched and pcapng has
//! no fixed record header to look for. Nothing here trusts a length before
//! checking it against [`MAX_RECORD_LEN`].

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Most bytes searched after a corrupt record for the next good one.
pub const MAX_RESYNC_SCAN: usize = 16 << 20;
/// Largest record length believed (libpcap's own ceiling).
pub const MAX_RECORD_LEN: u32 = 262_144;
/// A record found by searching must be this close in time (seconds) to
/// the last good record of the file.
pub const RESYNC_WINDOW_SECS: i64 = 86_400;

const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// What a classic pcap file header says about its records.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    big_endian: bool,
    nanos: bool,
    snaplen: u32,
}

/// One record header.
#[derive(Clone, Copy, Debug)]
struct Header {
    ts_us: i64,
    incl: u32,
    orig: u32,
}

impl Layout {
    /// The layout of a regular file in the classic pcap format (`None`
    /// for pcapng, streams and anything unreadable).
    pub fn of_file(path: &Path) -> Option<Layout> {
        if !std::fs::metadata(path).ok()?.is_file() {
            return None;
        }
        let mut h = [0u8; FILE_HEADER];
        File::open(path).ok()?.read_exact(&mut h).ok()?;
        let (big_endian, nanos) = match u32::from_le_bytes([h[0], h[1], h[2], h[3]]) {
            0xa1b2_c3d4 => (false, false),
            0xd4c3_b2a1 => (true, false),
            0xa1b2_3c4d => (false, true),
            0x4d3c_b2a1 => (true, true),
            _ => return None,
        };
        let layout = Layout {
            big_endian,
            nanos,
            snaplen: 0,
        };
        let snaplen = layout.u32_at(&h, 16)?;
        Some(Layout { snaplen, ..layout })
    }

    fn u32_at(&self, b: &[u8], at: usize) -> Option<u32> {
        let v: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        })
    }

    /// The record header at the start of `b`, if it is plausible: a
    /// sub-second part in range, lengths within the snap length and
    /// [`MAX_RECORD_LEN`], captured no more than on the wire; and, when
    /// `near_sec` is given, a time within [`RESYNC_WINDOW_SECS`] of it.
    fn header(&self, b: &[u8], near_sec: Option<i64>) -> Option<Header> {
        let sec = i64::from(self.u32_at(b, 0)?);
        let frac = i64::from(self.u32_at(b, 4)?);
        let incl = self.u32_at(b, 8)?;
        let orig = self.u32_at(b, 12)?;
        let per_sec = if self.nanos { 1_000_000_000 } else { 1_000_000 };
        let cap = if self.snaplen == 0 {
            MAX_RECORD_LEN
        } else {
            self.snaplen.min(MAX_RECORD_LEN)
        };
        let plausible = frac < per_sec
            && incl <= cap
            && incl <= orig
            && orig <= MAX_RECORD_LEN
            && near_sec.is_none_or(|n| (sec - n).abs() <= RESYNC_WINDOW_SECS);
        let us = if self.nanos { frac / 1000 } else { frac };
        plausible.then_some(Header {
            ts_us: sec * 1_000_000 + us,
            incl,
            orig,
        })
    }
}

/// The offset of the next plausible record after the corrupt one at
/// `from` (searching at most [`MAX_RESYNC_SCAN`] bytes): a header near
/// `near_sec` (the last good record's time) followed by another plausible
/// header or by the exact end of the file.
pub fn find_next(
    path: &Path,
    layout: Layout,
    from: u64,
    near_sec: Option<i64>,
) -> io::Result<Option<u64>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let limit = MAX_RESYNC_SCAN + 2 * (RECORD_HEADER + MAX_RECORD_LEN as usize);
    let mut buf = Vec::new();
    f.take(limit as u64).read_to_end(&mut buf)?;
    let at_eof = buf.len() < limit;
    let end = buf.len().min(MAX_RESYNC_SCAN);
    for i in 1..end {
        let Some(h) = layout.header(&buf[i..], near_sec) else {
            continue;
        };
        // An empty record is legal but too weak a sign to resume on.
        if h.incl == 0 {
            continue;
        }
        let next = i + RECORD_HEADER + h.incl as usize;
        let confirmed = (at_eof && next == buf.len())
            || buf
                .get(next..)
                .and_then(|rest| layout.header(rest, near_sec))
                .is_some();
        if confirmed {
            return Ok(Some(from + i as u64));
        }
    }
    Ok(None)
}

/// The rest of a classic pcap file read by hand from a record boundary.
pub struct Resumed {
    file: BufReader<File>,
    layout: Layout,
    /// Byte offset of the next record.
    pub offset: u64,
}

impl Resumed {
    /// Read `path` from `offset` on (a record boundary from [`find_next`]).
    pub fn open(path: &Path, layout: Layout, offset: u64) -> io::Result<Resumed> {
        let mut f = File::open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(Resumed {
            file: BufReader::with_capacity(1 << 16, f),
            layout,
            offset,
        })
    }

    /// The next record's data into `buf`: `Ok(Some((ts_us, orig_len)))`,
    /// `Ok(None)` at a clean end, `Err(why)` when the record at `offset`
    /// is implausible or cut short (`offset` stays at its start).
    pub fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<(i64, u32)>, String> {
        let mut h = [0u8; RECORD_HEADER];
        match read_full(&mut self.file, &mut h) {
            Ok(0) => return Ok(None),
            Ok(n) if n < RECORD_HEADER => {
                return Err(format!("truncated: {n} bytes of a record header"));
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        let Some(hdr) = self.layout.header(&h, None) else {
            let incl = self.layout.u32_at(&h, 8).unwrap_or(0);
            return Err(format!(
                "implausible record header ({incl} captured bytes, snap length {})",
                self.layout.snaplen
            ));
        };
        buf.clear();
        buf.resize(hdr.incl as usize, 0);
        match read_full(&mut self.file, buf) {
            Ok(n) if n == buf.len() => {}
            Ok(n) => {
                return Err(format!(
                    "truncated: {n} of {} bytes of record data",
                    hdr.incl
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
        self.offset += (RECORD_HEADER + buf.len()) as u64;
        Ok(Some((hdr.ts_us, hdr.orig)))
    }
}

/// Read until `buf` is full or the end of the file; how many bytes came.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
