//! The packet-batch parser (a RabbitMQ message body): a body is checked as
//! a whole, and when accepted every record lies inside it and the count
//! and newest timestamp agree with the records.
//! The check itself is `checks::pcap_batch` (shared with tests/fuzz_regressions.rs).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::pcap_batch(data));
