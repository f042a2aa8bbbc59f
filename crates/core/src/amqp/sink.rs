//! The RabbitMQ alert sink: publishing only.
//!
//! [`AmqpAlertSink`] publishes every alert state as one persistent message
//! (body = the `dnsmonitor.alert/1` JSON line, routing key
//! `<kind>.<severity>`) to a durable topic exchange, with publisher confirms.
//! `emit` only queues into a bounded in-memory buffer; a task on the
//! process's tokio runtime publishes in order, waits for the broker's
//! confirms, and on any connection/channel error reconnects with bounded
//! exponential backoff and re-publishes every alert not yet confirmed.
//! [`AmqpReports`] sends reports the same way (routing key
//! `report.<report>`).
//!
//! Delivery is **at least once**: an alert whose confirm was lost in a broker
//! restart is published again, so consumers may see duplicates (same
//! `message_id` = `<id>-<state>-<event_time_us>`). When more than
//! [`MAX_PENDING_ALERTS`] are waiting (broker down for long), the oldest are
//! dropped and counted (`dnsmonitor_amqp_publishes_total{outcome="dropped"}`).
//!
//! Credentials: the URI is used as given and shown only through
//! [`redact`] and [`err_text`] (see `amqp::error`).

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};

use super::DEFAULT_EXCHANGE;
use super::client::{connect, declare_exchange, reopen};
use super::error::{AmqpError, err_text, redact};
use crate::alert::{Alert, alert_id};
use crate::metrics::Metrics;
use crate::reports::Report;
use crate::sinks::Sink;
use crate::time::rfc3339;

/// Most alerts kept waiting for a confirm; beyond this the oldest are dropped.
pub const MAX_PENDING_ALERTS: usize = 10_000;
/// How long `finish()` waits for outstanding confirms.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long dropping the sink waits for the publisher to close its
/// connection before cancelling it.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);
/// A confirm not received within this time counts as a connection failure.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// Alerts published before waiting for their confirms.
const BATCH: usize = 256;

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
    /// The publisher task (on the shared runtime) until shut down.
    task: Option<tokio::task::JoinHandle<()>>,
    finish_timeout: Duration,
    finished: bool,
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
        let runtime = crate::runtime::shared()?;
        let first = runtime.block_on(open(uri, exchange))?;
        let shared = Arc::new(PublisherState {
            q: Mutex::new(Queue::default()),
            drained: Condvar::new(),
            wake: tokio::sync::Notify::new(),
            metrics,
            uri: uri.to_string(),
            exchange: exchange.to_string(),
        });
        let task = runtime.spawn(publisher(shared.clone(), first));
        Ok(AmqpAlertSink {
            shared,
            task: Some(task),
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

    /// Stop the publisher: it closes the connection once nothing is
    /// pending (or gives up reconnecting); after [`SHUTDOWN_WAIT`] it is
    /// cancelled, which drops the connection.
    fn shutdown(&mut self) {
        self.shared.q.lock().unwrap().stop = true;
        self.shared.wake.notify_one();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if crate::runtime::wait(SHUTDOWN_WAIT, task).is_none() {
                abort.abort();
            }
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

/// Reports (`dnsmonitor.report/1`) published through an alert sink's
/// connection and buffer, one message per report, routing key
/// `report.<report>` (e.g. `report.top_qnames`). Not waited for: the alert
/// sink's end waits for them (see its `Drop`).
pub struct AmqpReports {
    shared: Arc<PublisherState>,
}

impl Sink<Report> for AmqpReports {
    fn emit(&mut self, reports: &[Report]) -> io::Result<()> {
        if reports.is_empty() {
            return Ok(());
        }
        self.shared.enqueue(reports.iter().map(|r| {
            let name = r.name();
            (
                format!("report.{name}"),
                format!("report-{name}-{}", rfc3339(r.end_us)),
                r.to_json_line().into_bytes(),
            )
        }));
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AmqpAlertSink {
    /// A report sink that publishes on this sink's exchange.
    pub fn reports(&self) -> AmqpReports {
        AmqpReports {
            shared: self.shared.clone(),
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

impl Sink<Alert> for AmqpAlertSink {
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
