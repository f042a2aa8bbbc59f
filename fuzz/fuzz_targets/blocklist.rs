//! The blocklist parsers (hosts, plain domains, AdBlock, RPZ/zone files,
//! with their per-file state) through a whole list build:
//! never a panic, and every domain loaded is found again by lookup.
#![no_main]

use dnsmonitor::blocklist::{BlocklistBuilder, ListKind};
use dnsmonitor::dns::QName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut b = BlocklistBuilder::new();
    let kind = if data.first() == Some(&b'!') {
        ListKind::Allow
    } else {
        ListKind::Block
    };
    if b.add_text("fuzz", &text, kind).is_err() {
        return;
    }
    let set = b.build();
    let domains: Vec<String> = set.domains().take(64).map(str::to_string).collect();
    for d in domains {
        if let Ok(q) = QName::from_text(&d) {
            assert!(set.lookup(&q).is_some(), "loaded domain {d:?} not found");
        }
    }
});
