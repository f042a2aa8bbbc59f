//! Sources of raw packets. Each yields captured frames in capture order
//! with their link type and timestamp; nothing here decodes them.

pub mod pcap_file;

pub use pcap_file::{PcapFiles, RawPacket, SourceError};
