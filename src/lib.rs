//! dnsmonitor: real-time DNS DoS and malicious-domain detection on timely
//! dataflow. The library holds everything; `main.rs`/`cli.rs` only parse
//! arguments and print. See ARCHITECTURE.md for the flow and the rooms.

pub mod alert;
pub mod blocklist;
pub mod config;
pub mod dataflow;
pub mod detect;
pub mod dns;
pub mod dnstap;
pub mod ingest;
pub mod metrics;
pub mod packet;
pub mod reports;
pub mod sensor;
pub mod sinks;
pub mod sketch;
pub mod sources;
pub mod synth;
pub mod time;
pub mod window;
