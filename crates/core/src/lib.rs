//! dnsmonitor-core: real-time DNS DoS and malicious-domain detection on
//! timely dataflow. The library holds everything but the traffic generator
//! (crates/synth, above it); the binary's `main.rs`/`cli.rs` only parse
//! arguments and print. See ARCHITECTURE.md for the flow and the rooms.

pub mod alert;
pub mod amqp;
pub mod blocklist;
pub mod cluster;
pub mod config;
pub mod dataflow;
pub mod detect;
pub mod dns;
pub mod dnstap;
pub mod engine;
pub mod escape;
pub mod metrics;
pub mod packet;
pub mod reports;
pub mod runtime;
pub mod sinks;
pub mod sketch;
pub mod sources;
pub mod spec;
pub mod time;
pub mod tui;
pub mod window;

/// mimalloc instead of glibc malloc, for every binary, test and bench that
/// links the library. What is left of allocation is per new key (a sample
/// name, a domain key, a packed cold tally), and under a spoofed flood that
/// is millions of small blocks freed a window later: glibc spent a fifth of
/// the run consolidating and unlinking them (see README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
