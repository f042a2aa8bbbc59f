//! dnsmonitor: the facade the binary, the tests, the benches and the fuzz
//! targets use. The library is the crate `dnsmonitor_core` (crates/core)
//! and the traffic generator `dnsmonitor_synth` (crates/synth, above it);
//! both are reached here under their old paths (`dnsmonitor::detect`,
//! `dnsmonitor::synth`, ...). Nothing is defined here.

pub use dnsmonitor_core::*;
pub use dnsmonitor_synth as synth;
