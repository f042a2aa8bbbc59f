//! The engine room: the map and reduce engines, plain Rust without timely
//! (the `dataflow` operators drive them; `window` only does pane
//! arithmetic).
//!
//! - Map side: `ingest` turns a worker's frames into DNS messages and lets
//!   every detector observe them into `map_side::MapTables`, one tally per
//!   (detector, key, pane), shipped as `map_side::Shuffle` records when the
//!   watermark passes their pane.
//! - Reduce side: `keyed::KeyedWindows` holds the exchanged tallies per
//!   (detector, key) until their windows close, evaluates the detectors,
//!   learns baselines and drives the alert lifecycle. Keys without state
//!   wait as packed pane tallies (`cold`), found through one hash per record
//!   (`keymap`).

pub mod cold;
pub mod ingest;
pub mod keyed;
pub mod keymap;
pub mod map_side;
