//! Offline replay: pcap and pcapng files (libpcap via the `pcap` crate),
//! read one after the other in the order given. A file that cannot be
//! opened is an error before anything starts (`PcapFiles::open` checks them
//! all); a file that breaks part-way (truncated record) ends that file with
//! a warning and the counter `truncated_files`, and replay goes on.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("cannot read capture {path}: {message}")]
    Open { path: PathBuf, message: String },
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
}

pub struct PcapFiles {
    paths: Vec<PathBuf>,
    next_file: usize,
    current: Option<(pcap::Capture<pcap::Offline>, i32)>,
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

/// Try to open a capture; the error names the file.
pub fn check_readable(path: &Path) -> Result<(), SourceError> {
    pcap::Capture::from_file(path)
        .map(|_| ())
        .map_err(|e| SourceError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

impl PcapFiles {
    /// Check that every file opens, then prepare to read them in order.
    pub fn open(paths: &[PathBuf]) -> Result<Self, SourceError> {
        for p in paths {
            check_readable(p)?;
        }
        Ok(Self::new(paths))
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
                match pcap::Capture::from_file(&path) {
                    Ok(cap) => {
                        let lt = cap.get_datalink().0;
                        self.current = Some((cap, lt));
                    }
                    Err(e) => {
                        self.broken.push((path, e.to_string()));
                        continue;
                    }
                }
            }
            let file = self.next_file - 1;
            let (cap, lt) = self.current.as_mut()?;
            let linktype = *lt;
            match cap.next_packet() {
                Ok(p) => {
                    self.buf.clear();
                    self.buf.extend_from_slice(p.data);
                    let ts_us = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
                    self.meta = (ts_us, p.header.len);
                }
                Err(pcap::Error::NoMorePackets) => {
                    // libpcap reports a record cut short at the end of a file as
                    // a clean end; classic pcap files are checked by size.
                    let path = &self.paths[file];
                    if let Some(extra) = trailing_bytes(path, self.file_bytes) {
                        self.broken.push((
                            path.clone(),
                            format!("truncated: {extra} bytes after the last complete record (frame {})", self.frame),
                        ));
                    }
                    self.current = None;
                    continue;
                }
                Err(e) => {
                    self.broken.push((self.paths[file].clone(), e.to_string()));
                    self.current = None;
                    continue;
                }
            }
            self.frame += 1;
            self.bytes_read += 16 + self.buf.len() as u64;
            self.file_bytes += 16 + self.buf.len() as u64;
            return Some(RawPacket {
                file,
                frame: self.frame,
                linktype,
                ts_us: self.meta.0,
                orig_len: self.meta.1,
                data: &self.buf,
            });
        }
    }
}

/// For a classic pcap file (not pcapng), the bytes left over after `used`
/// bytes of header and complete records, when there are any.
fn trailing_bytes(path: &Path, used: u64) -> Option<u64> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .ok()?
        .read_exact(&mut magic)
        .ok()?;
    let classic = matches!(
        u32::from_le_bytes(magic),
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1
    );
    let size = std::fs::metadata(path).ok()?.len();
    (classic && size > used).then(|| size - used)
}
