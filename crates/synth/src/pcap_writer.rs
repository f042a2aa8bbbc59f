//! Classic (libpcap 2.4) capture file writer.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Magic of a classic pcap file with microsecond timestamps.
pub const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
/// Snapshot length written in the global header; longer frames are cut.
pub const PCAP_SNAPLEN: u32 = 65_535;
/// Link type Ethernet (DLT_EN10MB).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Classic pcap writer (hand-written: 24-byte global header, magic
/// 0xa1b2c3d4 microseconds, snaplen 65535, linktype Ethernet 1; 16-byte
/// record headers), over any `io::Write`, in native byte order (as libpcap
/// writes). Wrap files in a `BufWriter` (or use [`PcapWriter::create`]).
pub struct PcapWriter<W: Write> {
    w: W,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (truncates) `path` and writes the global header.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        PcapWriter::new(BufWriter::with_capacity(1 << 16, File::create(path)?))
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte global header.
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC_US.to_ne_bytes());
        h[4..6].copy_from_slice(&2u16.to_ne_bytes()); // version major
        h[6..8].copy_from_slice(&4u16.to_ne_bytes()); // version minor
        // thiszone (8..12) and sigfigs (12..16) stay 0.
        h[16..20].copy_from_slice(&PCAP_SNAPLEN.to_ne_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w })
    }

    /// Writes one record: `ts_us` is microseconds since the Unix epoch.
    /// Frames longer than the snaplen are truncated (orig_len keeps the
    /// real length). Timestamps outside the u32-seconds range are clamped.
    pub fn write_frame(&mut self, ts_us: i64, frame: &[u8]) -> io::Result<()> {
        let secs = ts_us.div_euclid(1_000_000).clamp(0, u32::MAX as i64) as u32;
        let usecs = ts_us.rem_euclid(1_000_000) as u32;
        let orig = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl = orig.min(PCAP_SNAPLEN);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_ne_bytes());
        h[4..8].copy_from_slice(&usecs.to_ne_bytes());
        h[8..12].copy_from_slice(&incl.to_ne_bytes());
        h[12..16].copy_from_slice(&orig.to_ne_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(&frame[..incl as usize])
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}
