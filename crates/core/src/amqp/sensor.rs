//! `dnsmonitor sensor`: read frames (capture files or a live interface) and
//! publish them to RabbitMQ as packet batches (`amqp::batch`), for a
//! central `dnsmonitor consume`.
//!
//! Nothing lost, nothing reordered: messages are persistent and published
//! with confirms; at most `max_in_flight` batches wait for a confirm (a full
//! window pauses reading, so a stopped broker cannot fill memory). When the
//! link fails the sensor reconnects with backoff and publishes every
//! unconfirmed batch again, in order, with its original sequence number;
//! the consumer drops the copies it already has by (sensor, run, seq).
//! After the input ends (or on stop) a last, empty batch carries
//! `dnsmonitor-eos`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ExchangeKind, PublisherConfirm};

use super::batch::{BatchWriter, H_EOS, H_PACKETS, H_RUN, H_SENSOR, H_SEQ, MAX_RECORD};
use super::client::{connect, declare_exchange, reopen};
use super::error::{AmqpError, err_text, redact};
use crate::metrics::Metrics;
use crate::sources::{CaptureCounters, FrameSource, ReadStatus};
use crate::time::Clock;

/// Packets per batch by default.
pub const DEFAULT_BATCH_PACKETS: usize = 1000;
/// A batch open this long (ms, wall clock) is sent even when not full.
pub const DEFAULT_BATCH_MS: u64 = 200;
/// Batches waiting for a confirm at most, by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// A confirm not received within this time counts as a link failure.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// After a stop request, how long a sensor keeps trying to reach the broker.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How long one read waits for frames (keeps `batch_ms` and stop responsive).
const READ_WAIT: Duration = Duration::from_millis(50);

/// Where batches go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A durable queue, through the default exchange.
    Queue(String),
    /// A (topic) exchange with this routing key.
    Exchange { name: String, routing_key: String },
}

#[derive(Clone, Debug)]
pub struct SensorOptions {
    pub uri: String,
    pub target: Target,
    pub sensor_id: String,
    pub batch_packets: usize,
    pub batch_ms: u64,
    pub max_in_flight: usize,
    pub metrics: Option<Metrics>,
}

/// What a sensor run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SensorSummary {
    pub packets: u64,
    /// Batches confirmed by the broker (the end-of-stream one included).
    pub batches: u64,
    /// Body bytes confirmed.
    pub bytes: u64,
    /// Batches published again after a reconnect.
    pub resent: u64,
    pub reconnects: u64,
    /// Batches the broker could not route (no queue bound).
    pub unroutable: u64,
    pub elapsed: Duration,
    /// Kernel counters at the end (live capture).
    pub capture: Option<CaptureCounters>,
}

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    #[error("stopped while the broker {uri} was unreachable: {left} batch(es) not confirmed")]
    Unconfirmed { uri: String, left: usize },
}

/// The host name, or "sensor".
pub fn default_sensor_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sensor".to_string())
}

struct Msg {
    seq: u64,
    /// `CONTENT_TYPE` or `DNSTAP_CONTENT_TYPE`.
    content_type: &'static str,
    packets: u64,
    eos: bool,
    body: Vec<u8>,
    /// Published on the current channel (its confirm may be awaited).
    sent: bool,
    confirm: Option<PublisherConfirm>,
}

struct Publisher {
    opts: SensorOptions,
    run_id: String,
    link: Option<(Connection, Channel)>,
    next_seq: u64,
    inflight: VecDeque<Msg>,
    summary: SensorSummary,
    stop: Arc<AtomicBool>,
    stop_seen: Option<Instant>,
    warned_unroutable: bool,
}

/// Connect, enable confirms and make sure the target exists.
async fn open(opts: &SensorOptions) -> Result<(Connection, Channel), AmqpError> {
    let uri = &opts.uri;
    let conn = connect(uri).await?;
    let broker = |what: String, e: lapin::Error| AmqpError::broker(uri, what, &e);
    let mut ch = conn
        .create_channel()
        .await
        .map_err(|e| broker("open channel".into(), e))?;
    // Passive first: a consumer may have declared the queue with arguments
    // (dead-lettering) that a plain declare would contradict. A failed
    // passive declare closes the channel.
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let exists = match &opts.target {
        Target::Queue(q) => ch
            .queue_declare(q.as_str().into(), passive, FieldTable::default())
            .await
            .is_ok(),
        Target::Exchange { name, .. } => ch
            .exchange_declare(
                name.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .is_ok(),
    };
    if !exists {
        ch = conn
            .create_channel()
            .await
            .map_err(|e| broker("open channel".into(), e))?;
        match &opts.target {
            Target::Queue(q) => {
                let durable = QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                };
                ch.queue_declare(q.as_str().into(), durable, FieldTable::default())
                    .await
                    .map(|_| ())
                    .map_err(|e| broker(format!("declare queue {q}"), e))?
            }
            Target::Exchange { name, .. } => declare_exchange(&ch, name, ExchangeKind::Topic)
                .await
                .map_err(|e| broker(format!("declare exchange {name}"), e))?,
        }
    }
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| broker("confirm.select".into(), e))?;
    Ok((conn, ch))
}

impl Publisher {
    fn count(&self, outcome: &str, n: u64) {
        if let Some(m) = &self.opts.metrics
            && n > 0
        {
            m.amqp_publishes.with_label_values(&[outcome]).inc_by(n);
        }
    }

    fn properties(&self, m: &Msg) -> BasicProperties {
        let mut h = FieldTable::default();
        h.insert(
            H_SENSOR.into(),
            AMQPValue::LongString(self.opts.sensor_id.as_str().into()),
        );
        h.insert(
            H_RUN.into(),
            AMQPValue::LongString(self.run_id.as_str().into()),
        );
        h.insert(H_SEQ.into(), AMQPValue::LongLongInt(m.seq as i64));
        h.insert(H_PACKETS.into(), AMQPValue::LongLongInt(m.packets as i64));
        if m.eos {
            h.insert(H_EOS.into(), AMQPValue::Boolean(true));
        }
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(m.content_type.into())
            .with_message_id(format!("{}:{}:{}", self.opts.sensor_id, self.run_id, m.seq).into())
            .with_app_id("dnsmonitor-sensor".into())
            .with_timestamp((Clock.unix_micros() / 1_000_000).max(0) as u64)
            .with_headers(h)
    }

    /// Publish what is not yet published, then wait for confirms until at
    /// most `keep` batches are waiting. Errors mean the link is broken.
    async fn progress(&mut self, keep: usize) -> Result<(), String> {
        let Some((_, ch)) = self.link.as_ref() else {
            return Err("not connected".into());
        };
        let ch = ch.clone();
        let (exchange, key) = match &self.opts.target {
            Target::Queue(q) => ("", q.as_str()),
            Target::Exchange { name, routing_key } => (name.as_str(), routing_key.as_str()),
        };
        for i in 0..self.inflight.len() {
            if self.inflight[i].sent {
                continue;
            }
            let props = self.properties(&self.inflight[i]);
            let c = ch
                .basic_publish(
                    exchange.into(),
                    key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &self.inflight[i].body,
                    props,
                )
                .await
                .map_err(|e| err_text(&e, &self.opts.uri))?;
            self.inflight[i].confirm = Some(c);
            self.inflight[i].sent = true;
        }
        while self.inflight.len() > keep {
            let front = self.inflight.front_mut().expect("non-empty");
            let Some(c) = front.confirm.take() else {
                return Err("unpublished batch".into());
            };
            let conf = match tokio::time::timeout(CONFIRM_TIMEOUT, c).await {
                Err(_) => return Err(format!("no confirm within {CONFIRM_TIMEOUT:?}")),
                Ok(Err(e)) => return Err(err_text(&e, &self.opts.uri)),
                Ok(Ok(c)) => c,
            };
            self.confirmed(conf)?;
        }
        // Confirms that already arrived count now (summary, metrics), not
        // only when the window is full.
        while let Some(c) = self.inflight.front_mut().and_then(|m| m.confirm.as_mut()) {
            match futures_lite::future::poll_once(c).await {
                None => break,
                Some(Err(e)) => return Err(err_text(&e, &self.opts.uri)),
                Some(Ok(conf)) => {
                    self.inflight.front_mut().expect("non-empty").confirm = None;
                    self.confirmed(conf)?;
                }
            }
        }
        Ok(())
    }

    /// The oldest batch in flight was confirmed (or nacked: an error).
    fn confirmed(&mut self, conf: Confirmation) -> Result<(), String> {
        match conf {
            Confirmation::Nack(_) => return Err("the broker nacked a batch".into()),
            Confirmation::Ack(returned) => {
                if returned.is_some() {
                    if let Target::Queue(q) = &self.opts.target {
                        // Straight to a queue this sensor declared: a return
                        // means the queue is not there right now (a broker
                        // still recovering its queues after a restart, a
                        // deleted queue). Never drop the batch: reconnect
                        // (declaring the queue again) and send it again.
                        return Err(format!(
                            "queue {} returned a batch as unroutable",
                            q.escape_debug()
                        ));
                    }
                    self.summary.unroutable += 1;
                    if !self.warned_unroutable {
                        self.warned_unroutable = true;
                        let (exchange, key) = match &self.opts.target {
                            Target::Queue(q) => ("(default)", q.as_str()),
                            Target::Exchange { name, routing_key } => {
                                (name.as_str(), routing_key.as_str())
                            }
                        };
                        tracing::warn!(
                            "no queue bound to exchange {exchange} with key {key}; the broker drops these batches"
                        );
                    }
                }
            }
            Confirmation::NotRequested => {}
        }
        let m = self.inflight.pop_front().expect("non-empty");
        self.summary.batches += 1;
        self.summary.packets += m.packets;
        self.summary.bytes += m.body.len() as u64;
        self.count("confirmed", 1);
        Ok(())
    }

    /// Reconnect (with backoff) after a failure; everything unconfirmed will
    /// be published again.
    async fn recover(&mut self, why: String) -> Result<(), SensorError> {
        let red = redact(&self.opts.uri);
        tracing::warn!(
            "AMQP link to {red} failed ({why}); reconnecting, {} unconfirmed batch(es) will be re-sent",
            self.inflight.len()
        );
        self.count("failed", self.inflight.len() as u64);
        for m in self.inflight.iter_mut() {
            if std::mem::take(&mut m.sent) {
                self.summary.resent += 1;
            }
            m.confirm = None;
        }
        self.link = None;
        self.summary.reconnects += 1;
        let (opts, stop, stop_seen) = (&self.opts, &self.stop, &mut self.stop_seen);
        // Retried until stopped, then for STOP_GRACE more.
        let give_up = || {
            stop.load(Ordering::Relaxed)
                && Clock
                    .now()
                    .saturating_duration_since(*stop_seen.get_or_insert(Clock.now()))
                    > STOP_GRACE
        };
        match reopen(|| open(opts), give_up).await {
            Some(l) => {
                tracing::warn!("reconnected to AMQP broker {red}");
                self.link = Some(l);
                Ok(())
            }
            None => Err(SensorError::Unconfirmed {
                uri: red,
                left: self.inflight.len(),
            }),
        }
    }

    /// Make progress until at most `keep` batches wait, whatever it takes.
    async fn settle(&mut self, keep: usize) -> Result<(), SensorError> {
        loop {
            match self.progress(keep).await {
                Ok(()) => return Ok(()),
                Err(why) => self.recover(why).await?,
            }
        }
    }

    async fn send(
        &mut self,
        body: Vec<u8>,
        content_type: &'static str,
        packets: u64,
        eos: bool,
    ) -> Result<(), SensorError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.inflight.push_back(Msg {
            seq,
            content_type,
            packets,
            eos,
            body,
            sent: false,
            confirm: None,
        });
        let keep = self.opts.max_in_flight.max(1) - 1;
        self.settle(keep).await
    }
}

/// Read `input` to its end (or until `stop`), publishing batches; returns
/// once every batch, the end-of-stream one included, is confirmed.
pub fn run(
    opts: SensorOptions,
    mut input: Box<dyn FrameSource + Send>,
    stop: Arc<AtomicBool>,
) -> Result<SensorSummary, SensorError> {
    let clock = Clock;
    let started = clock.now();
    // The shared runtime has worker threads of its own: lapin's heartbeat
    // and internal tasks keep running while this thread reads an idle
    // interface (were they only run inside `block_on`, the broker would
    // close a quiet connection).
    let rt = crate::runtime::shared().map_err(AmqpError::from)?;
    let link = rt.block_on(open(&opts))?;
    let run_id = format!("{:x}-{}", clock.unix_micros(), std::process::id());
    let batch_packets = opts.batch_packets.max(1);
    let batch_age = Duration::from_millis(opts.batch_ms.max(1));
    let mut p = Publisher {
        opts,
        run_id,
        link: Some(link),
        next_seq: 1,
        inflight: VecDeque::new(),
        summary: SensorSummary::default(),
        stop: stop.clone(),
        stop_seen: None,
        warned_unroutable: false,
    };
    let metrics = p.opts.metrics.clone();
    let mut capture_seen = CaptureCounters::default();
    let mut stats_at = clock.now();
    let mut open_batch: Option<(BatchWriter, Instant)> = None;
    let mut full: Vec<BatchWriter> = Vec::new();
    let mut last_linktype = 1;
    loop {
        let (mut frames, mut bytes) = (0u64, 0u64);
        let status = if stop.load(Ordering::Relaxed) && !input.stops_itself() {
            ReadStatus::Done
        } else {
            input.read(batch_packets, READ_WAIT, &mut |raw| {
                frames += 1;
                bytes += raw.data.len() as u64;
                last_linktype = raw.linktype;
                if open_batch
                    .as_ref()
                    .is_some_and(|(b, _)| b.linktype() != raw.linktype)
                {
                    full.extend(open_batch.take().map(|b| b.0));
                }
                let (b, _) = open_batch.get_or_insert_with(|| {
                    (BatchWriter::new(raw.linktype, MAX_RECORD), clock.now())
                });
                b.push(raw.ts_us, raw.data, raw.orig_len);
                if b.packets() as usize >= batch_packets {
                    full.extend(open_batch.take().map(|b| b.0));
                }
            })
        };
        let done = status == ReadStatus::Done;
        if let Some(m) = &metrics {
            m.packets.inc_by(frames);
            m.bytes.inc_by(bytes);
            // Live: kernel counters, once a second.
            if clock.now().saturating_duration_since(stats_at) >= Duration::from_secs(1) {
                stats_at = clock.now();
                if let Some(cc) = input.capture_counters() {
                    cc.publish(&mut capture_seen, m);
                }
            }
        }
        if open_batch
            .as_ref()
            .is_some_and(|(_, t)| done || clock.now().saturating_duration_since(*t) >= batch_age)
        {
            full.extend(open_batch.take().map(|b| b.0));
        }
        for b in full.drain(..) {
            let (n, ct) = (b.packets(), b.content_type());
            rt.block_on(p.send(b.into_bytes(), ct, n, false))?;
        }
        // Count the confirms that came in meanwhile (a quiet wire sends
        // nothing that would).
        if !p.inflight.is_empty() {
            rt.block_on(p.settle(usize::MAX))?;
        }
        if done {
            break;
        }
    }
    let eos = BatchWriter::new(last_linktype, MAX_RECORD);
    let ct = eos.content_type();
    let eos = eos.into_bytes();
    rt.block_on(async {
        p.send(eos, ct, 0, true).await?;
        p.settle(0).await
    })?;
    if let Some((conn, _)) = p.link.take() {
        let _ = rt.block_on(conn.close(200, "dnsmonitor sensor finished".into()));
    }
    p.summary.elapsed = clock.now().saturating_duration_since(started);
    p.summary.capture = input.capture_counters();
    if let (Some(m), Some(cc)) = (&metrics, p.summary.capture) {
        cc.publish(&mut capture_seen, m);
    }
    Ok(p.summary)
}
