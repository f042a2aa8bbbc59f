//! RabbitMQ ingest: packet batches (`amqp::batch`) consumed from a
//! durable queue and fed to the dataflow as frames.
//!
//! At least once, never lost: the queue is consumed with a prefetch limit
//! and manual acknowledgements, and a delivery is acked only once every
//! window that contains one of its packets has closed and the alert and
//! event sinks have written that window's output. The dataflow tells the
//! source how far its sinks got ([`FrameSource::outputs_done`]); a delivery
//! whose newest packet is in pane `p` is acked when the sinks passed pane
//! `p + panes - 1` (the last window holding `p`). A consumer killed before
//! that leaves the delivery unacked and RabbitMQ hands it to the next one.
//!
//! Event time is kept per sensor (header `dnsmonitor-sensor`): the watermark
//! is the oldest "newest packet" among the sensors that sent something in
//! the last `idle_timeout`, so one slow sensor holds the windows open and a
//! silent one does not; once every sensor is silent, event time follows the
//! wall clock so open alerts still resolve. A sensor that sent its
//! end-of-stream batch stops counting. While the broker link is down no
//! sensor turns idle (the silence is ours, not theirs).
//!
//! Redeliveries (after a broker restart) are recognised by
//! (sensor, run, seq) and not counted twice. A body that is not a valid
//! pcap is rejected without requeue — dead-lettered when the queue has a
//! dead-letter exchange — counted and logged, and the run goes on.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Acker, Channel, Connection, Consumer, ExchangeKind};

use super::batch::{H_EOS, H_RUN, H_SENSOR, H_SEQ, PcapBatch};
use super::client::{connect, declare_exchange, reopen};
use super::error::{AmqpError, err_text, redact};
use crate::metrics::Metrics;
use crate::sources::{FrameSource, RawPacket, ReadStatus};
use crate::time::Clock;
use crate::time::{JUMP_CONFIRM, TIME_JUMP_US};
use crate::window::{Pane, WindowPlan};

/// Default prefetch (unacked deliveries the broker hands out at once).
pub const DEFAULT_PREFETCH: u16 = 1000;
/// Default idle timeout of a sensor.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most sensors tracked (further ids share the event time of the unnamed one).
pub const MAX_SENSORS: usize = 10_000;
/// How often the queue depth is read (metrics).
const DEPTH_EVERY: Duration = Duration::from_secs(2);
/// How long stopping waits for the consuming task to close its connection.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// All prefetched deliveries waiting this long for their windows: the
/// prefetch is too small for the window; it is doubled.
const STALL_AFTER: Duration = Duration::from_secs(2);

/// Where and how to consume.
#[derive(Clone, Debug)]
pub struct AmqpSourceOptions {
    pub uri: String,
    pub queue: String,
    pub prefetch: u16,
    pub idle_timeout: Duration,
    /// Rejected (malformed) messages go to this exchange (declared fanout,
    /// durable; the queue gets `x-dead-letter-exchange`).
    pub dead_letter_exchange: Option<String>,
    /// Bind the queue to these (exchange, routing key) pairs (topic exchanges).
    pub bind: Vec<(String, String)>,
    /// Finish once every sensor seen has sent its end-of-stream batch.
    pub exit_on_eos: bool,
    pub metrics: Option<Metrics>,
}

/// What the consumer counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumeCounters {
    pub deliveries: u64,
    pub packets: u64,
    pub acked: u64,
    /// Malformed bodies rejected (dead-lettered when configured).
    pub rejected: u64,
    /// Redeliveries of batches already processed (not counted again).
    pub duplicates: u64,
    /// Batches missing from a sensor's sequence (lost before the queue).
    pub missing: u64,
    /// Of `rejected`: batches dated far ahead whose time jump no later
    /// batch confirmed (`TimeVerdict`).
    pub time_rejected: u64,
    pub reconnects: u64,
    pub sensors: u64,
    /// The prefetch at the end (it grows when too small for the window).
    pub prefetch: u16,
}

struct Incoming {
    acker: Acker,
    tag: u64,
    sensor: String,
    run: String,
    seq: Option<u64>,
    eos: bool,
    body: Vec<u8>,
}

enum Cmd {
    /// Raise the prefetch (re-consume with the new limit).
    Grow(u16),
    Stop,
}

struct ConsumerState {
    counters: Mutex<ConsumeCounters>,
    /// When the current broker link came up (`None` while down).
    connected_since: Mutex<Option<Instant>>,
    /// Outstanding ack/reject tasks.
    settling: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    metrics: Option<Metrics>,
    uri: String,
}

impl ConsumerState {
    fn count(&self, outcome: &str, n: u64) {
        if let Some(m) = &self.metrics
            && n > 0
        {
            m.amqp_deliveries.with_label_values(&[outcome]).inc_by(n);
        }
    }
}

/// Processed deliveries waiting for their windows to close.
#[derive(Default)]
struct AckBook {
    /// (acker, last pane whose window holds one of its packets).
    pending: VecDeque<(Acker, Option<Pane>)>,
}

/// The broker side of an AMQP input: owns the consuming task (and with it
/// the connection); [`AmqpIngest::finish`] acks what the finished run
/// processed.
pub struct AmqpIngest {
    runtime: &'static tokio::runtime::Runtime,
    shared: Arc<ConsumerState>,
    book: Arc<Mutex<AckBook>>,
    cmd: tokio::sync::mpsc::UnboundedSender<Cmd>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The dataflow side: a [`FrameSource`] read by one worker.
pub struct AmqpSource {
    rx: Receiver<Incoming>,
    handle: tokio::runtime::Handle,
    cmd: tokio::sync::mpsc::UnboundedSender<Cmd>,
    shared: Arc<ConsumerState>,
    book: Arc<Mutex<AckBook>>,
    spec: WindowPlan,
    sensors: HashMap<String, SensorState>,
    frame: u64,
    exit_on_eos: bool,
    idle_timeout: Duration,
    prefetch: u16,
    /// Highest "done" pane among processed deliveries (duplicates wait for it).
    max_pending_pane: Option<Pane>,
    /// Since when every prefetched delivery waits (stall detection).
    full_since: Option<Instant>,
    finished: bool,
}

struct SensorState {
    newest_ts: i64,
    last_seen: Instant,
    /// The seqs processed per run of the sensor (a few recent runs).
    runs: VecDeque<(String, SeqTracker)>,
    eos: bool,
    /// Batches dated far ahead, waiting for `JUMP_CONFIRM` in a row
    /// (`TimeVerdict`).
    held: Vec<Incoming>,
}

/// What to do with a sensor's batch, by its newest timestamp. Event time is
/// believed per sensor, never on the word of one batch: a batch dated more
/// than `TIME_JUMP_US` ahead of both the sensor's time and the wall clock
/// (a sensor replaying an old capture is behind the clock, never ahead) is
/// held until `JUMP_CONFIRM` batches in a row agree. A batch back in time
/// refutes the held ones (they are rejected), as does the sensor's end of
/// stream. The same rule as `Ingest::saw_frame` for files, counted in
/// batches, with the clock as a witness so the first batch needs no wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeVerdict {
    /// Process it (its time is plausible).
    Take,
    /// Hold it back: far ahead, not confirmed yet.
    Hold,
    /// Far ahead, and the `JUMP_CONFIRM`th in a row: process the held ones and this.
    Confirm,
    /// Plausible, but batches are held: reject those, process this.
    Refute,
}

impl TimeVerdict {
    /// `newest_us`: the sensor's believed time (`i64::MIN` for none yet);
    /// `batch_us`: the batch's newest timestamp; `now_us`: the wall clock;
    /// `held`: batches held so far.
    pub fn of(newest_us: i64, batch_us: i64, now_us: i64, held: usize) -> TimeVerdict {
        let reference = newest_us.max(now_us);
        if batch_us <= reference.saturating_add(TIME_JUMP_US) {
            if held > 0 {
                TimeVerdict::Refute
            } else {
                TimeVerdict::Take
            }
        } else if held + 1 >= JUMP_CONFIRM as usize {
            TimeVerdict::Confirm
        } else {
            TimeVerdict::Hold
        }
    }
}

/// Most seqs remembered above a gap before the gap is given up as lost.
pub const MAX_SEQ_AHEAD: usize = 4096;

/// Which batches of one sensor run were processed: everything up to `done`,
/// and the seqs above a gap. A batch lost in a broker restart and sent again
/// can reach the queue after later ones (those were persisted, it was not):
/// it fills its gap instead of passing for a duplicate.
#[derive(Debug)]
pub struct SeqTracker {
    done: u64,
    ahead: std::collections::BTreeSet<u64>,
}

impl SeqTracker {
    /// Start at the first seq seen (a consumer may join a run midway).
    pub fn new(first: u64) -> SeqTracker {
        SeqTracker {
            done: first,
            ahead: Default::default(),
        }
    }

    /// Record `seq`: false when it was processed before. `lost` gets the
    /// batches given up as lost (gaps older than `MAX_SEQ_AHEAD` seqs).
    pub fn see(&mut self, seq: u64, lost: &mut u64) -> bool {
        if seq <= self.done || !self.ahead.insert(seq) {
            return false;
        }
        while self.ahead.remove(&(self.done + 1)) {
            self.done += 1;
        }
        while self.ahead.len() > MAX_SEQ_AHEAD {
            let next = *self.ahead.first().expect("non-empty");
            *lost += next - self.done - 1;
            self.done = next - 1;
            while self.ahead.remove(&(self.done + 1)) {
                self.done += 1;
            }
        }
        true
    }

    /// Batches still missing below the newest seq seen.
    pub fn gaps(&self) -> u64 {
        match self.ahead.last() {
            Some(top) => top - self.done - self.ahead.len() as u64,
            None => 0,
        }
    }
}

/// Declare what the input needs and start consuming.
async fn open_consumer(
    opts: &AmqpSourceOptions,
    prefetch: u16,
) -> Result<(Connection, Channel, Consumer), AmqpError> {
    let uri = &opts.uri;
    let conn = connect(uri).await?;
    let broker = |what: String, e: lapin::Error| AmqpError::broker(uri, what, &e);
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| broker("open channel".into(), e))?;
    let mut args = FieldTable::default();
    if let Some(dlx) = &opts.dead_letter_exchange {
        declare_exchange(&ch, dlx, ExchangeKind::Fanout)
            .await
            .map_err(|e| broker(format!("declare dead-letter exchange {dlx}"), e))?;
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.as_str().into()),
        );
    }
    let q = &opts.queue;
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await
    .map_err(|e| {
        broker(
            format!(
                "declare queue {q} (durable{}; an existing queue must have the same arguments)",
                opts.dead_letter_exchange
                    .as_ref()
                    .map_or(String::new(), |d| format!(", dead-letter exchange {d}"))
            ),
            e,
        )
    })?;
    for (ex, key) in &opts.bind {
        declare_exchange(&ch, ex, ExchangeKind::Topic)
            .await
            .map_err(|e| broker(format!("declare exchange {ex}"), e))?;
        ch.queue_bind(
            q.as_str().into(),
            ex.as_str().into(),
            key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| broker(format!("bind queue {q} to {ex} with {key}"), e))?;
    }
    let consumer = start_consuming(&ch, q, prefetch)
        .await
        .map_err(|e| broker(format!("consume from {q}"), e))?;
    Ok((conn, ch, consumer))
}

async fn start_consuming(ch: &Channel, queue: &str, prefetch: u16) -> lapin::Result<Consumer> {
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    ch.basic_consume(
        queue.into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
}

fn header_str(h: &FieldTable, k: &str) -> Option<String> {
    match h.inner().get(k)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn header_u64(h: &FieldTable, k: &str) -> Option<u64> {
    match h.inner().get(k)? {
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongUInt(v) => Some(*v as u64),
        AMQPValue::ShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortUInt(v) => Some(*v as u64),
        AMQPValue::Timestamp(v) => Some(*v),
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?.parse().ok(),
        _ => None,
    }
}

fn incoming(d: lapin::message::Delivery) -> Incoming {
    let empty = FieldTable::default();
    let h = d.properties.headers().as_ref().unwrap_or(&empty);
    Incoming {
        tag: d.delivery_tag,
        sensor: header_str(h, H_SENSOR).unwrap_or_default(),
        run: header_str(h, H_RUN).unwrap_or_default(),
        seq: header_u64(h, H_SEQ),
        eos: matches!(h.inner().get(H_EOS), Some(AMQPValue::Boolean(true))),
        acker: d.acker,
        body: d.data,
    }
}

/// The consuming task: forwards deliveries, reconnects after failures
/// (the broker requeues what was unacked on the old channel), grows the
/// prefetch on request, reads the queue depth.
async fn consume_loop(
    opts: AmqpSourceOptions,
    shared: Arc<ConsumerState>,
    tx: Sender<Incoming>,
    first: (Connection, Channel, Consumer),
    mut cmd: tokio::sync::mpsc::UnboundedReceiver<Cmd>,
) {
    let red = redact(&opts.uri);
    let mut link = Some(first);
    let mut prefetch = opts.prefetch;
    loop {
        let (conn, ch, mut consumer) = match link.take() {
            Some(l) => l,
            None => {
                // Never given up: a stop command ends the wait instead.
                let reconnect = reopen(|| open_consumer(&opts, prefetch), || false);
                tokio::select! {
                    Some(l) = reconnect => {
                        tracing::info!("reconnected to AMQP broker {red}; unacked deliveries come again");
                        shared.counters.lock().unwrap().reconnects += 1;
                        l
                    }
                    c = cmd.recv() => match c {
                        Some(Cmd::Grow(n)) => { prefetch = n; continue }
                        _ => return,
                    }
                }
            }
        };
        *shared.connected_since.lock().unwrap() = Some(Clock.now());
        let mut depth = tokio::time::interval(DEPTH_EVERY);
        let why = loop {
            tokio::select! {
                d = consumer.next() => match d {
                    Some(Ok(d)) => {
                        shared.count("received", 1);
                        if tx.send(incoming(d)).is_err() {
                            // The run is over; what was not processed is requeued.
                            let _ = conn.close(200, "dnsmonitor finished".into()).await;
                            return;
                        }
                    }
                    Some(Err(e)) => break err_text(&e, &opts.uri),
                    None => break "the broker cancelled the consumer".to_string(),
                },
                c = cmd.recv() => match c {
                    Some(Cmd::Grow(n)) => {
                        // Unacked deliveries stay with the channel; the new
                        // consumer gets the new limit. What the broker sent
                        // before the cancel is already in the old stream:
                        // hand it on first (dropped with the stream, it
                        // stayed unacked on the channel and never processed,
                        // a batch "missing" at the end of the stream).
                        let tag = consumer.tag();
                        let res = async {
                            ch.basic_cancel(tag, BasicCancelOptions::default()).await?;
                            let mut left = Vec::new();
                            while let Some(Some(d)) = futures_lite::future::poll_once(consumer.next()).await {
                                left.push(d?);
                            }
                            Ok::<_, lapin::Error>((start_consuming(&ch, &opts.queue, n).await?, left))
                        }.await;
                        match res {
                            Ok((c, left)) => {
                                for d in left {
                                    shared.count("received", 1);
                                    if tx.send(incoming(d)).is_err() {
                                        let _ = conn.close(200, "dnsmonitor finished".into()).await;
                                        return;
                                    }
                                }
                                consumer = c;
                                prefetch = n;
                            }
                            Err(e) => break err_text(&e, &opts.uri),
                        }
                    }
                    Some(Cmd::Stop) | None => {
                        let _ = conn.close(200, "dnsmonitor finished".into()).await;
                        return;
                    }
                },
                _ = depth.tick() => {
                    if let Some(m) = &shared.metrics {
                        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
                        match ch.queue_declare(opts.queue.as_str().into(), passive, FieldTable::default()).await {
                            Ok(q) => m.queue_depth.set(q.message_count() as i64),
                            Err(e) => break err_text(&e, &opts.uri),
                        }
                    }
                }
            }
        };
        *shared.connected_since.lock().unwrap() = None;
        tracing::warn!("AMQP consumer on {red} lost its link ({why}); reconnecting");
        drop(consumer);
        drop(ch);
        drop(conn);
    }
}

impl AmqpIngest {
    /// Connect (fail fast), declare the queue (and dead-letter exchange and
    /// bindings), start consuming. The source goes to the dataflow (one
    /// worker reads it); keep the ingest to [`finish`](Self::finish) after
    /// the run.
    pub fn connect(
        opts: AmqpSourceOptions,
        spec: WindowPlan,
    ) -> Result<(AmqpIngest, AmqpSource), AmqpError> {
        let runtime = crate::runtime::shared()?;
        let first = runtime.block_on(open_consumer(&opts, opts.prefetch.max(1)))?;
        let shared = Arc::new(ConsumerState {
            counters: Mutex::new(ConsumeCounters {
                prefetch: opts.prefetch.max(1),
                ..Default::default()
            }),
            connected_since: Mutex::new(None),
            settling: Mutex::new(Vec::new()),
            metrics: opts.metrics.clone(),
            uri: opts.uri.clone(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        let book = Arc::new(Mutex::new(AckBook::default()));
        let mut o = opts.clone();
        o.prefetch = o.prefetch.max(1);
        let task = runtime.spawn(consume_loop(o, shared.clone(), tx, first, cmd_rx));
        let source = AmqpSource {
            rx,
            handle: runtime.handle().clone(),
            cmd: cmd_tx.clone(),
            shared: shared.clone(),
            book: book.clone(),
            spec,
            sensors: HashMap::new(),
            frame: 0,
            exit_on_eos: opts.exit_on_eos,
            idle_timeout: opts.idle_timeout,
            prefetch: opts.prefetch.max(1),
            max_pending_pane: None,
            full_since: None,
            finished: false,
        };
        Ok((
            AmqpIngest {
                runtime,
                shared,
                book,
                cmd: cmd_tx,
                task: Some(task),
            },
            source,
        ))
    }

    /// Counters so far.
    pub fn counters(&self) -> ConsumeCounters {
        self.shared.counters.lock().unwrap().clone()
    }

    /// After the run: every processed delivery's windows are closed and
    /// written, so ack them all, wait for the acks, close the connection.
    /// Deliveries fetched but not processed go back to the queue.
    pub fn finish(mut self) -> ConsumeCounters {
        for (acker, _) in self.book.lock().unwrap().pending.drain(..) {
            spawn_ack(self.runtime.handle(), &self.shared, acker);
        }
        let tasks: Vec<_> = std::mem::take(&mut *self.shared.settling.lock().unwrap());
        self.runtime.block_on(async {
            for t in tasks {
                let _ = t.await;
            }
        });
        self.stop();
        self.counters()
    }

    /// After a run whose outputs failed: ack nothing, close the connection;
    /// the broker delivers every unacked batch again.
    pub fn abandon(self) -> ConsumeCounters {
        self.counters()
    }

    /// Stop the consuming task: it closes the connection (the broker
    /// requeues what was not acked); after [`STOP_WAIT`] it is cancelled,
    /// which drops the connection. Acks still under way are cancelled too.
    fn stop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        let _ = self.cmd.send(Cmd::Stop);
        let abort = task.abort_handle();
        if crate::runtime::wait(STOP_WAIT, task).is_none() {
            abort.abort();
        }
        for t in std::mem::take(&mut *self.shared.settling.lock().unwrap()) {
            t.abort();
        }
    }
}

impl Drop for AmqpIngest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Run an ack or reject on the runtime; `finish` waits for the ones left.
fn settle_later(
    handle: &tokio::runtime::Handle,
    shared: &ConsumerState,
    f: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let t = handle.spawn(f);
    let mut settling = shared.settling.lock().unwrap();
    settling.retain(|t| !t.is_finished());
    settling.push(t);
}

fn spawn_ack(handle: &tokio::runtime::Handle, shared: &Arc<ConsumerState>, acker: Acker) {
    let s = shared.clone();
    settle_later(handle, shared, async move {
        match acker.ack(BasicAckOptions::default()).await {
            Ok(true) => {
                s.counters.lock().unwrap().acked += 1;
                s.count("acked", 1);
            }
            // The channel closed since: the broker requeued the delivery.
            Ok(false) => {}
            Err(e) => tracing::warn!(
                "ack failed ({}); the broker will deliver the batch again",
                err_text(&e, &s.uri)
            ),
        }
    });
}

impl AmqpSource {
    /// One delivery: check it, drop it if already processed, hold it if
    /// its time is not believed yet (`TimeVerdict`), else hand its frames
    /// over and book it for acknowledgement. Returns frames given.
    fn take(&mut self, inc: Incoming, f: &mut dyn FnMut(RawPacket<'_>)) -> usize {
        let now = Clock.now();
        self.shared.counters.lock().unwrap().deliveries += 1;
        let max_ts_us = match PcapBatch::parse(&inc.body) {
            Ok(b) => b.max_ts_us,
            Err(e) => {
                tracing::warn!(
                    "rejecting malformed batch (delivery tag {}, sensor \"{}\", seq {}): {e}",
                    inc.tag,
                    inc.sensor.escape_debug(),
                    inc.seq.map_or("-".to_string(), |s| s.to_string())
                );
                self.reject(inc.acker);
                return 0;
            }
        };
        let key = if self.sensors.len() >= MAX_SENSORS && !self.sensors.contains_key(&inc.sensor) {
            String::new()
        } else {
            inc.sensor.clone()
        };
        let st = self
            .sensors
            .entry(key.clone())
            .or_insert_with(|| SensorState {
                newest_ts: i64::MIN,
                last_seen: now,
                runs: VecDeque::new(),
                eos: false,
                held: Vec::new(),
            });
        st.last_seen = now;
        if inc.eos {
            st.eos = true;
        }
        if let Some(seq) = inc.seq {
            let mut lost = 0;
            let run = st.runs.iter_mut().find(|(r, _)| *r == inc.run);
            let new = match run {
                Some((_, t)) => {
                    let new = t.see(seq, &mut lost);
                    if inc.eos {
                        // Everything the sensor sent came before its
                        // end-of-stream batch: what is still missing is lost.
                        lost += t.gaps();
                    }
                    new
                }
                None => {
                    st.runs.push_back((inc.run.clone(), SeqTracker::new(seq)));
                    if st.runs.len() > 4 {
                        st.runs.pop_front();
                    }
                    true
                }
            };
            if lost > 0 {
                tracing::warn!(
                    "sensor \"{}\": {lost} batch(es) missing before seq {seq} (lost before reaching the queue)",
                    inc.sensor.escape_debug()
                );
                self.shared.counters.lock().unwrap().missing += lost;
            }
            if !new {
                // Processed before (redelivered after a reconnect): ack it
                // with everything processed so far.
                self.shared.counters.lock().unwrap().duplicates += 1;
                self.shared.count("duplicate", 1);
                let p = self.max_pending_pane;
                self.book.lock().unwrap().pending.push_back((inc.acker, p));
                return 0;
            }
        }
        let verdict = max_ts_us.map_or(TimeVerdict::Take, |t| {
            TimeVerdict::of(st.newest_ts, t, Clock.unix_micros(), st.held.len())
        });
        let eos = st.eos;
        let mut n = 0;
        match verdict {
            TimeVerdict::Take => n += self.feed(&key, inc, f),
            TimeVerdict::Hold => st.held.push(inc),
            TimeVerdict::Confirm => {
                let held = std::mem::take(&mut st.held);
                tracing::warn!(
                    "sensor \"{}\": event time jumps ahead to {} ({JUMP_CONFIRM} batches in a row agree)",
                    inc.sensor.escape_debug(),
                    crate::time::rfc3339(max_ts_us.unwrap_or(0))
                );
                for h in held {
                    n += self.feed(&key, h, f);
                }
                n += self.feed(&key, inc, f);
            }
            TimeVerdict::Refute => {
                let held = std::mem::take(&mut st.held);
                self.refute(held, "its next batch is back in time");
                n += self.feed(&key, inc, f);
            }
        }
        if eos && let Some(st) = self.sensors.get_mut(&key) {
            let held = std::mem::take(&mut st.held);
            self.refute(
                held,
                "the sensor ended its stream before any later batch agreed",
            );
        }
        let mut c = self.shared.counters.lock().unwrap();
        c.packets += n as u64;
        c.sensors = self.sensors.len() as u64;
        n
    }

    /// Hand a batch's frames over, move its sensor's time and book it for
    /// acknowledgement. Returns frames given.
    fn feed(&mut self, key: &str, inc: Incoming, f: &mut dyn FnMut(RawPacket<'_>)) -> usize {
        // Parsed once already (`take`): cannot fail now.
        let Ok(batch) = PcapBatch::parse(&inc.body) else {
            return 0;
        };
        if let (Some(t), Some(st)) = (batch.max_ts_us, self.sensors.get_mut(key)) {
            st.newest_ts = st.newest_ts.max(t);
        }
        let linktype = batch.linktype;
        let mut n = 0;
        for r in batch.records() {
            self.frame += 1;
            n += 1;
            f(RawPacket {
                file: 0,
                frame: self.frame,
                linktype,
                ts_us: r.ts_us,
                orig_len: r.orig_len,
                data: r.data,
                source: Some(&inc.sensor),
            });
        }
        let done = batch
            .max_ts_us
            .map(|t| self.spec.pane_of(t) + self.spec.panes - 1);
        if let Some(d) = done {
            self.max_pending_pane = Some(self.max_pending_pane.map_or(d, |m| m.max(d)));
        }
        self.book
            .lock()
            .unwrap()
            .pending
            .push_back((inc.acker, done));
        n
    }

    /// Batches held for a time jump that did not come: rejected (to the
    /// dead-letter exchange when there is one), counted, logged.
    fn refute(&mut self, held: Vec<Incoming>, why: &str) {
        for h in held {
            let ts = PcapBatch::parse(&h.body)
                .ok()
                .and_then(|b| b.max_ts_us)
                .unwrap_or(0);
            tracing::warn!(
                "rejecting batch dated {} from sensor \"{}\" (seq {}): far ahead of the sensor's time and the clock, and {why}",
                crate::time::rfc3339(ts),
                h.sensor.escape_debug(),
                h.seq.map_or("-".to_string(), |s| s.to_string())
            );
            self.shared.counters.lock().unwrap().time_rejected += 1;
            self.reject(h.acker);
        }
    }

    /// Reject a delivery without requeue (dead-lettered when configured).
    fn reject(&self, acker: Acker) {
        self.shared.counters.lock().unwrap().rejected += 1;
        self.shared.count("rejected", 1);
        let s = self.shared.clone();
        settle_later(&self.handle, &self.shared, async move {
            let opts = BasicRejectOptions { requeue: false };
            if let Err(e) = acker.reject(opts).await {
                tracing::warn!("reject failed: {}", err_text(&e, &s.uri));
            }
        });
    }

    /// The sensors' time as the watermark takes it: (the slowest active
    /// sensor's newest packet, the furthest idle sensor's time — its newest
    /// packet plus its silence — or ended sensor's newest packet). The
    /// watermark is the first, else the second; a cluster member combines
    /// both with the other members' (`cluster::event_time`).
    pub fn sensor_time(&self) -> (Option<i64>, Option<i64>) {
        let now = Clock.now();
        let since = *self.shared.connected_since.lock().unwrap();
        // No sensor turns idle while we are disconnected, nor while the
        // broker holds back deliveries for want of acks.
        let may_idle = since.is_some() && !self.window_full();
        let mut active: Option<i64> = None;
        let mut idle: Option<i64> = None;
        for st in self.sensors.values() {
            if st.newest_ts == i64::MIN {
                continue;
            }
            let quiet_from = since.map_or(st.last_seen, |s| s.max(st.last_seen));
            let quiet = now.saturating_duration_since(quiet_from);
            if st.eos {
                idle = Some(idle.map_or(st.newest_ts, |m| m.max(st.newest_ts)));
            } else if may_idle && quiet >= self.idle_timeout {
                let silent = now.saturating_duration_since(st.last_seen).as_micros() as i64;
                let t = st.newest_ts.saturating_add(silent);
                idle = Some(idle.map_or(t, |m| m.max(t)));
            } else {
                active = Some(active.map_or(st.newest_ts, |m| m.min(st.newest_ts)));
            }
        }
        (active, idle)
    }

    /// The sensors seen that did not send their end-of-stream batch, and
    /// those that did (names; the unnamed sensor is ""). A cluster member
    /// ends on `--exit-on-eos` when every sensor seen by any member ended
    /// at some member.
    pub fn sensor_ends(&self) -> (Vec<String>, Vec<String>) {
        let mut open = Vec::new();
        let mut ended = Vec::new();
        for (name, st) in &self.sensors {
            if st.eos { &mut ended } else { &mut open }.push(name.clone());
        }
        (open, ended)
    }

    fn all_eos(&self) -> bool {
        !self.sensors.is_empty() && self.sensors.values().all(|s| s.eos)
    }

    /// Every prefetched delivery is processed and waits for its windows: the
    /// broker sends nothing more until one is acked.
    fn window_full(&self) -> bool {
        self.book.lock().unwrap().pending.len() >= self.prefetch as usize
    }
}

impl FrameSource for AmqpSource {
    fn read(&mut self, max: usize, wait: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> ReadStatus {
        if self.finished {
            return ReadStatus::Done;
        }
        let mut n = 0;
        let mut first = true;
        while n < max {
            let next = if first {
                self.rx
                    .recv_timeout(wait)
                    .map_err(|e| e == RecvTimeoutError::Disconnected)
            } else {
                self.rx
                    .try_recv()
                    .map_err(|e| e == TryRecvError::Disconnected)
            };
            first = false;
            match next {
                Ok(inc) => n += self.take(inc, f),
                Err(false) => break,
                Err(true) => {
                    // The consuming task ended: nothing more will come.
                    self.finished = true;
                    break;
                }
            }
            if self.exit_on_eos && self.all_eos() {
                self.finished = true;
                break;
            }
        }
        // A prefetch too small for the window stalls the input: grow it.
        if self.window_full() {
            let now = Clock.now();
            let since = *self.full_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= STALL_AFTER && self.prefetch < u16::MAX {
                let grown = self.prefetch.saturating_mul(2);
                tracing::warn!(
                    "all {} prefetched batches wait for their windows to close; raising the prefetch to {grown} (set --prefetch higher)",
                    self.prefetch
                );
                self.prefetch = grown;
                self.shared.counters.lock().unwrap().prefetch = grown;
                let _ = self.cmd.send(Cmd::Grow(grown));
                self.full_since = None;
            }
        } else {
            self.full_since = None;
        }
        if self.finished {
            ReadStatus::Done
        } else if n == 0 {
            ReadStatus::Idle
        } else {
            ReadStatus::Frames(n)
        }
    }

    fn shared(&self) -> bool {
        false
    }

    fn own_watermark(&self) -> bool {
        true
    }

    fn watermark_us(&mut self) -> Option<i64> {
        let (active, idle) = self.sensor_time();
        active.or(idle)
    }

    fn outputs_done(&mut self, below: Option<Pane>) {
        let handle = self.handle.clone();
        let shared = self.shared.clone();
        let mut book = self.book.lock().unwrap();
        let mut keep = VecDeque::with_capacity(book.pending.len());
        for (acker, p) in book.pending.drain(..) {
            let done = match (p, below) {
                (None, _) | (_, None) => true,
                (Some(p), Some(b)) => p < b,
            };
            if done {
                spawn_ack(&handle, &shared, acker);
            } else {
                keep.push_back((acker, p));
            }
        }
        book.pending = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MICROS;

    #[test]
    fn one_batch_far_ahead_is_held_and_refuted_by_the_next() {
        let now = 1_800_000_000 * MICROS;
        let y2037 = 2_120_000_000 * MICROS;
        use TimeVerdict::*;
        // Behind the clock (a replay), at the clock, a little ahead: taken.
        assert_eq!(TimeVerdict::of(i64::MIN, 1_000 * MICROS, now, 0), Take);
        assert_eq!(TimeVerdict::of(i64::MIN, now, now, 0), Take);
        assert_eq!(TimeVerdict::of(now, now + TIME_JUMP_US, now, 0), Take);
        // A first batch dated 2037 is held, not believed.
        assert_eq!(TimeVerdict::of(i64::MIN, y2037, now, 0), Hold);
        // A sensor far behind the clock may catch up with it at once.
        assert_eq!(TimeVerdict::of(1_000 * MICROS, now, now, 0), Take);
        // Held: the next plausible batch refutes, JUMP_CONFIRM in a row confirm.
        assert_eq!(TimeVerdict::of(now, now, now, 1), Refute);
        let n = JUMP_CONFIRM as usize;
        assert_eq!(TimeVerdict::of(now, y2037, now, n - 2), Hold);
        assert_eq!(TimeVerdict::of(now, y2037, now, n - 1), Confirm);
        // Once believed, the sensor's own time is the reference.
        assert_eq!(TimeVerdict::of(y2037, y2037 + MICROS, now, 0), Take);
        assert_eq!(TimeVerdict::of(i64::MAX, i64::MAX, i64::MAX, 0), Take);
    }

    #[test]
    fn a_resent_batch_behind_later_ones_fills_its_gap() {
        let mut t = SeqTracker::new(1);
        let mut lost = 0;
        let seen: Vec<bool> = [2, 4, 5, 3, 3, 5, 6]
            .iter()
            .map(|s| t.see(*s, &mut lost))
            .collect();
        assert_eq!(seen, [true, true, true, true, false, false, true]);
        assert_eq!((t.done, t.gaps(), lost), (6, 0, 0));
        // A gap that never fills is reported (at end of stream).
        assert!(t.see(9, &mut lost));
        assert_eq!(t.gaps(), 2);
        // One older than MAX_SEQ_AHEAD seqs is given up.
        for s in 10..10 + MAX_SEQ_AHEAD as u64 {
            assert!(t.see(s, &mut lost));
        }
        assert_eq!(lost, 2);
        assert_eq!(t.gaps(), 0);
        assert!(
            !t.see(8, &mut lost),
            "given up: a late copy is not processed twice"
        );
    }
}
