//! Going on after a corrupt record in a classic pcap file. libpcap stops
//! at the first record header that makes no sense; [`find_next`] looks for
//! the next plausible one (time near the last good record, lengths within
//! the file's snap length, and the record after it plausible too), and
//! [`Resumed`] reads the rest of the file by hand from there. pcapng files
//! the same way, block by block ([`ng_first_bad_block`], [`ng_find_next`],
//! [`NgResumed`]: a block's length is written at both of its ends, which is
//! what the search checks). Only regular files: a stream cannot be
//! searched. Nothing here trusts a length before checking it against
//! [`MAX_RECORD_LEN`] / [`MAX_NG_BLOCK_LEN`].

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

pub(super) const FILE_HEADER: usize = 24;
pub(super) const RECORD_HEADER: usize = 16;

/// What a classic pcap file header says about its records.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    big_endian: bool,
    nanos: bool,
    snaplen: u32,
}

/// One record header.
#[derive(Clone, Copy, Debug)]
pub(super) struct Header {
    pub(super) ts_us: i64,
    pub(super) incl: u32,
    pub(super) orig: u32,
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
        Layout::of_header(&h)
    }

    /// The layout a classic pcap file header says (`None` for any other
    /// magic number).
    pub(super) fn of_header(h: &[u8; FILE_HEADER]) -> Option<Layout> {
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
        let snaplen = layout.u32_at(h, 16)?;
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
    pub(super) fn header(&self, b: &[u8], near_sec: Option<i64>) -> Option<Header> {
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

// ---------------------------------------------------------------- pcapng --
//
// A pcapng file is a chain of blocks, each `type, total length, body,
// total length` with the length a multiple of 4 written at both ends. That
// repeated length is what a search for the next good block checks: a
// known block type, a length in range, the same length at the far end, a
// packet's interface known and its time near the last good record — and
// the block after it plausible too (or the exact end of the file).

/// Section header block type (also the file's magic number).
const NG_SHB: u32 = 0x0A0D_0D0A;
const NG_IDB: u32 = 1;
const NG_OPB: u32 = 2;
const NG_SPB: u32 = 3;
const NG_NRB: u32 = 4;
const NG_ISB: u32 = 5;
const NG_EPB: u32 = 6;
const NG_DSB: u32 = 0x0A;
const NG_BYTE_ORDER: u32 = 0x1A2B_3C4D;
/// Largest block believed: a largest record plus room for its options.
pub const MAX_NG_BLOCK_LEN: u32 = MAX_RECORD_LEN + 64 * 1024;

/// True when the file starts like a pcapng file.
pub fn is_pcapng(path: &Path) -> bool {
    let mut m = [0u8; 4];
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
        && File::open(path)
            .and_then(|mut f| f.read_exact(&mut m))
            .is_ok()
        && u32::from_le_bytes(m) == NG_SHB
}

/// What the blocks read so far say: the section's byte order and, per
/// interface, its link type and clock ticks per second (`if_tsresol`).
#[derive(Clone, Debug, Default)]
pub struct NgLayout {
    big_endian: bool,
    ifaces: Vec<(i32, u64)>,
}

impl NgLayout {
    fn u32_at(&self, b: &[u8], at: usize) -> Option<u32> {
        let v: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        })
    }

    fn u16_at(&self, b: &[u8], at: usize) -> Option<u16> {
        let v: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        })
    }

    /// The type and total length of a plausible block at the start of `b`
    /// (`b` holds the whole block: the trailing length is checked). A
    /// section header sets the byte order it announces.
    fn block(&mut self, b: &[u8]) -> Option<(u32, usize)> {
        let kind = self.u32_at(b, 0)?;
        if kind == NG_SHB {
            let magic = b.get(8..12)?;
            self.big_endian = match magic {
                [0x1A, 0x2B, 0x3C, 0x4D] => true,
                [0x4D, 0x3C, 0x2B, 0x1A] => false,
                _ => return None,
            };
            debug_assert_eq!(self.u32_at(b, 8), Some(NG_BYTE_ORDER));
        } else if !matches!(
            kind,
            NG_IDB | NG_OPB | NG_SPB | NG_NRB | NG_ISB | NG_EPB | NG_DSB
        ) {
            return None;
        }
        let len = self.u32_at(b, 4)?;
        if len < 12 || !len.is_multiple_of(4) || len > MAX_NG_BLOCK_LEN {
            return None;
        }
        let len = len as usize;
        (self.u32_at(b, len - 4)? as usize == len).then_some((kind, len))
    }

    /// Take in a block that is not a packet (interfaces, sections).
    fn note(&mut self, kind: u32, body: &[u8]) {
        match kind {
            NG_SHB => self.ifaces.clear(),
            NG_IDB => {
                let lt = self.u16_at(body, 0).map_or(-1, i32::from);
                self.ifaces
                    .push((lt, self.tsresol(body.get(8..).unwrap_or_default())));
            }
            _ => {}
        }
    }

    /// Ticks per second from an interface's options (default microseconds).
    fn tsresol(&self, mut opts: &[u8]) -> u64 {
        while let (Some(code), Some(len)) = (self.u16_at(opts, 0), self.u16_at(opts, 2)) {
            let len = usize::from(len);
            if code == 0 {
                break;
            }
            if code == 9
                && len == 1
                && let Some(&r) = opts.get(4)
            {
                let (base, exp) = if r & 0x80 != 0 {
                    (2u64, r & 0x7f)
                } else {
                    (10, r)
                };
                return base
                    .checked_pow(u32::from(exp))
                    .filter(|&t| t > 0)
                    .unwrap_or(1_000_000);
            }
            let Some(rest) = opts.get(4 + len.next_multiple_of(4)..) else {
                break;
            };
            opts = rest;
        }
        1_000_000
    }

    /// A packet block's (time in µs, captured bytes, length on the wire);
    /// `None` when implausible. Simple packet blocks have no time: `last_us`.
    fn packet<'b>(&self, kind: u32, body: &'b [u8], last_us: i64) -> Option<(i64, &'b [u8], u32)> {
        match kind {
            NG_EPB | NG_OPB => {
                let ifid = if kind == NG_EPB {
                    self.u32_at(body, 0)? as usize
                } else {
                    usize::from(self.u16_at(body, 0)?)
                };
                let &(_, per_sec) = self.ifaces.get(ifid)?;
                let hi = u64::from(self.u32_at(body, 4)?);
                let lo = u64::from(self.u32_at(body, 8)?);
                let caplen = self.u32_at(body, 12)?;
                let orig = self.u32_at(body, 16)?;
                if caplen > MAX_RECORD_LEN {
                    return None;
                }
                let data = body.get(20..20 + caplen as usize)?;
                let ticks = (hi << 32) | lo;
                let us = u128::from(ticks) * 1_000_000 / u128::from(per_sec);
                Some((i64::try_from(us).ok()?, data, orig))
            }
            NG_SPB => {
                let orig = self.u32_at(body, 0)?;
                let data = body.get(4..)?;
                let n = data.len().min(orig as usize).min(MAX_RECORD_LEN as usize);
                Some((last_us, &data[..n], orig))
            }
            _ => None,
        }
    }
}

/// Read one block into `buf` (whole, trailing length checked): its type,
/// `None` at a clean end.
fn read_block(
    r: &mut impl Read,
    layout: &mut NgLayout,
    buf: &mut Vec<u8>,
) -> Result<Option<u32>, String> {
    // Type, length and (for a section header) the byte-order magic, which
    // says how to read the length.
    let mut head = [0u8; 12];
    match read_full(r, &mut head[..8]) {
        Ok(0) => return Ok(None),
        Ok(8) => {}
        Ok(n) => return Err(format!("truncated: {n} bytes of a block header")),
        Err(e) => return Err(e.to_string()),
    }
    let mut got = 8;
    if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == NG_SHB {
        if read_full(r, &mut head[8..]).map_err(|e| e.to_string())? < 4 {
            return Err("truncated section header".into());
        }
        got = 12;
        layout.big_endian = head[8..12] == [0x1A, 0x2B, 0x3C, 0x4D];
    }
    let len = layout.u32_at(&head, 4).unwrap_or(0);
    if len < 12 || !len.is_multiple_of(4) || len > MAX_NG_BLOCK_LEN || (len as usize) < got {
        return Err(format!("implausible block length {len}"));
    }
    buf.clear();
    buf.extend_from_slice(&head[..got]);
    buf.resize(len as usize, 0);
    match read_full(r, &mut buf[got..]) {
        Ok(n) if n == len as usize - got => {}
        Ok(n) => return Err(format!("truncated: {} of {len} bytes of a block", n + got)),
        Err(e) => return Err(e.to_string()),
    }
    layout
        .block(buf)
        .map(|(kind, _)| Some(kind))
        .ok_or_else(|| {
            format!(
                "implausible block (type {:#x}, length {len})",
                layout.u32_at(buf, 0).unwrap_or(0)
            )
        })
}

/// Walk a pcapng file's blocks from its start up to the first one that
/// cannot be read: (its offset, the layout before it, packets before it),
/// or `None` when every block reads.
pub fn ng_first_bad_block(path: &Path) -> io::Result<Option<(u64, NgLayout, u64)>> {
    let mut r = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut layout = NgLayout::default();
    let (mut at, mut packets, mut buf) = (0u64, 0u64, Vec::new());
    loop {
        let mut probe = layout.clone();
        match read_block(&mut r, &mut probe, &mut buf) {
            Ok(None) => return Ok(None),
            Ok(Some(kind)) => {
                if matches!(kind, NG_EPB | NG_OPB | NG_SPB) {
                    if probe.packet(kind, &buf[8..buf.len() - 4], 0).is_none() {
                        return Ok(Some((at, layout, packets)));
                    }
                    packets += 1;
                } else {
                    probe.note(kind, &buf[8..buf.len() - 4]);
                }
                layout = probe;
                at += buf.len() as u64;
            }
            Err(_) => return Ok(Some((at, layout, packets))),
        }
    }
}

/// Like [`find_next`] for pcapng: the offset of the next plausible block
/// after the bad one at `from`, with the layout to read on with.
pub fn ng_find_next(
    path: &Path,
    layout: &NgLayout,
    from: u64,
    near_sec: Option<i64>,
) -> io::Result<Option<u64>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let limit = MAX_RESYNC_SCAN + 2 * MAX_NG_BLOCK_LEN as usize;
    let mut buf = Vec::new();
    f.take(limit as u64).read_to_end(&mut buf)?;
    let at_eof = buf.len() < limit;
    let end = buf.len().min(MAX_RESYNC_SCAN);
    let near = |us: i64| {
        near_sec.is_none_or(|n| (us.div_euclid(1_000_000) - n).abs() <= RESYNC_WINDOW_SECS)
    };
    let plausible = |l: &mut NgLayout, b: &[u8]| -> Option<usize> {
        let (kind, len) = l.block(b)?;
        let body = &b[8..len - 4];
        if matches!(kind, NG_EPB | NG_OPB) {
            let (us, _, _) = l.packet(kind, body, 0)?;
            near(us).then_some(len)
        } else {
            // Interfaces and sections change what follows: only packets,
            // simple packets and statistics are resumed on.
            matches!(kind, NG_SPB | NG_ISB).then_some(len)
        }
    };
    for i in 1..end {
        let mut l = layout.clone();
        let Some(len) = plausible(&mut l, &buf[i..]) else {
            continue;
        };
        let next = i + len;
        let confirmed = (at_eof && next == buf.len())
            || buf.get(next..).is_some_and(|rest| l.block(rest).is_some());
        if confirmed {
            return Ok(Some(from + i as u64));
        }
    }
    Ok(None)
}

/// The rest of a pcapng file read by hand from a block boundary.
pub struct NgResumed {
    file: BufReader<File>,
    layout: NgLayout,
    block: Vec<u8>,
    last_us: i64,
    /// Byte offset of the next block.
    pub offset: u64,
}

impl NgResumed {
    /// Read `path` from `offset` on, with the interfaces of `layout`.
    pub fn open(path: &Path, layout: NgLayout, offset: u64, last_us: i64) -> io::Result<NgResumed> {
        let mut f = File::open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(NgResumed {
            file: BufReader::with_capacity(1 << 16, f),
            layout,
            block: Vec::new(),
            last_us,
            offset,
        })
    }

    /// The layout so far (to search on after a bad block).
    pub fn layout(&self) -> &NgLayout {
        &self.layout
    }

    /// The next packet's data into `buf`, as [`Resumed::next`].
    pub fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<(i64, u32)>, String> {
        loop {
            let mut probe = self.layout.clone();
            let Some(kind) = read_block(&mut self.file, &mut probe, &mut self.block)? else {
                return Ok(None);
            };
            let body = &self.block[8..self.block.len() - 4];
            if matches!(kind, NG_EPB | NG_OPB | NG_SPB) {
                let Some((us, data, orig)) = probe.packet(kind, body, self.last_us) else {
                    return Err(format!("implausible packet block (type {kind:#x})"));
                };
                buf.clear();
                buf.extend_from_slice(data);
                self.last_us = us;
                self.layout = probe;
                self.offset += self.block.len() as u64;
                return Ok(Some((us, orig)));
            }
            probe.note(kind, body);
            self.layout = probe;
            self.offset += self.block.len() as u64;
        }
    }
}
