//! The packet-batch parser (a RabbitMQ message body): a body is checked as
//! a whole, and when accepted every record lies inside it and the count
//! and newest timestamp agree with the records.
#![no_main]

use dnsmonitor::sources::pcap_batch::PcapBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(b) = PcapBatch::parse(data) else {
        return;
    };
    let mut n = 0u64;
    let mut newest: Option<i64> = None;
    for r in b.records() {
        n += 1;
        newest = Some(newest.map_or(r.ts_us, |t| t.max(r.ts_us)));
        assert!(r.data.len() <= data.len());
    }
    assert_eq!(n, b.packets);
    assert_eq!(newest, b.max_ts_us);
});
