//! The blocklist parsers (hosts, plain domains, AdBlock, RPZ/zone files,
//! with their per-file state) through a whole list build:
//! never a panic, and every domain loaded is found again by lookup.
//! The check itself is `checks::blocklist` (shared with tests/fuzz_regressions.rs).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::blocklist(data));
