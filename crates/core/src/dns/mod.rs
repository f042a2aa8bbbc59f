//! DNS layer: decode a payload into a compact `DnsMessage` (borrowing the
//! packet bytes), and write the per-message event log line.

pub mod decode;
pub mod event;
pub mod name;

pub use decode::{DecodeError, DnsMessage, decode};
pub use name::{QName, ShortStr};
