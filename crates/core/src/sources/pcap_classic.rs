//! The fast path for regular classic pcap files: records parsed straight
//! out of a large read buffer and handed on as slices of it (no copy, no
//! libpcap call per record). On a classic-pcap cut of the bench capture
//! libpcap and our copy took about 560 instructions a record; this takes
//! about 140, the reads included.
//!
//! It reads only what it is sure of: a record header that passes the
//! strict plausibility check of [`Layout`] (the one resynchronisation
//! trusts) with all its bytes in the file. At anything else (a header
//! libpcap may still accept, a record cut short, a read error)
//! [`Classic::step`] says [`Step::HandOver`] and `PcapFiles` reads the rest
//! of the file with libpcap from that record on, so odd files, truncation
//! and corruption are reported exactly as before.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::pcap_resync::{FILE_HEADER, Layout, RECORD_HEADER};

/// Bytes read at a time (a record that straddles the end is moved to the
/// front first).
const READ_CHUNK: usize = 1 << 20;

pub struct Classic {
    file: File,
    layout: Layout,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// The last record handed on is `buf[data.0..data.1]`.
    data: (usize, usize),
    eof: bool,
}

/// What the next record is.
pub enum Step {
    /// `(ts_us, orig_len)`; its bytes are [`Classic::data`].
    Record(i64, u32),
    /// A clean end: the file ended exactly after a record.
    End,
    /// Not sure: let libpcap read the file from this record on.
    HandOver,
}

impl Classic {
    /// `path`'s records from the first on, when it is a regular classic
    /// pcap file (`None` otherwise: pcapng, a stream, unreadable).
    pub fn open(path: &Path) -> Option<Classic> {
        // Checked before opening: opening a FIFO would wait for a writer.
        if !std::fs::metadata(path).ok()?.is_file() {
            return None;
        }
        let mut file = File::open(path).ok()?;
        let mut header = [0u8; FILE_HEADER];
        file.read_exact(&mut header).ok()?;
        let layout = Layout::of_header(&header)?;
        Some(Classic {
            file,
            layout,
            buf: vec![0; READ_CHUNK],
            pos: 0,
            end: 0,
            data: (0, 0),
            eof: false,
        })
    }

    /// The bytes of the record [`Classic::step`] last returned.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.data.0..self.data.1]
    }

    pub fn step(&mut self) -> Step {
        if !self.fill(RECORD_HEADER) {
            return if self.pos == self.end && self.eof {
                Step::End
            } else {
                Step::HandOver
            };
        }
        let Some(h) = self
            .layout
            .header(&self.buf[self.pos..self.pos + RECORD_HEADER], None)
        else {
            return Step::HandOver;
        };
        let len = RECORD_HEADER + h.incl as usize;
        if !self.fill(len) {
            return Step::HandOver;
        }
        let start = self.pos + RECORD_HEADER;
        self.data = (start, self.pos + len);
        self.pos += len;
        Step::Record(h.ts_us, h.orig)
    }

    /// At least `n` unread bytes in the buffer (`false` when the file ends
    /// or fails first). `n` is at most a record header and
    /// `MAX_RECORD_LEN`, far below the buffer's size.
    fn fill(&mut self, n: usize) -> bool {
        if self.end - self.pos >= n {
            return true;
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        while self.end < n && !self.eof {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // libpcap reads it again and reports what it finds.
                Err(_) => return false,
            }
        }
        self.end >= n
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::pcap_file::{PcapFiles, record_time_us};

    /// A classic little-endian µs pcap of `records` (sec, frac, incl
    /// bytes, orig length), Ethernet.
    fn write_pcap(path: &std::path::Path, records: &[(u32, u32, Vec<u8>, u32)]) {
        let mut out = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        // Version is two u16 (2, 4): rewrite it.
        out[4..8].copy_from_slice(&[2, 0, 4, 0]);
        for (sec, frac, data, orig) in records {
            for v in [*sec, *frac, data.len() as u32, *orig] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(data);
        }
        std::fs::File::create(path)
            .and_then(|mut f| f.write_all(&out))
            .unwrap();
    }

    /// `(ts_us, orig_len, bytes)` of each record.
    type Records = Vec<(i64, u32, Vec<u8>)>;

    /// Every record as libpcap and as `PcapFiles` read it.
    fn both(path: &std::path::Path) -> (Records, Records) {
        let mut cap = pcap::Capture::from_file(path).unwrap();
        let mut theirs = Vec::new();
        while let Ok(p) = cap.next_packet() {
            let ts = record_time_us(p.header.ts.tv_sec, p.header.ts.tv_usec);
            theirs.push((ts, p.header.len, p.data.to_vec()));
        }
        let mut files = PcapFiles::open(&[path.to_path_buf()]).unwrap();
        let mut ours = Vec::new();
        while let Some(p) = files.next_packet() {
            ours.push((p.ts_us, p.orig_len, p.data.to_vec()));
        }
        (theirs, ours)
    }

    #[test]
    fn records_across_many_buffer_refills_come_out_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("many.pcap");
        // About 3.5 MB: records straddle the 1 MiB read chunk several times.
        let records: Vec<_> = (0..3000u32)
            .map(|i| {
                let len = 600 + (i as usize * 37) % 900;
                let data = (0..len).map(|b| (b as u32 ^ i) as u8).collect::<Vec<_>>();
                (
                    1_700_000_000 + i / 100,
                    (i * 331) % 1_000_000,
                    data,
                    len as u32 + 4,
                )
            })
            .collect();
        write_pcap(&path, &records);
        let (theirs, ours) = both(&path);
        assert_eq!(theirs.len(), 3000);
        assert_eq!(ours, theirs);
        // And the fast reader itself read them all, to a clean end.
        let mut fast = super::Classic::open(&path).expect("a classic pcap file");
        let mut n = 0;
        while let super::Step::Record(..) = fast.step() {
            assert_eq!(fast.data(), &theirs[n].2[..]);
            n += 1;
        }
        assert_eq!(n, 3000);
        assert!(matches!(fast.step(), super::Step::End));
    }

    #[test]
    fn a_record_it_is_not_sure_of_goes_to_libpcap_and_nothing_is_lost_or_doubled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.pcap");
        let rec = |i: u32, frac: u32| (1_700_000_000 + i, frac, vec![i as u8; 60], 60);
        // Record 3's sub-second part is out of range: libpcap reads it
        // anyway, the strict check does not, so libpcap takes over there.
        let records = vec![
            rec(1, 10),
            rec(2, 20),
            rec(3, 1_000_001),
            rec(4, 40),
            rec(5, 50),
        ];
        write_pcap(&path, &records);
        let (theirs, ours) = both(&path);
        assert_eq!(theirs.len(), 5);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_record_cut_short_at_the_end_is_reported_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.pcap");
        let records: Vec<_> = (0..4u32)
            .map(|i| (1_700_000_000, i, vec![7u8; 100], 100))
            .collect();
        write_pcap(&path, &records);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 30).unwrap();
        let mut files = PcapFiles::open(std::slice::from_ref(&path)).unwrap();
        let mut n = 0;
        while files.next_packet().is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
        assert_eq!(files.broken.len(), 1, "{:?}", files.broken);
        let why = &files.broken[0].1;
        // libpcap's own words, as when it read the whole file.
        assert!(
            why.starts_with("record 4 at byte offset 372: libpcap error: truncated dump file"),
            "{why}"
        );
    }
}
