//! (in progress)
pub struct DnsMessage;
pub enum DecodeError {}
pub fn decode() {}
