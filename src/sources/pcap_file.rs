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
}

/// Try to open a capture; the error names the file.
pub fn check_readable(path: &Path) -> Result<(), SourceError> {
    pcap::Capture::from_file(path)
        .map(|_| ())
        .map_err(|e| SourceError::Open { path: path.to_path_buf(), message: e.to_string() })
}

impl PcapFiles {
    /// Check that every file opens, then prepare to read them in order.
    pub fn open(paths: &[PathBuf]) -> Result<Self, SourceError> {
        for p in paths {
            check_readable(p)?;
        }
        Ok(PcapFiles { paths: paths.to_vec(), next_file: 0, current: None, frame: 0, bytes_read: 0, broken: vec![], buf: Vec::with_capacity(65536), meta: (0, 0) })
    }

    /// Sum of the files' sizes, for progress.
    pub fn total_bytes(&self) -> u64 {
        self.paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
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
                    let ts_us = p.header.ts.tv_sec as i64 * 1_000_000 + p.header.ts.tv_usec as i64;
                    self.meta = (ts_us, p.header.len);
                }
                Err(pcap::Error::NoMorePackets) => {
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
