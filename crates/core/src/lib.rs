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

/// jemalloc instead of glibc malloc, for every binary, test and bench that
/// links the library. What is left of allocation is per new key (a sample
/// name, a domain key, a packed cold tally), and under a spoofed flood that
/// is millions of small blocks freed a window later: glibc spent a fifth of
/// the run consolidating and unlinking them. mimalloc (used before) was as
/// fast but held about twice the live heap at the peak (see README,
/// Performance).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (the `malloc_conf` symbol, with
/// the `_rjem_` prefix of tikv-jemalloc-sys): pages freed are given back to
/// the system after 1 s instead of 10 s, at once without the lazy `muzzy`
/// step. A flood frees its keys' tallies continuously; with the defaults
/// ten seconds of them stayed resident. The environment variable
/// `_RJEM_MALLOC_CONF` still overrides these.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static JEMALLOC_CONF: &u8 = &b"dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];
