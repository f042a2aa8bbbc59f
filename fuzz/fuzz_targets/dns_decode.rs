//! The DNS decoder on one message: never a panic; what it decodes renders
//! as a JSON event line, and its answers and names can be walked.
//! The check itself is `checks::dns_decode` (shared with tests/fuzz_regressions.rs).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::dns_decode(data));
