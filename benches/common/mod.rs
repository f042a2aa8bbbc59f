//! Shared by the bench binaries: the generated bench capture, a discarding
//! writer, peak-RSS reading.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use dnsmonitor::synth::scenario::{Flood, Scenario};

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn capture() -> PathBuf {
    let qps = env_u64("BENCH_QPS", 16_000);
    let secs = env_u64("BENCH_SECS", 60);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("bench-{qps}qps-{secs}s.pcap"));
    if !path.exists() {
        eprintln!("generating {} ...", path.display());
        let s = Scenario {
            seed: 42,
            duration_s: secs as u32,
            clients: 5000,
            background_qps: qps as f64,
            floods: vec![Flood {
                client: "10.66.0.1".parse().unwrap(),
                start_s: 10.0,
                end_s: 20.0,
                qps: 2000,
            }],
            ..Scenario::default()
        };
        let tmp = path.with_extension("tmp");
        s.write_file(&tmp).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

pub fn peak_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub struct Sink;
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Only client_flood and blocklist_hit (the first issue's pipeline).
pub const TWO_DETECTORS: &str = "[detectors.subnet_flood]\nenabled = false\n[detectors.nxdomain_flood]\nenabled = false\n[detectors.servfail_flood]\nenabled = false\n[detectors.random_subdomain]\nenabled = false\n[detectors.amplification]\nenabled = false\n[detectors.unsolicited_response]\nenabled = false\n[detectors.spoofed_flood]\nenabled = false\n[detectors.rate_anomaly]\nenabled = false\n[detectors.tunneling]\nenabled = false\n";
