//! RabbitMQ (AMQP 0-9-1): everything that talks to a broker, in one room.
//!
//! - `client`: the URI check, connecting (fail fast), the reconnect loop
//!   with bounded backoff, durable exchange declaration.
//! - `error`: [`error::AmqpError`] and the redaction every message and log
//!   line goes through (no password is ever printed).
//! - `batch`: the packet-batch wire format (a pcap or Frame Streams file in
//!   one message body, and its headers), written by the sensor and checked
//!   by the consumer.
//! - `sensor`: `dnsmonitor sensor`, frames published as batches.
//! - `source`: `dnsmonitor consume`, batches consumed as a `FrameSource`,
//!   acked once the windows holding them are written.
//! - `sink`: alerts and reports published (`sinks::Sink`s).
//! - `subscriber`: `dnsmonitor alerts`, the alert exchange printed for
//!   people.
//!
//! What this room must not do: decode packets or DNS, know about timely or
//! the windows beyond the `FrameSource`/`Sink` traits and a pane number
//! to ack by, build a tokio runtime of its own (every task runs on
//! `crate::runtime::shared`), or show a broker URI without [`error::redact`].

pub mod batch;
pub mod client;
pub mod error;
pub mod sensor;
pub mod sink;
pub mod source;
pub mod spec;
pub mod subscriber;

/// Default alert exchange (published to by the sink, read by `alerts`).
pub const DEFAULT_EXCHANGE: &str = "dnsmonitor.alerts";
