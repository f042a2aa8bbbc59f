//! The pipeline parser and validator (`dnsmonitor check`): never a panic,
//! and every error names the file. Inputs that could name a file outside an
//! empty directory (a `/` or `\`, so no escape spells one) are skipped: the
//! target must not read the machine's files.
#![no_main]

use dnsmonitor::config::Plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains(['/', '\\']) {
        return;
    }
    let base = std::env::temp_dir().join("dnsmonitor-fuzz-empty");
    let _ = std::fs::create_dir_all(&base);
    if let Err(errors) = Plan::from_str(text, "fuzz.toml", &base, &[]) {
        let shown = errors.to_string();
        assert!(shown.contains("fuzz.toml"), "error without the file: {shown}");
    }
});
