//! The dnstap path on a Frame Streams byte stream: frames, the protobuf
//! record in each data frame, the DNS message inside it, the detectors and
//! the event line. The check itself is `checks::dnstap` (shared with
//! tests/fuzz_regressions.rs).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::dnstap(data);
});
