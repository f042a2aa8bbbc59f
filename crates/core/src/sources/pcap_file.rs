//! Offline replay: pcap and pcapng files (libpcap via the `pcap` crate),
//! read one after the other in the order given. A file that cannot be
//! opened is an error before anything starts (`PcapFiles::open` checks them
//! all); a file that breaks part-way (corrupt or truncated record) is
//! listed in `broken` with the record number and (classic pcap) the byte
//! offset; a pcap or pcapng file then goes on at the next plausible record
//! (`pcap_resync`), a stream ends there; the next file is read either way.
//!
//! Streams (`-` for standard input, a FIFO, `/dev/stdin` on a pipe) can be
//! read only once: [`PcapFiles::open_single`] opens them up front, exactly
//! once, and the result is read by one worker (`shared() == false`) instead
//! of every worker opening every file.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::pcap_classic::{Classic, Step};
use super::pcap_resync::{
    Layout, NgResumed, Resumed, find_next, is_pcapng, ng_find_next, ng_first_bad_block,
};

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("cannot read capture {path}: {message}")]
    Open { path: PathBuf, message: String },
}

/// What reads the current file: libpcap, or (after a corrupt record in a
/// classic pcap file) our own reader from the next good record on.
enum Reader {
    /// A regular classic pcap file, while every record is plainly good
    /// (`pcap_classic`); libpcap takes over at the first that is not.
    Classic(Classic),
    Pcap(pcap::Capture<pcap::Offline>),
    Resumed(Resumed),
    /// A dnstap (Frame Streams) file, recognised by its content: its
    /// frames go out with link type `dnstap::LINKTYPE_DNSTAP`.
    Dnstap(crate::dnstap::file::DnstapFile),
    NgResumed(NgResumed),
}

/// One captured frame, borrowed until the next call.
pub struct RawPacket<'a> {
    /// Index of the file in the list (0-based).
    pub file: usize,
    /// 1-based frame number within its file (as tshark counts).
    pub frame: u64,
    pub linktype: i32,
    pub ts_us: i64,
    /// Length on the wire (may exceed `data.len()` when snapped).
    pub orig_len: u32,
    pub data: &'a [u8],
    /// Who sent the frame, when it is not this process's own input: the
    /// sensor id (`consume`); the event log's `source` field.
    pub source: Option<&'a str>,
}

pub struct PcapFiles {
    paths: Vec<PathBuf>,
    /// Captures already opened (streams, which cannot be opened twice).
    opened: Vec<Option<pcap::Capture<pcap::Offline>>>,
    /// Every worker reads the files (true), or one worker reads them all.
    shared: bool,
    next_file: usize,
    current: Option<(Reader, i32)>,
    frame: u64,
    /// Bytes of records consumed (record headers + captured data), for progress.
    pub bytes_read: u64,
    /// Files that ended with a read error; (path, message).
    pub broken: Vec<(PathBuf, String)>,
    buf: Vec<u8>,
    meta: (i64, u32),
    /// Bytes of the current file accounted for (classic pcap layout).
    file_bytes: u64,
    total: u64,
}

/// `-` (standard input), or anything that is not a regular file (a FIFO, a
/// character device, `/dev/stdin` on a pipe): it can be read only once.
pub fn is_stream(path: &Path) -> bool {
    path.as_os_str() == "-" || std::fs::metadata(path).is_ok_and(|m| !m.is_file())
}

/// How a path is named in messages (`-` is standard input).
pub fn shown(path: &Path) -> PathBuf {
    if path.as_os_str() == "-" {
        PathBuf::from("<stdin>")
    } else {
        path.to_path_buf()
    }
}

/// Open a stream once (see [`is_stream`]) for libpcap to read sequentially.
fn open_stream(path: &Path) -> Result<pcap::Capture<pcap::Offline>, SourceError> {
    use std::os::fd::{AsFd, IntoRawFd};
    let err = |message: String| SourceError::Open {
        path: shown(path),
        message,
    };
    let fd = if path.as_os_str() == "-" {
        // A duplicate: libpcap closes what it is given.
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| err(e.to_string()))?
            .into_raw_fd()
    } else {
        std::fs::File::open(path)
            .map_err(|e| err(e.to_string()))?
            .into_raw_fd()
    };
    // SAFETY: `fd` is an open descriptor that we own and hand over to
    // libpcap, which closes it with the capture.
    unsafe { pcap::Capture::from_raw_fd(fd) }.map_err(|e| err(e.to_string()))
}

/// Try to open a capture (pcap, pcapng or dnstap); the error names the file.
pub fn check_readable(path: &Path) -> Result<(), SourceError> {
    if crate::dnstap::file::sniff(path) {
        return crate::dnstap::file::DnstapFile::open(path)
            .map(|_| ())
            .map_err(|message| SourceError::Open {
                path: path.to_path_buf(),
                message,
            });
    }
    pcap::Capture::from_file(path)
        .map(|_| ())
        .map_err(|e| SourceError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// The time of the first record of a capture file; `None` when it has none
/// or cannot be read.
pub fn first_time_us(path: &Path) -> Option<i64> {
    if crate::dnstap::file::sniff(path) {
        return crate::dnstap::file::first_time_us(path);
    }
    let mut cap = pcap::Capture::from_file(path).ok()?;
    let p = cap.next_packet().ok()?;
    Some(record_time_us(p.header.ts.tv_sec, p.header.ts.tv_usec))
}

/// Regular capture files in the order of their first record's time, so a
/// later file given first does not make an earlier one late (and lost to
/// detection). The sort is stable: files starting at the same time keep
/// the order given; files without a readable record go first (they add no
/// packets to be late). Streams cannot be peeked at: do not pass them.
pub fn in_time_order(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut keyed: Vec<(Option<i64>, PathBuf)> = paths
        .iter()
        .map(|p| (first_time_us(p), p.clone()))
        .collect();
    keyed.sort_by_key(|(t, _)| *t);
    keyed.into_iter().map(|(_, p)| p).collect()
}

impl PcapFiles {
    /// Check that every file opens, then prepare to read them in order.
    pub fn open(paths: &[PathBuf]) -> Result<Self, SourceError> {
        for p in paths {
            check_readable(p)?;
        }
        Ok(Self::new(paths))
    }

    /// Open captures for a single reader: streams (see [`is_stream`]) are
    /// opened now, once (their header is read, so a stream that is not a
    /// capture fails here); regular files are checked as by `open`.
    pub fn open_single(paths: &[PathBuf]) -> Result<Self, SourceError> {
        let mut opened = Vec::with_capacity(paths.len());
        for p in paths {
            if is_stream(p) {
                opened.push(Some(open_stream(p)?));
            } else {
                check_readable(p)?;
                opened.push(None);
            }
        }
        let mut files = Self::new(paths);
        files.opened = opened;
        files.shared = false;
        Ok(files)
    }

    /// Every worker reads these files (false: one worker reads everything).
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// Prepare to read files already checked by `open` (each worker reads
    /// them all); a file that fails later ends early and is listed in
    /// `broken`.
    pub fn new(paths: &[PathBuf]) -> Self {
        let total = paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        PcapFiles {
            paths: paths.to_vec(),
            opened: Vec::new(),
            shared: true,
            next_file: 0,
            current: None,
            frame: 0,
            bytes_read: 0,
            broken: vec![],
            buf: Vec::with_capacity(65536),
            meta: (0, 0),
            file_bytes: 0,
            total,
        }
    }

    /// Sum of the files' sizes, for progress.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// The next frame of the current file, moving on to the next file at
    /// its end; `None` when all files are done. The frame is copied into a
    /// reused buffer (one memcpy, no allocation).
    pub fn next_packet(&mut self) -> Option<RawPacket<'_>> {
        loop {
            if self.current.is_none() {
                let path = self.paths.get(self.next_file)?.clone();
                self.next_file += 1;
                self.frame = 0;
                self.file_bytes = 24;
                let opened = self
                    .opened
                    .get_mut(self.next_file - 1)
                    .and_then(Option::take);
                if opened.is_none() && crate::dnstap::file::sniff(&path) {
                    match crate::dnstap::file::DnstapFile::open(&path) {
                        Ok(f) => {
                            let lt = crate::dnstap::LINKTYPE_DNSTAP;
                            self.current = Some((Reader::Dnstap(f), lt));
                        }
                        Err(e) => self.broken.push((shown(&path), e)),
                    }
                    continue;
                }
                let stream = opened.is_some();
                match opened.map_or_else(|| pcap::Capture::from_file(&path), Ok) {
                    Ok(cap) => {
                        // libpcap names the link type (it maps the file's
                        // LINKTYPE_ to its DLT_ value) either way.
                        let lt = cap.get_datalink().0;
                        let reader = match (!stream).then(|| Classic::open(&path)).flatten() {
                            Some(c) => Reader::Classic(c),
                            None => Reader::Pcap(cap),
                        };
                        self.current = Some((reader, lt));
                    }
                    Err(e) => {
                        self.broken.push((shown(&path), e.to_string()));
                        continue;
                    }
                }
            }
            let file = self.next_file - 1;
            let (reader, lt) = self.current.as_mut()?;
            let linktype = *lt;
            let got = match reader {
                Reader::Classic(c) => match c.step() {
                    Step::Record(ts_us, orig_len) => Ok(Some((ts_us, orig_len))),
                    Step::End => Ok(None),
                    Step::HandOver => {
                        self.hand_over(file, linktype);
                        continue;
                    }
                },
                Reader::Pcap(cap) => match cap.next_packet() {
                    Ok(p) => {
                        self.buf.clear();
                        self.buf.extend_from_slice(p.data);
                        let ts_us = record_time_us(p.header.ts.tv_sec, p.header.ts.tv_usec);
                        Ok(Some((ts_us, p.header.len)))
                    }
                    Err(pcap::Error::NoMorePackets) => Ok(None),
                    Err(e) => Err(e.to_string()),
                },
                Reader::Resumed(r) => r.next(&mut self.buf),
                Reader::Dnstap(f) => match f.next_frame() {
                    Ok(Some(d)) => {
                        self.buf.clear();
                        self.buf.extend_from_slice(d);
                        // A frame without a time keeps the previous one
                        // (the ingest counts it as malformed).
                        let ts_us = crate::dnstap::message::frame_time_us(d).unwrap_or(self.meta.0);
                        Ok(Some((ts_us, d.len() as u32)))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e.to_string()),
                },
                Reader::NgResumed(r) => r.next(&mut self.buf),
            };
            match got {
                Ok(Some(meta)) => self.meta = meta,
                Ok(None) => {
                    // libpcap reports a record cut short at the end of a file as
                    // a clean end; classic pcap files are checked by size.
                    let path = &self.paths[file];
                    if let Some(extra) = trailing_bytes(path, self.file_bytes) {
                        self.broken.push((
                            path.clone(),
                            format!(
                                "record {} at byte offset {}: truncated: {extra} bytes after the last complete record",
                                self.frame + 1,
                                self.file_bytes
                            ),
                        ));
                    }
                    self.current = None;
                    continue;
                }
                Err(e) => {
                    self.record_failed(file, linktype, &e);
                    continue;
                }
            }
            let data = match &self.current {
                Some((Reader::Classic(c), _)) => c.data(),
                _ => &self.buf,
            };
            self.frame += 1;
            self.bytes_read += 16 + data.len() as u64;
            self.file_bytes += 16 + data.len() as u64;
            return Some(RawPacket {
                file,
                frame: self.frame,
                linktype,
                ts_us: self.meta.0,
                orig_len: self.meta.1,
                data,
                source: None,
            });
        }
    }
}

/// A record's time in µs since the epoch. The classic pcap header stores
/// seconds as an unsigned 32-bit number (valid until 2106); libpcap hands
/// them over as a C `long` after going through a signed 32-bit field on
/// some paths, so a time past 2038 arrives negative: it is read back as
/// the unsigned value it was written as.
pub fn record_time_us(tv_sec: i64, tv_usec: i64) -> i64 {
    let secs = if (i64::from(i32::MIN)..0).contains(&tv_sec) {
        tv_sec + (1i64 << 32)
    } else {
        tv_sec
    };
    secs.saturating_mul(1_000_000).saturating_add(tv_usec)
}

impl PcapFiles {
    /// The fast reader is not sure of the next record: libpcap reads the
    /// file again, skips the records already handed on and reads the rest
    /// (so whatever is odd there is read, or reported, as libpcap does).
    fn hand_over(&mut self, file: usize, linktype: i32) {
        let path = self.paths[file].clone();
        self.current = None;
        let mut cap = match pcap::Capture::from_file(&path) {
            Ok(cap) => cap,
            Err(e) => {
                self.broken.push((
                    shown(&path),
                    format!(
                        "record {}: {e}; the rest of the file was not read",
                        self.frame + 1
                    ),
                ));
                return;
            }
        };
        for n in 0..self.frame {
            if let Err(e) = cap.next_packet() {
                // The file changed under us: stop rather than read twice.
                self.broken.push((
                    shown(&path),
                    format!(
                        "record {}: {e} on reading it again; the rest of the file was not read",
                        n + 1
                    ),
                ));
                return;
            }
        }
        self.current = Some((Reader::Pcap(cap), linktype));
    }

    /// The record after the last good one of file `file` could not be
    /// read (`why`): say where, and in a classic pcap file go on at the
    /// next plausible record when there is one within reach.
    fn record_failed(&mut self, file: usize, linktype: i32, why: &str) {
        let path = self.paths[file].clone();
        if is_pcapng(&path) {
            self.ng_record_failed(path, linktype, why);
            return;
        }
        let at = self.file_bytes;
        let record = self.frame + 1;
        // Offsets are exact for classic pcap (the only layout counted);
        // pcapng and streams name the record only.
        let Some(layout) = Layout::of_file(&path) else {
            self.broken.push((
                shown(&path),
                format!("record {record}: {why}; the rest of the file was not read"),
            ));
            self.current = None;
            return;
        };
        let near_sec = (self.frame > 0).then(|| self.meta.0.div_euclid(1_000_000));
        let resumed = find_next(&path, layout, at, near_sec)
            .ok()
            .flatten()
            .and_then(|to| Some((to, Resumed::open(&path, layout, to).ok()?)));
        let head = format!("record {record} at byte offset {at}: {why}");
        match resumed {
            Some((to, r)) => {
                self.broken.push((
                    path,
                    format!(
                        "{head}; skipped {} bytes, went on at byte offset {to}",
                        to - at
                    ),
                ));
                self.bytes_read += to - at;
                self.file_bytes = to;
                self.current = Some((Reader::Resumed(r), linktype));
            }
            None => {
                self.broken.push((
                    path,
                    format!("{head}; no good record after it, the rest of the file was not read"),
                ));
                self.current = None;
            }
        }
    }
}

impl PcapFiles {
    /// `record_failed` for a pcapng file: find the bad block (walking the
    /// blocks from the start while libpcap was reading, else where our own
    /// reader stopped) and go on at the next plausible block after it.
    fn ng_record_failed(&mut self, path: PathBuf, linktype: i32, why: &str) {
        let record = self.frame + 1;
        let last_us = self.meta.0;
        let near_sec = (self.frame > 0).then(|| last_us.div_euclid(1_000_000));
        let found = match self.current.take() {
            Some((Reader::NgResumed(r), _)) => Some((r.offset, r.layout().clone())),
            _ => ng_first_bad_block(&path)
                .ok()
                .flatten()
                .map(|(at, layout, _)| (at, layout)),
        };
        let Some((at, layout)) = found else {
            self.broken.push((
                shown(&path),
                format!("record {record}: {why}; the rest of the file was not read"),
            ));
            return;
        };
        let head = format!("record {record} at byte offset {at}: {why}");
        let resumed = ng_find_next(&path, &layout, at, near_sec)
            .ok()
            .flatten()
            .and_then(|to| Some((to, NgResumed::open(&path, layout, to, last_us).ok()?)));
        match resumed {
            Some((to, r)) => {
                self.broken.push((
                    path,
                    format!(
                        "{head}; skipped {} bytes, went on at byte offset {to}",
                        to - at
                    ),
                ));
                self.bytes_read += to - at;
                self.current = Some((Reader::NgResumed(r), linktype));
            }
            None => self.broken.push((
                path,
                format!("{head}; no good record after it, the rest of the file was not read"),
            )),
        }
    }
}

/// For a classic pcap file (not pcapng, not a stream), the bytes left over
/// after `used` bytes of header and complete records, when there are any.
fn trailing_bytes(path: &Path, used: u64) -> Option<u64> {
    Layout::of_file(path)?;
    let size = std::fs::metadata(path).ok()?.len();
    (size > used).then(|| size - used)
}
