//! RabbitMQ helpers for the broker tests (real broker on 127.0.0.1:5672).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dnsmonitor::alert::{Alert, State};
use dnsmonitor::amqp::batch::{
    BatchWriter, CONTENT_TYPE, H_EOS, H_PACKETS, H_RUN, H_SENSOR, H_SEQ,
};
use dnsmonitor::detect::{Key, Kind, Severity};
use dnsmonitor::time::Clock;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

pub const URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// True when a broker answers; otherwise [`super::cannot_run`] (a failure,
/// or SKIPPED with the explicit opt-out `DNSMONITOR_SKIP_SERVICES=1`).
pub fn broker_up() -> bool {
    let addr: SocketAddr = "127.0.0.1:5672".parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        true
    } else {
        super::cannot_run("no RabbitMQ on 127.0.0.1:5672 (run scripts/services.sh)");
        false
    }
}

/// A name no other test (or test run) uses.
pub fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "test.dnsmonitor.{what}.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Deletes queues and exchanges when dropped (also when the test fails).
#[derive(Default)]
pub struct Cleanup {
    pub queues: Vec<String>,
    pub exchanges: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = rt().block_on(async {
            let c = Connection::connect(URI, ConnectionProperties::default()).await?;
            for q in &self.queues {
                let ch = c.create_channel().await?;
                let _ = ch
                    .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for e in &self.exchanges {
                let ch = c.create_channel().await?;
                let _ = ch
                    .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
            c.close(200, "bye".into()).await
        });
    }
}

/// Every frame of a capture: (linktype, ts_us, data, orig_len).
pub fn frames(path: &Path) -> Vec<(i32, i64, Vec<u8>, u32)> {
    let mut cap = pcap::Capture::from_file(path).unwrap();
    let lt = cap.get_datalink().0;
    let mut out = vec![];
    while let Ok(p) = cap.next_packet() {
        let ts = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
        out.push((lt, ts, p.data.to_vec(), p.header.len));
    }
    out
}

/// One message as `dnsmonitor sensor` sends it.
pub struct Batch {
    pub sensor: String,
    pub run: String,
    pub seq: u64,
    pub eos: bool,
    pub body: Vec<u8>,
    pub packets: u64,
}

/// Cut frames into batches of `per` packets, numbered from 1, plus an
/// end-of-stream batch when `eos`.
pub fn batches(
    frames: &[(i32, i64, Vec<u8>, u32)],
    per: usize,
    sensor: &str,
    eos: bool,
) -> Vec<Batch> {
    let run = format!("run-{}", std::process::id());
    let mut out = vec![];
    for chunk in frames.chunks(per) {
        let mut w = BatchWriter::new(chunk[0].0, 65535);
        for (_, ts, data, len) in chunk {
            w.push(*ts, data, *len);
        }
        out.push(Batch {
            sensor: sensor.into(),
            run: run.clone(),
            seq: out.len() as u64 + 1,
            eos: false,
            packets: w.packets(),
            body: w.into_bytes(),
        });
    }
    if eos {
        let lt = frames.first().map_or(1, |f| f.0);
        out.push(Batch {
            sensor: sensor.into(),
            run,
            seq: out.len() as u64 + 1,
            eos: true,
            packets: 0,
            body: BatchWriter::new(lt, 65535).into_bytes(),
        });
    }
    out
}

/// Declare `queue` durable (with an optional dead-letter exchange, declared
/// fanout) the way `consume` does.
/// Messages ready in `queue` once no consumer is attached any more (a
/// killed consumer's unacked deliveries are requeued by then): polls the
/// broker (passive declare) until it has no consumer, within 30 s.
pub async fn ready_after_consumers_left(ch: &lapin::Channel, queue: &str) -> u32 {
    let clock = Clock;
    let deadline = clock.now() + std::time::Duration::from_secs(30);
    loop {
        let q = passive_declare(ch, queue).await.unwrap();
        if q.consumer_count() == 0 {
            return q.message_count();
        }
        assert!(
            clock.now() < deadline,
            "a consumer is still attached to {queue}"
        );
        clock.sleep(std::time::Duration::from_millis(50));
    }
}

pub async fn declare_queue(ch: &lapin::Channel, queue: &str, dlx: Option<&str>) {
    let mut args = FieldTable::default();
    if let Some(d) = dlx {
        declare_exchange(ch, d, lapin::ExchangeKind::Fanout).await;
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(d.into()),
        );
    }
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await
    .unwrap();
}

/// Publish raw bodies (with batch headers when given) to `queue`, waiting
/// for every confirm.
pub async fn publish(ch: &lapin::Channel, queue: &str, batches: &[Batch]) {
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut confirms = vec![];
    for b in batches {
        let mut h = FieldTable::default();
        h.insert(
            H_SENSOR.into(),
            AMQPValue::LongString(b.sensor.as_str().into()),
        );
        h.insert(H_RUN.into(), AMQPValue::LongString(b.run.as_str().into()));
        h.insert(H_SEQ.into(), AMQPValue::LongLongInt(b.seq as i64));
        h.insert(H_PACKETS.into(), AMQPValue::LongLongInt(b.packets as i64));
        if b.eos {
            h.insert(H_EOS.into(), AMQPValue::Boolean(true));
        }
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(CONTENT_TYPE.into())
            .with_headers(h);
        let c = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &b.body,
                props,
            )
            .await
            .unwrap();
        confirms.push(c);
    }
    for c in confirms {
        assert!(c.await.unwrap().is_ack());
    }
}

/// Messages ready in `queue` (not delivered to a consumer); the queue must
/// exist.
pub async fn ready_count(ch: &lapin::Channel, queue: &str) -> u32 {
    queue_len(ch, queue).await.expect("queue exists")
}

/// Messages ready in `queue`, `None` when it does not exist (yet). A failed
/// passive declare closes the channel: use a fresh one after `None`.
pub async fn queue_len(ch: &lapin::Channel, queue: &str) -> Option<u32> {
    passive_declare(ch, queue)
        .await
        .ok()
        .map(|q| q.message_count())
}

/// The broker's view of an existing `queue` (a passive declare: an error,
/// which closes the channel, when it does not exist).
async fn passive_declare(ch: &lapin::Channel, queue: &str) -> lapin::Result<lapin::Queue> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(queue.into(), passive, FieldTable::default())
        .await
}

/// Everything ready in `queue`, acked.
pub async fn drain(ch: &lapin::Channel, queue: &str) -> Vec<lapin::message::BasicGetMessage> {
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions::default())
        .await
        .unwrap()
    {
        m.delivery.ack(BasicAckOptions::default()).await.unwrap();
        out.push(m);
    }
    out
}

/// Connect and open a channel.
pub async fn channel() -> (Connection, lapin::Channel) {
    let c = Connection::connect(URI, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = c.create_channel().await.unwrap();
    (c, ch)
}

/// Wait for a child, killing it (and failing) after `secs`.
pub fn wait_output(mut child: Child, secs: u64) -> Output {
    let clock = Clock;
    let deadline = clock.now() + Duration::from_secs(secs);
    let err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(mut e) = err {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Output {
                status,
                stdout: vec![],
                stderr: reader.join().unwrap(),
            };
        }
        if clock.now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let e = reader.join().unwrap();
            panic!(
                "no exit within {secs} s; stderr:\n{}",
                String::from_utf8_lossy(&e)
            );
        }
        clock.sleep(Duration::from_millis(50));
    }
}

/// Read a child's stderr until it prints where its metrics are served
/// (`--metrics-listen 127.0.0.1:0`); the rest of stderr is collected in the
/// background (join the handle once the child exited).
pub fn metrics_addr(child: &mut Child) -> (String, std::thread::JoinHandle<String>) {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    for _ in 0..20 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(rest) = line.trim().strip_prefix("metrics: serving on http://") {
            addr = Some(rest.trim_end_matches("/metrics").to_string());
            break;
        }
    }
    let rest = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    (addr.expect("metrics address on stderr"), rest)
}

/// GET /metrics.
pub fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A sample's value (0 when absent).
pub fn metric(text: &str, name_labels: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_labels)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A fresh directory under the system temp dir.
pub fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(unique(tag));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An alert for client 192.0.2.`last`, `t` windows of 10 s after a fixed time.
pub fn test_alert(kind: Kind, severity: Severity, state: State, last: u8, t: i64) -> Alert {
    let ip: std::net::IpAddr = format!("192.0.2.{last}").parse().unwrap();
    Alert {
        kind,
        severity,
        state,
        key: Key::Client(ip),
        event_time_us: 1_764_093_675_000_000 + t * 10_000_000,
        window_start_us: 1_764_093_665_000_000 + t * 10_000_000,
        observed: 316.2,
        threshold: 300.0,
        unit: "queries/s".into(),
        evidence: [("queries".to_string(), 3162.into())].into_iter().collect(),
    }
}

/// Declare a durable topic `exchange`, `queue` and bind them with `pattern`.
pub async fn bind_queue(
    ch: &lapin::Channel,
    exchange: &str,
    queue: &str,
    pattern: &str,
    durable: bool,
) {
    declare_exchange(ch, exchange, lapin::ExchangeKind::Topic).await;
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        pattern.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

/// Declare a durable exchange.
pub async fn declare_exchange(ch: &lapin::Channel, name: &str, kind: lapin::ExchangeKind) {
    ch.exchange_declare(
        name.into(),
        kind,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
}

/// Start `dnsmonitor alerts --json` bound to `pattern` on `exchange` and
/// wait until its queue is bound (its first stderr line); its stdout is
/// piped.
pub fn start_alerts_watcher(exchange: &str, pattern: &str) -> Child {
    use std::process::{Command, Stdio};
    let mut w = Command::new(env!("CARGO_BIN_EXE_dnsmonitor"))
        .args([
            "alerts",
            "--exchange",
            exchange,
            "--bind",
            pattern,
            "--json",
        ])
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(w.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("alerts: listening on amqp://guest:***@"),
        "{line}"
    );
    w
}

/// A header of a received message.
pub fn header<'a>(m: &'a lapin::message::BasicGetMessage, k: &str) -> Option<&'a AMQPValue> {
    m.delivery.properties.headers().as_ref()?.inner().get(k)
}

/// A long-string header value (panics on anything else).
pub fn text(v: Option<&AMQPValue>) -> String {
    match v {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("not a long string: {other:?}"),
    }
}

/// A long-long-int header value (panics on anything else).
pub fn int(v: Option<&AMQPValue>) -> i64 {
    match v {
        Some(AMQPValue::LongLongInt(n)) => *n,
        other => panic!("not a long-long int: {other:?}"),
    }
}

/// `rabbitmqctl ARGS` (bounded to 90 s); true on success.
pub fn rabbitmqctl(args: &[&str]) -> bool {
    std::process::Command::new("timeout")
        .arg("90")
        .arg("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs `rabbitmqctl start_app` (and waits for startup) on drop, so a failing
/// test never leaves the shared broker stopped.
pub struct StartAppGuard;

impl Drop for StartAppGuard {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup", "--timeout", "60"]);
    }
}

/// The broker answers and this user may run rabbitmqctl (to restart it).
pub fn can_restart() -> bool {
    if !broker_up() {
        return false;
    }
    if !rabbitmqctl(&["status"]) {
        super::cannot_run("rabbitmqctl cannot reach the broker (needs its Erlang cookie)");
        return false;
    }
    true
}
