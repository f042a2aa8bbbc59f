//! The pipeline parser and validator (`dnsmonitor check`): never a panic,
//! and every error names the file. Inputs that could name a file outside an
//! empty directory (a `/` or `\`, so no escape spells one) are skipped: the
//! target must not read the machine's files.
//! The check itself is `checks::pipeline` (shared with tests/fuzz_regressions.rs).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::pipeline(data));
