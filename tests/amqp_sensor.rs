//! The sensor library (`dnsmonitor::amqp::sensor::run`) against a real RabbitMQ on
//! 127.0.0.1:5672: what it puts on the wire, exchange targets, unroutable
//! batches, fast failure without leaking the password, `batch_ms` and stop
//! on an idle live-like input, and a broker restart in the middle of a run.
//! (tests/sensor_publish.rs checks the same through the `sensor` command.)
//!
//! The restart test stops the shared broker; every test here takes the
//! `BROKER` lock (the restart test for writing) so none overlaps it.
//! Without a broker they fail, unless DNSMONITOR_SKIP_SERVICES=1 is set: then
//! they print SKIPPED, are counted, and return (`common::cannot_run`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use common::amqp::*;
use dnsmonitor::amqp::batch::{CONTENT_TYPE, H_EOS, H_PACKETS, H_RUN, H_SENSOR, H_SEQ, PcapBatch};
use dnsmonitor::amqp::sensor::{self, SensorOptions, SensorSummary, Target};
use dnsmonitor::metrics::Metrics;
use dnsmonitor::sources::{FrameSource, PcapFiles, RawPacket, ReadStatus};
use dnsmonitor::time::Clock;
use lapin::message::BasicGetMessage;
use lapin::options::ExchangeDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};

/// Readers: ordinary tests. Writer: the broker restart.
static BROKER: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    BROKER.read().unwrap_or_else(|p| p.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    BROKER.write().unwrap_or_else(|p| p.into_inner())
}

type Frame = (i32, i64, Vec<u8>, u32);

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

fn files(name: &str) -> Box<dyn FrameSource + Send> {
    Box::new(PcapFiles::open(&[capture(name)]).unwrap())
}

fn options(target: Target, batch_packets: usize) -> SensorOptions {
    SensorOptions {
        uri: URI.to_string(),
        target,
        sensor_id: "lib-sensor".to_string(),
        batch_packets,
        batch_ms: sensor::DEFAULT_BATCH_MS,
        max_in_flight: sensor::DEFAULT_MAX_IN_FLIGHT,
        metrics: None,
    }
}

fn run(opts: SensorOptions, input: Box<dyn FrameSource + Send>) -> SensorSummary {
    sensor::run(opts, input, Arc::new(AtomicBool::new(false))).expect("sensor run")
}

fn seq(m: &BasicGetMessage) -> u64 {
    int(header(m, H_SEQ)) as u64
}

fn is_eos(m: &BasicGetMessage) -> bool {
    header(m, H_EOS) == Some(&AMQPValue::Boolean(true))
}

/// The records of a message as frames (linktype, ts, data, orig_len).
fn records(m: &BasicGetMessage) -> Vec<Frame> {
    let b = PcapBatch::parse(&m.delivery.data).expect("a complete pcap body");
    assert_eq!(int(header(m, H_PACKETS)), b.packets as i64);
    b.records()
        .map(|r| (b.linktype, r.ts_us, r.data.to_vec(), r.orig_len))
        .collect()
}

fn drain_queue(q: &str) -> Vec<BasicGetMessage> {
    rt().block_on(async {
        let (_c, ch) = channel().await;
        drain(&ch, q).await
    })
}

/// Messages ready in `q`; 0 while the sensor has not declared it yet.
fn ready(q: &str) -> u32 {
    rt().block_on(async {
        let (_c, ch) = channel().await;
        queue_len(&ch, q).await.unwrap_or(0)
    })
}

/// A live-like input: hands over `frames` (at most `per_read` per call,
/// pausing `pause` after each), then, unless `ends`, stays idle (waiting
/// `wait` per call) until the sensor stops.
struct Trickle {
    frames: Vec<Frame>,
    next: usize,
    per_read: usize,
    pause: Duration,
    ends: bool,
}

impl FrameSource for Trickle {
    fn read(&mut self, max: usize, wait: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> ReadStatus {
        let n = max.min(self.per_read).min(self.frames.len() - self.next);
        if n == 0 {
            if self.ends {
                return ReadStatus::Done;
            }
            Clock.sleep(wait);
            return ReadStatus::Idle;
        }
        for (i, (linktype, ts_us, data, orig_len)) in
            self.frames[self.next..self.next + n].iter().enumerate()
        {
            f(RawPacket {
                file: 0,
                frame: (self.next + i) as u64,
                linktype: *linktype,
                ts_us: *ts_us,
                orig_len: *orig_len,
                data,
                source: None,
            });
        }
        self.next += n;
        Clock.sleep(self.pause);
        ReadStatus::Frames(n)
    }

    fn shared(&self) -> bool {
        false
    }

    fn live(&self) -> bool {
        !self.ends
    }
}

/// Files → queue (declared by the sensor): every message is a complete pcap
/// with the documented properties and headers, seqs run 1..n, batches hold
/// `batch_packets`, the records in order are the file's frames byte for
/// byte, and the last message is the empty end-of-stream.
#[test]
fn files_to_queue_complete_batches_in_file_order() {
    let _b = shared();
    if !broker_up() {
        return;
    }
    let q = unique("lib-sensor");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let want = frames(&capture("loopback-flood.pcap"));
    let metrics = Metrics::new();
    let mut opts = options(Target::Queue(q.clone()), 700);
    // Only the packet count cuts batches here.
    opts.batch_ms = 600_000;
    opts.metrics = Some(metrics.clone());
    let clock = Clock;
    let before = clock.unix_micros() / 1_000_000;
    let s = run(opts, files("loopback-flood.pcap"));
    let after = clock.unix_micros() / 1_000_000;

    let msgs = drain_queue(&q);
    let n = want.len().div_ceil(700);
    assert_eq!(msgs.len(), n + 1, "data batches and the end-of-stream one");
    assert_eq!(s.packets as usize, want.len());
    assert_eq!(s.batches as usize, n + 1);
    assert_eq!(
        s.bytes,
        msgs.iter()
            .map(|m| m.delivery.data.len() as u64)
            .sum::<u64>()
    );
    assert_eq!((s.resent, s.reconnects, s.unroutable), (0, 0, 0));
    assert_eq!(
        metrics
            .amqp_publishes
            .with_label_values(&["confirmed"])
            .get(),
        s.batches
    );

    let run_id = text(header(&msgs[0], H_RUN));
    assert!(!run_id.is_empty());
    let mut got = vec![];
    for (i, m) in msgs.iter().enumerate() {
        let p = &m.delivery.properties;
        assert_eq!(p.content_type().as_ref().unwrap().as_str(), CONTENT_TYPE);
        assert_eq!(*p.delivery_mode(), Some(2), "persistent");
        assert_eq!(p.app_id().as_ref().unwrap().as_str(), "dnsmonitor-sensor");
        let ts = p.timestamp().expect("timestamp") as i64;
        assert!(before <= ts && ts <= after, "{before} <= {ts} <= {after}");
        assert_eq!(text(header(m, H_SENSOR)), "lib-sensor");
        assert_eq!(text(header(m, H_RUN)), run_id);
        assert_eq!(seq(m), i as u64 + 1);
        assert_eq!(
            p.message_id().as_ref().unwrap().as_str(),
            format!("lib-sensor:{run_id}:{}", i + 1)
        );
        let r = records(m);
        let last = i == n;
        assert_eq!(is_eos(m), last);
        if last {
            assert!(r.is_empty(), "the end-of-stream batch is empty");
            assert_eq!(
                PcapBatch::parse(&m.delivery.data).unwrap().linktype,
                want[0].0
            );
        } else if i < n - 1 {
            assert_eq!(r.len(), 700, "batch {} is full", i + 1);
        } else {
            assert_eq!(r.len(), want.len() - 700 * (n - 1));
        }
        got.extend(r);
    }
    assert_eq!(got.len(), want.len());
    assert!(got == want, "records differ from the file's frames");
}

/// A queue a consumer declared with arguments (dead-lettering) is used as
/// it is: the sensor's passive declare does not contradict it.
#[test]
fn existing_queue_with_arguments_is_kept() {
    let _b = shared();
    if !broker_up() {
        return;
    }
    let q = unique("lib-sensor-dlx");
    let dlx = unique("lib-sensor-dead");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![dlx.clone()],
    };
    rt().block_on(async {
        let (_c, ch) = channel().await;
        declare_queue(&ch, &q, Some(&dlx)).await;
    });
    let s = run(
        options(Target::Queue(q.clone()), 100),
        files("loopback-dig.pcap"),
    );
    let msgs = drain_queue(&q);
    assert_eq!(msgs.len() as u64, s.batches);
    let packets: usize = msgs.iter().map(|m| records(m).len()).sum();
    assert_eq!(packets, frames(&capture("loopback-dig.pcap")).len());
    assert!(is_eos(msgs.last().unwrap()));
}

/// To an exchange with a routing key: a queue bound with that key gets every
/// batch. A missing exchange is declared (durable topic); with no queue
/// bound the broker returns the batches, counted as unroutable, and the run
/// still ends.
#[test]
fn exchange_target_and_unroutable_batches() {
    let _b = shared();
    if !broker_up() {
        return;
    }
    let ex = unique("lib-sensor-ex");
    let empty_ex = unique("lib-sensor-ex-empty");
    let q = unique("lib-sensor-bound");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![ex.clone(), empty_ex.clone()],
    };
    rt().block_on(async {
        let (_c, ch) = channel().await;
        bind_queue(&ch, &ex, &q, "sensors.#", true).await;
    });
    let want = frames(&capture("loopback-dig.pcap"));
    let s = run(
        options(
            Target::Exchange {
                name: ex.clone(),
                routing_key: "sensors.dc1".into(),
            },
            50,
        ),
        files("loopback-dig.pcap"),
    );
    assert_eq!(s.unroutable, 0);
    assert_eq!(s.packets as usize, want.len());
    let msgs = drain_queue(&q);
    assert_eq!(msgs.len() as u64, s.batches);
    assert_eq!(s.batches as usize, want.len().div_ceil(50) + 1);
    assert!(
        msgs.iter()
            .all(|m| m.delivery.routing_key.as_str() == "sensors.dc1")
    );
    assert!(
        msgs.iter()
            .all(|m| m.delivery.exchange.as_str() == ex.as_str())
    );
    let got: Vec<Frame> = msgs.iter().flat_map(records).collect();
    assert!(got == want, "records differ from the file's frames");

    // Nobody bound to this key: every batch comes back, the run ends.
    let s = run(
        options(
            Target::Exchange {
                name: ex.clone(),
                routing_key: "nobody.home".into(),
            },
            50,
        ),
        files("loopback-dig.pcap"),
    );
    assert_eq!(s.unroutable, s.batches, "{s:?}");
    assert!(s.unroutable > 0);
    let left = rt().block_on(async {
        let (_c, ch) = channel().await;
        ready_count(&ch, &q).await
    });
    assert_eq!(left, 0, "the bound queue got none of them");

    // A missing exchange is declared as a durable topic exchange.
    let s = run(
        options(
            Target::Exchange {
                name: empty_ex.clone(),
                routing_key: "a.b".into(),
            },
            1000,
        ),
        files("loopback-dig.pcap"),
    );
    assert!(s.unroutable > 0);
    rt().block_on(async {
        let (_c, ch) = channel().await;
        ch.exchange_declare(
            empty_ex.as_str().into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the sensor declared a durable topic exchange");
    });
}

/// No broker: a prompt error naming the redacted address, never the
/// password.
#[test]
fn unreachable_broker_fails_fast_without_the_password() {
    let _b = shared();
    let clock = Clock;
    let t0 = clock.now();
    let mut opts = options(Target::Queue("x".into()), 100);
    opts.uri = "amqp://probe:s3cret@127.0.0.1:1/%2f".into();
    let err = sensor::run(
        opts,
        files("loopback-dig.pcap"),
        Arc::new(AtomicBool::new(false)),
    )
    .expect_err("nothing listens on port 1");
    assert!(
        clock.now().duration_since(t0) < Duration::from_secs(12),
        "fails within the connect timeout"
    );
    let shown = format!("{err} / {err:?}");
    let shown = format!("{shown} / {:#}", anyhow::Error::from(err));
    assert!(
        shown.contains("amqp://probe:***@127.0.0.1:1"),
        "names the redacted URI: {shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
}

/// An idle live-like input: a partial batch goes out within `batch_ms`
/// without more packets; on stop the sensor sends the end-of-stream batch
/// and returns.
#[test]
fn idle_input_flushes_after_batch_ms_and_stops() {
    let _b = shared();
    if !broker_up() {
        return;
    }
    let q = unique("lib-sensor-idle");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let want: Vec<Frame> = frames(&capture("loopback-dig.pcap"))
        .into_iter()
        .take(7)
        .collect();
    let input = Box::new(Trickle {
        frames: want.clone(),
        next: 0,
        per_read: 1000,
        pause: Duration::ZERO,
        ends: false,
    });
    let mut opts = options(Target::Queue(q.clone()), 1000);
    opts.batch_ms = 200;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let h = std::thread::spawn(move || sensor::run(opts, input, stop2));
    // Readiness: the partial batch is in the queue (the input is idle).
    let clock = Clock;
    let deadline = clock.now() + Duration::from_secs(20);
    loop {
        if ready(&q) >= 1 {
            break;
        }
        assert!(
            clock.now() < deadline,
            "no batch within batch_ms on an idle input"
        );
        assert!(!h.is_finished(), "the sensor ended before stop");
        clock.sleep(Duration::from_millis(20));
    }
    assert!(!h.is_finished(), "an idle input keeps the sensor running");
    stop.store(true, Ordering::Relaxed);
    let s = h.join().unwrap().expect("a clean stop");
    assert_eq!((s.packets, s.batches), (7, 2));
    let msgs = drain_queue(&q);
    assert_eq!(msgs.len(), 2);
    assert!(records(&msgs[0]) == want);
    assert!(!is_eos(&msgs[0]));
    assert!(is_eos(&msgs[1]) && records(&msgs[1]).is_empty());
    assert_eq!((seq(&msgs[0]), seq(&msgs[1])), (1, 2));
}

/// The broker is stopped and started while the sensor publishes: it
/// reconnects by itself, re-sends what was not confirmed with the same seq,
/// and after dropping duplicate seqs the durable queue holds every packet
/// once, in file order, ending with the end-of-stream batch.
#[test]
fn broker_restart_mid_run_loses_and_reorders_nothing() {
    let _b = exclusive();
    if !can_restart() {
        return;
    }
    let q = unique("lib-sensor-restart");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let want = frames(&capture("loopback-flood.pcap"));
    // Slow input (about 2500 frames/s): the run takes several seconds, so
    // the restart lands in the middle of it.
    let input = Box::new(Trickle {
        frames: want.clone(),
        next: 0,
        per_read: 10,
        pause: Duration::from_millis(4),
        ends: true,
    });
    let mut opts = options(Target::Queue(q.clone()), 50);
    opts.max_in_flight = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let h = std::thread::spawn(move || sensor::run(opts, input, stop));
    // Readiness: batches are reaching the queue.
    let clock = Clock;
    let deadline = clock.now() + Duration::from_secs(60);
    loop {
        if ready(&q) >= 5 {
            break;
        }
        assert!(clock.now() < deadline, "no batch reached the queue");
        assert!(!h.is_finished(), "the sensor ended before the restart");
        clock.sleep(Duration::from_millis(20));
    }
    let guard = StartAppGuard;
    assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app");
    assert!(
        !h.is_finished(),
        "the sensor waits for the broker instead of finishing"
    );
    // The broker stays down a while (not a synchronisation).
    clock.sleep(Duration::from_secs(2));
    drop(guard); // start_app + await_startup

    // The run ends on its own.
    let deadline = clock.now() + Duration::from_secs(180);
    while !h.is_finished() {
        assert!(clock.now() < deadline, "the sensor did not finish");
        clock.sleep(Duration::from_millis(50));
    }
    let s = h
        .join()
        .unwrap()
        .expect("the sensor rides through the restart");
    println!("{s:?}");
    assert!(s.reconnects >= 1, "{s:?}");
    assert_eq!(s.packets as usize, want.len());

    let msgs = drain_queue(&q);
    let run_id = text(header(&msgs[0], H_RUN));
    let mut seen = std::collections::BTreeMap::new();
    let mut got = vec![];
    let mut last_seq = 0;
    for m in &msgs {
        assert_eq!(text(header(m, H_RUN)), run_id);
        let sq = seq(m);
        if let Some(body) = seen.get(&sq) {
            assert!(
                *body == m.delivery.data,
                "seq {sq} re-sent with another body"
            );
            continue;
        }
        assert_eq!(sq, last_seq + 1, "first copies in sequence order");
        last_seq = sq;
        seen.insert(sq, m.delivery.data.clone());
        got.extend(records(m));
    }
    assert_eq!(last_seq, s.batches, "{s:?}");
    let last = msgs.iter().find(|m| seq(m) == last_seq).unwrap();
    assert!(is_eos(last));
    assert_eq!(got.len(), want.len());
    assert!(got == want, "packets lost, duplicated or reordered");
    println!(
        "{} messages in the queue for {} batches (resent {})",
        msgs.len(),
        s.batches,
        s.resent
    );
}

/// A quiet live input keeps its connection: the heartbeats go out while the
/// sensor waits for packets (heartbeat of 1 s here, so a connection left
/// silent would be closed by the broker within a few seconds).
#[test]
fn idle_connection_survives_heartbeats() {
    let _b = shared();
    if !broker_up() {
        return;
    }
    let q = unique("lib-sensor-heartbeat");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let input = Box::new(Trickle {
        frames: frames(&capture("loopback-dig.pcap"))
            .into_iter()
            .take(3)
            .collect(),
        next: 0,
        per_read: 1000,
        pause: Duration::ZERO,
        ends: false,
    });
    let mut opts = options(Target::Queue(q.clone()), 1000);
    opts.uri = format!("{URI}?heartbeat=1");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let h = std::thread::spawn(move || sensor::run(opts, input, stop2));
    // Idle for several heartbeat intervals (the duration is the point).
    Clock.sleep(Duration::from_secs(6));
    stop.store(true, Ordering::Relaxed);
    let s = h.join().unwrap().expect("a clean stop");
    assert_eq!(s.reconnects, 0, "{s:?}");
    assert_eq!((s.packets, s.batches, s.resent), (3, 2, 0), "{s:?}");
    assert_eq!(drain_queue(&q).len(), 2);
}
