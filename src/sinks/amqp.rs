//! RabbitMQ (AMQP 0-9-1) alert sink and consumer.
//!
//! [`AmqpAlertSink`] publishes every alert state as one persistent message
//! (body = the `dnsmonitor.alert/1` JSON line, routing key
//! `<kind>.<severity>`) to a durable topic exchange, with publisher confirms.
//! `emit` only queues into a bounded in-memory buffer; a background tokio
//! runtime publishes in order, waits for the broker's confirms, and on any
//! connection/channel error reconnects with bounded exponential backoff and
//! re-publishes every alert not yet confirmed.
//!
//! Delivery is **at least once**: an alert whose confirm was lost in a broker
//! restart is published again, so consumers may see duplicates (same
//! `message_id` = `<id>-<state>-<event_time_us>`). When more than
//! [`MAX_PENDING_ALERTS`] are waiting (broker down for long), the oldest are
//! dropped and counted (`dnsmonitor_amqp_publishes_total{outcome="dropped"}`).
//!
//! Credentials: the URI is used as given; every message and log shows it
//! through [`redact`] (password replaced by `***`, and everything that
//! could be part of one when the URI does not parse), and lapin's own error
//! texts pass through [`err_text`], which removes the URI and the secret.
//!
//! TLS: lapin is built without TLS, so [`check_uri`] refuses `amqps://`
//! instead of letting it connect in clear.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::alert::{Alert, alert_id};
use crate::metrics::Metrics;
use crate::sinks::AlertSink;

/// Default exchange name.
pub const DEFAULT_EXCHANGE: &str = "dnsmonitor.alerts";
/// Most alerts kept waiting for a confirm; beyond this the oldest are dropped.
pub const MAX_PENDING_ALERTS: usize = 10_000;
/// How long `finish()` waits for outstanding confirms.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(30);
/// Reconnect backoff: first delay, doubled up to the maximum.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Time allowed for the first connection (fail fast at start).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A confirm not received within this time counts as a connection failure.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// Alerts published before waiting for their confirms.
const BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// The broker could not be reached or refused the connection.
    #[error("cannot connect to AMQP broker {uri}: {reason}")]
    Connect { uri: String, reason: String },
    /// Connected, but declaring/binding/consuming failed.
    #[error("AMQP error on {uri}: {what}: {reason}")]
    Broker {
        uri: String,
        what: String,
        reason: String,
    },
    #[error("cannot start the AMQP runtime: {0}")]
    Runtime(#[from] io::Error),
    /// The URI does not parse (shown redacted).
    #[error("invalid AMQP URI {uri}: {reason}")]
    BadUri { uri: String, reason: String },
    /// `amqps://`: this build has no TLS, and never downgrades to clear text.
    #[error(
        "AMQP URI {uri}: amqps:// (TLS) is not supported by this build; refusing rather than connecting without TLS (use amqp:// on a trusted network, or a TLS tunnel such as stunnel to the broker)"
    )]
    TlsUnsupported { uri: String },
}

impl AmqpError {
    /// `what` failed on the broker at `uri` (shown without its password).
    pub(crate) fn broker(uri: &str, what: impl Into<String>, e: &lapin::Error) -> AmqpError {
        AmqpError::Broker {
            uri: redact(uri),
            what: what.into(),
            reason: err_text(e, uri),
        }
    }
}

/// The URI with its password (if any) replaced by `***`. When the URI is
/// ambiguous (a `/`, `?` or `#` in the password, no `@`), everything that
/// could be a secret is hidden: all of the userinfo up to the last `@`, or
/// the whole authority and path when there is no `@` and the authority is
/// not a plain `host[:port]`.
pub fn redact(uri: &str) -> String {
    let (shown, _) = split_secret(uri);
    shown
}

/// (`uri` as shown, the part of it hidden) — see [`redact`].
fn split_secret(uri: &str) -> (String, Option<&str>) {
    let Some(scheme_end) = uri.find("://") else {
        // Not even a scheme: nothing of it is safe to show.
        return ("***".into(), Some(uri).filter(|u| !u.is_empty()));
    };
    let auth_start = scheme_end + 3;
    let rest = &uri[auth_start..];
    let delimiters = ['/', '?', '#'];
    match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let host = &rest[at..];
            match userinfo.split_once(':') {
                // The usual `user:password@`: the user name is shown.
                Some((user, password)) if !user.contains(delimiters) => (
                    format!("{}{user}:***{host}", &uri[..auth_start]),
                    Some(password).filter(|p| !p.is_empty()),
                ),
                // No password at all.
                None if !userinfo.contains(delimiters) => (uri.to_string(), None),
                _ => (
                    format!("{}***{host}", &uri[..auth_start]),
                    Some(userinfo).filter(|u| !u.is_empty()),
                ),
            }
        }
        None => {
            let authority = &rest[..rest.find(delimiters).unwrap_or(rest.len())];
            let plain_host = match authority.rsplit_once(':') {
                Some((host, port)) => {
                    !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit())
                }
                None => true,
            };
            if plain_host || authority.starts_with('[') {
                (uri.to_string(), None)
            } else {
                (
                    format!("{}***", &uri[..auth_start]),
                    Some(rest).filter(|r| !r.is_empty()),
                )
            }
        }
    }
}

/// A lapin error's text without the URI or its secret in it.
pub(crate) fn err_text(e: &lapin::Error, uri: &str) -> String {
    scrub(&e.to_string(), uri)
}

/// `text` with `uri` shown redacted and its secret replaced by `***`.
fn scrub(text: &str, uri: &str) -> String {
    let (shown, secret) = split_secret(uri);
    let mut text = if uri.is_empty() {
        text.to_string()
    } else {
        text.replace(uri, &shown)
    };
    if let Some(secret) = secret {
        text = text.replace(secret, "***");
    }
    text
}

/// Check a broker URI before connecting: it must parse, and `amqps://` is
/// refused (no TLS in this build; never a silent downgrade). Errors show
/// the URI redacted.
pub fn check_uri(uri: &str) -> Result<(), AmqpError> {
    match uri.parse::<lapin::uri::AMQPUri>() {
        Err(reason) => Err(AmqpError::BadUri {
            uri: redact(uri),
            reason: scrub(&reason, uri),
        }),
        Ok(u) if u.scheme == lapin::uri::AMQPScheme::AMQPS => {
            Err(AmqpError::TlsUnsupported { uri: redact(uri) })
        }
        Ok(_) => Ok(()),
    }
}

/// Routing key of an alert: `<kind>.<severity>`, e.g. `client_flood.critical`.
pub fn routing_key(a: &Alert) -> String {
    format!("{}.{}", a.kind.as_str(), a.severity.as_str())
}

/// Message id: `<alert id>-<state>-<event_time_us>` (same on a re-send).
pub fn message_id(a: &Alert) -> String {
    format!(
        "{}-{}-{}",
        alert_id(a.kind, &a.key),
        a.state.as_str(),
        a.event_time_us
    )
}

struct Pending {
    seq: u64,
    routing_key: String,
    message_id: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    next_seq: u64,
    stop: bool,
}

struct PublisherState {
    q: Mutex<Queue>,
    /// Signalled whenever the pending queue shrinks (for `finish`).
    drained: Condvar,
    /// Wakes the publisher task.
    wake: tokio::sync::Notify,
    metrics: Option<Metrics>,
    uri: String,
    exchange: String,
}

impl PublisherState {
    fn count(&self, outcome: &str, n: u64) {
        if let Some(m) = &self.metrics
            && n > 0
        {
            m.amqp_publishes.with_label_values(&[outcome]).inc_by(n);
        }
    }

    /// Queue messages (routing key, message id, body) for publishing; past
    /// [`MAX_PENDING_ALERTS`] waiting, the oldest are dropped and counted.
    fn enqueue(&self, messages: impl Iterator<Item = (String, String, Vec<u8>)>) {
        let mut dropped = 0u64;
        {
            let mut q = self.q.lock().unwrap();
            for (routing_key, message_id, body) in messages {
                let seq = q.next_seq;
                q.next_seq += 1;
                q.pending.push_back(Pending {
                    seq,
                    routing_key,
                    message_id,
                    body,
                });
                if q.pending.len() > MAX_PENDING_ALERTS {
                    q.pending.pop_front();
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            self.count("dropped", dropped);
            tracing::warn!(
                "AMQP buffer full ({MAX_PENDING_ALERTS} messages waiting for {}); dropped the {dropped} oldest",
                redact(&self.uri)
            );
        }
        self.wake.notify_one();
    }
}

/// Publishes alerts to a RabbitMQ topic exchange (see the module docs).
pub struct AmqpAlertSink {
    shared: Arc<PublisherState>,
    runtime: Option<tokio::runtime::Runtime>,
    finish_timeout: Duration,
    finished: bool,
}

/// Open a connection, failing after [`CONNECT_TIMEOUT`]; errors show the
/// URI without its password.
pub async fn connect(uri: &str) -> Result<Connection, AmqpError> {
    check_uri(uri)?;
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect(uri, ConnectionProperties::default()),
    )
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(AmqpError::Connect {
            uri: redact(uri),
            reason: err_text(&e, uri),
        }),
        Err(_) => Err(AmqpError::Connect {
            uri: redact(uri),
            reason: format!("no answer within {CONNECT_TIMEOUT:?}"),
        }),
    }
}

/// Call `open` until it succeeds, sleeping between failures (each logged)
/// from [`BACKOFF_INITIAL`] doubling up to [`BACKOFF_MAX`]; `None` once
/// `give_up` (asked before every attempt) says so.
pub(crate) async fn reopen<T, Fut>(
    mut open: impl FnMut() -> Fut,
    mut give_up: impl FnMut() -> bool,
) -> Option<T>
where
    Fut: std::future::Future<Output = Result<T, AmqpError>>,
{
    let mut backoff = BACKOFF_INITIAL;
    loop {
        if give_up() {
            return None;
        }
        match open().await {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::warn!("{e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

async fn open(uri: &str, exchange: &str) -> Result<(Connection, Channel), AmqpError> {
    let conn = connect(uri).await?;
    let broker = |what: &str, e: lapin::Error| AmqpError::broker(uri, what, &e);
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| broker("open channel", e))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| broker("confirm.select", e))?;
    declare_exchange(&ch, exchange, ExchangeKind::Topic)
        .await
        .map_err(|e| broker(&format!("declare exchange {exchange}"), e))?;
    Ok((conn, ch))
}

/// Declare a durable exchange of `kind` (an existing one must match).
pub(crate) async fn declare_exchange(
    ch: &Channel,
    exchange: &str,
    kind: ExchangeKind,
) -> lapin::Result<()> {
    ch.exchange_declare(
        exchange.into(),
        kind,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
}

impl AmqpAlertSink {
    /// Connect (fail fast if the broker is unreachable), open a channel with
    /// publisher confirms, declare the durable topic `exchange` and start the
    /// background publisher. An empty `exchange` means [`DEFAULT_EXCHANGE`].
    pub fn connect(uri: &str, exchange: &str, metrics: Option<Metrics>) -> Result<Self, AmqpError> {
        let exchange = if exchange.is_empty() {
            DEFAULT_EXCHANGE
        } else {
            exchange
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("amqp-alerts")
            .enable_all()
            .build()?;
        let first = runtime.block_on(open(uri, exchange))?;
        let shared = Arc::new(PublisherState {
            q: Mutex::new(Queue::default()),
            drained: Condvar::new(),
            wake: tokio::sync::Notify::new(),
            metrics,
            uri: uri.to_string(),
            exchange: exchange.to_string(),
        });
        runtime.spawn(publisher(shared.clone(), first));
        Ok(AmqpAlertSink {
            shared,
            runtime: Some(runtime),
            finish_timeout: FINISH_TIMEOUT,
            finished: false,
        })
    }

    /// Change how long `finish()` waits (default [`FINISH_TIMEOUT`]).
    pub fn set_finish_timeout(&mut self, t: Duration) {
        self.finish_timeout = t;
    }

    /// Alerts queued and not yet confirmed.
    pub fn pending(&self) -> usize {
        self.shared.q.lock().unwrap().pending.len()
    }

    fn shutdown(&mut self) {
        self.shared.q.lock().unwrap().stop = true;
        self.shared.wake.notify_one();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

enum Step {
    Idle,
    Done,
    Failed(String),
}

/// Publish the oldest (up to BATCH) pending alerts and wait for their
/// confirms; remove the confirmed ones from the queue.
async fn publish_batch(shared: &PublisherState, ch: &Channel) -> Step {
    let batch: Vec<(u64, String, String, Vec<u8>)> = {
        let q = shared.q.lock().unwrap();
        if q.pending.is_empty() {
            return if q.stop { Step::Done } else { Step::Idle };
        }
        q.pending
            .iter()
            .take(BATCH)
            .map(|p| {
                (
                    p.seq,
                    p.routing_key.clone(),
                    p.message_id.clone(),
                    p.body.clone(),
                )
            })
            .collect()
    };
    let mut confirms = Vec::with_capacity(batch.len());
    for (seq, rk, mid, body) in &batch {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(mid.as_str().into())
            .with_app_id("dnsmonitor".into());
        match ch
            .basic_publish(
                shared.exchange.as_str().into(),
                rk.as_str().into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
        {
            Ok(c) => confirms.push((*seq, c)),
            Err(e) => {
                // The whole batch is unconfirmed and will be re-sent.
                shared.count("failed", batch.len() as u64);
                return Step::Failed(err_text(&e, &shared.uri));
            }
        }
    }
    let total = confirms.len();
    for (done, (seq, c)) in confirms.into_iter().enumerate() {
        let res = tokio::time::timeout(CONFIRM_TIMEOUT, c).await;
        let failure = match res {
            Ok(Ok(conf)) if conf.is_ack() => None,
            Ok(Ok(_)) => Some("broker nacked a publish".to_string()),
            Ok(Err(e)) => Some(err_text(&e, &shared.uri)),
            Err(_) => Some(format!("no confirm within {CONFIRM_TIMEOUT:?}")),
        };
        if let Some(f) = failure {
            shared.count("failed", (total - done) as u64);
            return Step::Failed(f);
        }
        let mut q = shared.q.lock().unwrap();
        // The alert may have been dropped meanwhile (buffer overflow).
        while q.pending.front().is_some_and(|p| p.seq <= seq) {
            q.pending.pop_front();
        }
        drop(q);
        shared.count("confirmed", 1);
        shared.drained.notify_all();
    }
    Step::Idle
}

async fn publisher(shared: Arc<PublisherState>, first: (Connection, Channel)) {
    let red = redact(&shared.uri);
    let mut link = Some(first);
    loop {
        let (conn, ch) = match link.take() {
            Some(l) => l,
            None => {
                let again = reopen(
                    || open(&shared.uri, &shared.exchange),
                    || shared.q.lock().unwrap().stop,
                );
                match again.await {
                    Some(l) => {
                        tracing::info!("reconnected to AMQP broker {red}");
                        l
                    }
                    None => return,
                }
            }
        };
        loop {
            match publish_batch(&shared, &ch).await {
                Step::Done => {
                    let _ = conn.close(200, "dnsmonitor finished".into()).await;
                    return;
                }
                Step::Idle => {
                    let has_work = {
                        let q = shared.q.lock().unwrap();
                        !q.pending.is_empty() || q.stop
                    };
                    if !has_work {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), shared.wake.notified())
                                .await;
                    }
                }
                Step::Failed(why) => {
                    tracing::warn!(
                        "AMQP publish to {red} failed ({why}); reconnecting, unconfirmed alerts will be re-sent"
                    );
                    break;
                }
            }
        }
        drop(ch);
        drop(conn);
    }
}

/// Report lines (`dnsmonitor.report/1`) published through an alert sink's
/// connection and buffer, one message per line, routing key
/// `report.<report>` (e.g. `report.top_qnames`).
pub struct AmqpReports {
    shared: Arc<PublisherState>,
    buf: Vec<u8>,
}

impl io::Write for AmqpReports {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            let body = line[..line.len() - 1].to_vec();
            let v: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let name = v["report"].as_str().unwrap_or("unknown").to_string();
            let time = v["event_time"].as_str().unwrap_or("").to_string();
            self.shared.enqueue(std::iter::once((
                format!("report.{name}"),
                format!("report-{name}-{time}"),
                body,
            )));
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AmqpAlertSink {
    /// A writer for report lines that publishes them on this sink's exchange.
    pub fn reports(&self) -> AmqpReports {
        AmqpReports {
            shared: self.shared.clone(),
            buf: Vec::new(),
        }
    }

    /// Wait (up to the finish timeout) until nothing is waiting for a confirm;
    /// the number still waiting.
    fn drain(&self) -> usize {
        let deadline = crate::time::Clock.now() + self.finish_timeout;
        let mut q = self.shared.q.lock().unwrap();
        while !q.pending.is_empty() {
            let now = crate::time::Clock.now();
            if now >= deadline {
                break;
            }
            q = self
                .shared
                .drained
                .wait_timeout(q, deadline - now)
                .unwrap()
                .0;
        }
        q.pending.len()
    }
}

impl AlertSink for AmqpAlertSink {
    fn emit(&mut self, alerts: &[Alert]) -> io::Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        self.shared.enqueue(
            alerts
                .iter()
                .map(|a| (routing_key(a), message_id(a), a.to_json_line().into_bytes())),
        );
        Ok(())
    }

    fn settled(&self) -> bool {
        self.pending() == 0
    }

    /// Wait for every confirm (reports may still come from the report sink:
    /// the connection stays up until the sink is dropped).
    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let left = self.drain();
        if left > 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{left} alert(s) not confirmed by AMQP broker {} within {:?}",
                    redact(&self.shared.uri),
                    self.finish_timeout
                ),
            ));
        }
        Ok(())
    }
}

impl Drop for AmqpAlertSink {
    fn drop(&mut self) {
        // What was queued after `finish` (the last reports) still goes out.
        if self.finished {
            let left = self.drain();
            if left > 0 {
                tracing::error!(
                    "{left} message(s) not confirmed by AMQP broker {}",
                    redact(&self.shared.uri)
                );
            }
        }
        self.shutdown();
    }
}

/// Like [`consume_alerts_blocking_ready`] without the readiness callback.
pub fn consume_alerts_blocking(
    uri: &str,
    exchange: &str,
    bindings: &[String],
    stop: Arc<AtomicBool>,
    on_line: impl FnMut(&str),
) -> Result<(), AmqpError> {
    consume_alerts_blocking_ready(uri, exchange, bindings, stop, || {}, on_line)
}

/// Consume alerts: declare the (durable topic) exchange, an exclusive
/// auto-delete server-named queue bound with each pattern in `bindings`
/// (none = `#`), and call `on_line` with each message body; the message is
/// acked after `on_line` returns. `ready` is called once the queue is bound
/// (alerts published from then on are received). Returns when `stop` is set
/// (checked every 100 ms), or with an error if the connection is lost.
pub fn consume_alerts_blocking_ready(
    uri: &str,
    exchange: &str,
    bindings: &[String],
    stop: Arc<AtomicBool>,
    ready: impl FnOnce(),
    mut on_line: impl FnMut(&str),
) -> Result<(), AmqpError> {
    let exchange = if exchange.is_empty() {
        DEFAULT_EXCHANGE
    } else {
        exchange
    };
    let red = redact(uri);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let broker = |what: &str, e: lapin::Error| AmqpError::broker(uri, what, &e);
        let conn = connect(uri).await?;
        let ch = conn
            .create_channel()
            .await
            .map_err(|e| broker("open channel", e))?;
        declare_exchange(&ch, exchange, ExchangeKind::Topic)
            .await
            .map_err(|e| broker(&format!("declare exchange {exchange}"), e))?;
        let queue = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker("declare queue", e))?;
        let qname = queue.name().clone();
        let default = ["#".to_string()];
        let patterns = if bindings.is_empty() {
            &default[..]
        } else {
            bindings
        };
        for p in patterns {
            ch.queue_bind(
                qname.clone(),
                exchange.into(),
                p.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker(&format!("bind {p}"), e))?;
        }
        ch.basic_qos(100, BasicQosOptions::default())
            .await
            .map_err(|e| broker("basic.qos", e))?;
        let mut consumer = ch
            .basic_consume(
                qname,
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker("basic.consume", e))?;
        ready();
        while !stop.load(Ordering::Relaxed) {
            let next = match tokio::time::timeout(Duration::from_millis(100), consumer.next()).await
            {
                Err(_) => continue,
                Ok(n) => n,
            };
            let d = match next {
                None => {
                    return Err(AmqpError::Broker {
                        uri: red.clone(),
                        what: "consume".into(),
                        reason: "consumer cancelled by the broker".into(),
                    });
                }
                Some(Err(e)) => return Err(broker("consume", e)),
                Some(Ok(d)) => d,
            };
            on_line(&String::from_utf8_lossy(&d.data));
            d.ack(BasicAckOptions::default())
                .await
                .map_err(|e| broker("ack", e))?;
        }
        let _ = conn.close(200, "stopped".into()).await;
        Ok(())
    })
}

pub use crate::sinks::escape::for_terminal as clean;
use crate::sinks::escape::{acts_on_terminal, json_for_terminal};

/// Why a message on the alert exchange was not printed as an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotAlert {
    /// A `dnsmonitor.report/1` line (published on the same exchange).
    Report,
    /// Not JSON at all.
    NotJson,
    /// JSON, but not a `dnsmonitor.alert/1` object.
    OtherJson,
}

impl NotAlert {
    pub fn as_str(self) -> &'static str {
        match self {
            NotAlert::Report => "report",
            NotAlert::NotJson => "not JSON",
            NotAlert::OtherJson => "JSON that is not an alert",
        }
    }
}

/// One message body as `dnsmonitor alerts` prints it: a readable line
/// (`human`, for a terminal) or the alert JSON on one line; either way
/// nothing in it can act on a terminal or break the line. Anything that is
/// not a `dnsmonitor.alert/1` object is refused, saying what it is.
pub fn alert_line(body: &str, human: bool) -> Result<String, NotAlert> {
    alert_line_coloured(body, human, false)
}

/// [`alert_line`], the readable form coloured when `colour`.
pub fn alert_line_coloured(body: &str, human: bool, colour: bool) -> Result<String, NotAlert> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|_| NotAlert::NotJson)?;
    match v.get("schema").and_then(|s| s.as_str()) {
        Some(crate::alert::SCHEMA) => {}
        Some(crate::reports::SCHEMA) => return Err(NotAlert::Report),
        _ => return Err(NotAlert::OtherJson),
    }
    if human {
        return Ok(crate::sinks::human::human_line(&v, colour));
    }
    // As published when already clean (byte for byte), else re-written.
    if !body.contains(['\n', '\r']) && !body.chars().any(acts_on_terminal) {
        return Ok(body.to_string());
    }
    Ok(json_for_terminal(&v.to_string()))
}
