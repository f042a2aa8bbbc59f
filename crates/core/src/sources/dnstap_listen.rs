//! The dnstap listener: Frame Streams **bidirectional** over unix and TCP
//! sockets (READY → ACCEPT, START, data frames, STOP → FINISH), several
//! senders at once, read by tasks on the process's tokio runtime
//! (`crate::runtime`) and handed to the dataflow as a [`FrameSource`] read
//! by one worker. Dropping the listener cancels its tasks.
//!
//! Every connection is a separate sensor for event time, with the rules of
//! `consume` (see `amqp::source`): the watermark is the oldest
//! "newest message" among the connections that sent something in the last
//! `idle_timeout`; a silent connection does not hold the windows, and once
//! every connection is silent event time follows the wall clock from the
//! newest message, so open alerts still resolve. A closed connection stops
//! counting.
//!
//! A connection that breaks the protocol (wrong content type, a length
//! over a bound, a truncated frame, a frame that is not a dnstap protobuf,
//! control frames out of order, a handshake that stalls) is closed, logged
//! with its peer escaped, and counted by reason; the others go on. What
//! one connection buffers is bounded by `frames::MAX_FRAME_BYTES` plus one
//! read, and the number of connections by [`MAX_CONNECTIONS`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{FrameSource, RawPacket, ReadStatus};
use crate::dnstap::frames::{self, ControlType, Frame};
use crate::dnstap::{DnstapCounters, DnstapError, LINKTYPE_DNSTAP};
use crate::metrics::Metrics;
use crate::time::Clock;

/// Most sender connections served at once; further ones are closed at once
/// and counted (`too_many_connections`).
pub const MAX_CONNECTIONS: usize = 256;
/// A sender must finish the handshake (READY/START) within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;
/// Batches in flight between the connections and the dataflow; a full
/// queue slows the readers down (the senders buffer or drop, as dnstap
/// senders do), it never grows.
const QUEUE_BATCHES: usize = 64;
/// Default idle timeout of a connection (as `consume`'s of a sensor).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default mode of a unix socket file.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(String),
}

impl std::str::FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err("unix: needs a socket path (unix:/run/dnstap.sock)".into());
            }
            Ok(ListenAddr::Unix(PathBuf::from(p)))
        } else if let Some(a) = s.strip_prefix("tcp:") {
            if a.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(format!(
                    "invalid tcp listen address `{a}`: use tcp:HOST:PORT (tcp:127.0.0.1:6000)"
                ));
            }
            Ok(ListenAddr::Tcp(a.to_string()))
        } else {
            Err(format!(
                "invalid listen address `{s}`: use unix:PATH or tcp:HOST:PORT"
            ))
        }
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ListenAddr::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// How to listen.
#[derive(Clone, Debug)]
pub struct ListenOptions {
    pub listen: Vec<ListenAddr>,
    /// Mode of unix socket files.
    pub socket_mode: u32,
    pub idle_timeout: Duration,
    pub metrics: Option<Metrics>,
    /// Set by SIGINT/SIGTERM: stop taking frames, hand over what was
    /// received, then end the input.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// A failure to start listening (before the run starts).
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: String, message: String },
    #[error("cannot start the dnstap listener: {0}")]
    Runtime(String),
}

/// Frames of one connection, on their way to the dataflow.
struct Batch {
    conn: u64,
    /// The frames' payloads back to back; `ends[i]` is where frame i ends.
    data: Vec<u8>,
    ends: Vec<usize>,
    times: Vec<i64>,
    /// The connection ended (cleanly or not) after these frames.
    closed: bool,
}

impl Batch {
    fn new(conn: u64) -> Batch {
        Batch {
            conn,
            data: Vec::new(),
            ends: Vec::new(),
            times: Vec::new(),
            closed: false,
        }
    }
}

/// What the tasks share.
struct ListenerState {
    counters: Mutex<DnstapCounters>,
    metrics: Option<Metrics>,
    active: Mutex<usize>,
}

impl ListenerState {
    /// A frame skipped (the connection goes on).
    fn count(&self, e: DnstapError) {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error(e);
        if let Some(m) = &self.metrics {
            m.dnstap_errors.with_label_values(&[e.as_str()]).inc();
        }
    }

    /// A connection closed for `e`: counted and logged (peer escaped).
    fn reject(&self, conn: u64, peer: &str, e: DnstapError, detail: &str) {
        self.count(e);
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .connections_rejected += 1;
        tracing::warn!(
            reason = e.as_str(),
            "dnstap connection {conn} from {peer}: {e}{detail}; connection closed"
        );
    }
}

/// The listener's tasks (accept loops, connections) on the shared runtime,
/// cancelled together when their [`OwnTasks`] is dropped (with the
/// listener, or when `bind` fails halfway); one spawned after that is
/// cancelled at once.
#[derive(Clone)]
struct Tasks {
    handle: tokio::runtime::Handle,
    /// (cancelled, the tasks that may still run).
    running: Arc<Mutex<(bool, Vec<tokio::task::AbortHandle>)>>,
}

impl Tasks {
    fn new(handle: tokio::runtime::Handle) -> Tasks {
        Tasks {
            handle,
            running: Arc::default(),
        }
    }

    fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        let t = self.handle.spawn(f).abort_handle();
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.0 {
            t.abort();
            return;
        }
        running.1.retain(|t| !t.is_finished());
        running.1.push(t);
    }

    fn cancel(&self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.0 = true;
        for t in running.1.drain(..) {
            t.abort();
        }
    }
}

/// Cancels the [`Tasks`] when dropped.
struct OwnTasks(Tasks);

impl Drop for OwnTasks {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Per-connection event time (see the module doc).
struct SenderState {
    newest_ts: i64,
    last_seen: Instant,
}

/// The listener as a dataflow input.
pub struct DnstapListener {
    rt: &'static tokio::runtime::Runtime,
    /// Its tasks, cancelled when the listener is dropped.
    tasks: OwnTasks,
    rx: mpsc::Receiver<Batch>,
    senders: HashMap<u64, SenderState>,
    /// Newest message of connections that closed.
    closed_newest: Option<i64>,
    idle_timeout: Duration,
    frame: u64,
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Socket files to remove at the end.
    socket_files: Vec<PathBuf>,
    /// The addresses actually bound (a TCP port 0 resolved).
    pub bound: Vec<String>,
}

/// A handle on the listener's counters, kept by the caller for the summary.
#[derive(Clone)]
pub struct ListenerCounters(Arc<ListenerState>);

impl ListenerCounters {
    /// Connections, and errors of connections the listener closed.
    pub fn get(&self) -> DnstapCounters {
        self.0
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Remove a unix socket file left behind by a previous run (nobody accepts
/// on it); refuse a path that is not a socket, or one that is in use.
fn clear_stale_socket(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err("the path exists and is not a socket; not replacing it".into());
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err("another process is listening on this socket".into()),
        Err(_) => std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove the stale socket file: {e}")),
    }
}

impl DnstapListener {
    /// Bind every address (errors before the run starts) and start
    /// accepting.
    pub fn bind(opts: ListenOptions) -> Result<(DnstapListener, ListenerCounters), ListenError> {
        let rt = crate::runtime::shared().map_err(|e| ListenError::Runtime(e.to_string()))?;
        // Dropped on an error below: the addresses bound so far stop accepting.
        let tasks = OwnTasks(Tasks::new(rt.handle().clone()));
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
        let shared = Arc::new(ListenerState {
            counters: Mutex::new(DnstapCounters::default()),
            metrics: opts.metrics.clone(),
            active: Mutex::new(0),
        });
        let mut socket_files = Vec::new();
        let mut bound = Vec::new();
        let next_conn = Arc::new(std::sync::atomic::AtomicU64::new(1));
        for addr in &opts.listen {
            let err = |message: String| ListenError::Bind {
                addr: addr.to_string(),
                message,
            };
            match addr {
                ListenAddr::Unix(path) => {
                    clear_stale_socket(path).map_err(err)?;
                    let l = {
                        let _g = rt.enter();
                        tokio::net::UnixListener::bind(path).map_err(|e| err(e.to_string()))?
                    };
                    socket_files.push(path.clone());
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(
                        path,
                        std::fs::Permissions::from_mode(opts.socket_mode),
                    )
                    .map_err(|e| err(format!("cannot set the socket mode: {e}")))?;
                    bound.push(addr.to_string());
                    let (tx, shared, ids) = (tx.clone(), shared.clone(), next_conn.clone());
                    let name = path.display().to_string();
                    let spawner = tasks.0.clone();
                    tasks.0.spawn(async move {
                        loop {
                            let Ok((s, _)) = l.accept().await else {
                                continue;
                            };
                            let conn = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let peer = format!("unix:{}", crate::escape::for_terminal(&name));
                            start_connection(s, conn, peer, &tx, &shared, &spawner);
                        }
                    });
                }
                ListenAddr::Tcp(a) => {
                    let l = rt
                        .block_on(tokio::net::TcpListener::bind(a.as_str()))
                        .map_err(|e| err(e.to_string()))?;
                    let local = l.local_addr().map_err(|e| err(e.to_string()))?;
                    bound.push(format!("tcp:{local}"));
                    let (tx, shared, ids) = (tx.clone(), shared.clone(), next_conn.clone());
                    let spawner = tasks.0.clone();
                    tasks.0.spawn(async move {
                        loop {
                            let Ok((s, peer)) = l.accept().await else {
                                continue;
                            };
                            let conn = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let peer = format!("tcp:{peer}");
                            start_connection(s, conn, peer, &tx, &shared, &spawner);
                        }
                    });
                }
            }
        }
        let counters = ListenerCounters(shared.clone());
        Ok((
            DnstapListener {
                rt,
                tasks,
                rx,
                senders: HashMap::new(),
                closed_newest: None,
                idle_timeout: opts.idle_timeout,
                frame: 0,
                stop: opts.stop.clone(),
                socket_files,
                bound,
            },
            counters,
        ))
    }

    /// Hand a batch's frames over; returns how many.
    fn take(&mut self, b: Batch, f: &mut dyn FnMut(RawPacket<'_>)) -> usize {
        let now = Clock.now();
        let st = self.senders.entry(b.conn).or_insert(SenderState {
            newest_ts: i64::MIN,
            last_seen: now,
        });
        st.last_seen = now;
        if let Some(t) = b.times.iter().max() {
            st.newest_ts = st.newest_ts.max(*t);
        }
        let mut start = 0;
        for (end, ts) in b.ends.iter().zip(&b.times) {
            self.frame += 1;
            let data = &b.data[start..*end];
            f(RawPacket {
                file: 0,
                frame: self.frame,
                linktype: LINKTYPE_DNSTAP,
                ts_us: *ts,
                orig_len: data.len() as u32,
                data,
                source: None,
            });
            start = *end;
        }
        if b.closed
            && let Some(st) = self.senders.remove(&b.conn)
            && st.newest_ts != i64::MIN
        {
            self.closed_newest = Some(
                self.closed_newest
                    .map_or(st.newest_ts, |m| m.max(st.newest_ts)),
            );
        }
        b.ends.len()
    }
}

/// Serve one accepted connection in its own task (or refuse it when too
/// many are open).
fn start_connection<S>(
    s: S,
    conn: u64,
    peer: String,
    tx: &mpsc::Sender<Batch>,
    shared: &Arc<ListenerState>,
    tasks: &Tasks,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    {
        let mut active = shared.active.lock().unwrap_or_else(|p| p.into_inner());
        if *active >= MAX_CONNECTIONS {
            drop(active);
            shared.reject(conn, &peer, DnstapError::TooManyConnections, "");
            return;
        }
        *active += 1;
    }
    shared
        .counters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .connections += 1;
    if let Some(m) = &shared.metrics {
        m.dnstap_connections.inc();
    }
    tracing::info!("dnstap connection {conn} from {peer} accepted");
    let (tx, shared) = (tx.clone(), shared.clone());
    tasks.spawn(async move {
        let mut conn_state = Connection {
            s,
            conn,
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            tx,
            shared: shared.clone(),
        };
        let r = conn_state.serve().await;
        // Whatever happened, the dataflow learns the connection ended.
        let mut b = Batch::new(conn);
        b.closed = true;
        let _ = conn_state.tx.send(b).await;
        match r {
            Ok(frames) => {
                tracing::info!(
                    "dnstap connection {conn} from {peer} finished after {frames} frames"
                )
            }
            Err((e, detail)) => shared.reject(conn, &peer, e, &detail),
        }
        *shared.active.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
    });
}

/// One connection's reading state.
struct Connection<S> {
    s: S,
    conn: u64,
    /// Bytes read and not yet parsed: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    tx: mpsc::Sender<Batch>,
    shared: Arc<ListenerState>,
}

type ConnError = (DnstapError, String);

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Read more bytes; false at the end of the stream.
    async fn fill(&mut self) -> Result<bool, ConnError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(READ_CHUNK);
        match self.s.read_buf(&mut self.buf).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err((DnstapError::Truncated, format!(" ({e})"))),
        }
    }

    /// The next control frame of the handshake (no data frame allowed).
    async fn control(&mut self) -> Result<frames::Control, ConnError> {
        loop {
            match frames::parse(&self.buf[self.start..]) {
                Err(e) => return Err((e, String::new())),
                Ok(Some((Frame::Control(c), n))) => {
                    self.start += n;
                    return Ok(c);
                }
                Ok(Some((Frame::Data(_), _))) => {
                    return Err((
                        DnstapError::UnexpectedControl,
                        " (a data frame before START)".into(),
                    ));
                }
                Ok(None) => {
                    let more = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.fill())
                        .await
                        .map_err(|_| (DnstapError::Timeout, String::new()))??;
                    if !more {
                        return Err((
                            DnstapError::Truncated,
                            " (closed during the handshake)".into(),
                        ));
                    }
                }
            }
        }
    }

    async fn send_control(
        &mut self,
        kind: ControlType,
        ct: Option<&[u8]>,
    ) -> Result<(), ConnError> {
        self.s
            .write_all(&frames::control(kind, ct))
            .await
            .map_err(|e| {
                (
                    DnstapError::Truncated,
                    format!(" (writing {}: {e})", kind.as_str()),
                )
            })
    }

    /// Handshake, data, STOP/FINISH; the number of data frames.
    async fn serve(&mut self) -> Result<u64, ConnError> {
        let wrong_type = |c: &frames::Control| {
            (
                DnstapError::WrongContentType,
                format!(
                    " (offered \"{}\")",
                    crate::escape::for_terminal(&String::from_utf8_lossy(c.first_content_type()))
                ),
            )
        };
        let first = self.control().await?;
        let start = match first.kind {
            ControlType::Ready => {
                if !first.offers_dnstap() {
                    return Err(wrong_type(&first));
                }
                self.send_control(ControlType::Accept, Some(frames::CONTENT_TYPE))
                    .await?;
                self.control().await?
            }
            // A unidirectional sender (no READY) starts at once.
            _ => first,
        };
        if start.kind != ControlType::Start {
            return Err((
                DnstapError::UnexpectedControl,
                format!(" ({} where START was expected)", start.kind.as_str()),
            ));
        }
        if !start.offers_dnstap() {
            return Err(wrong_type(&start));
        }
        let mut frames_seen = 0u64;
        loop {
            let mut batch = Batch::new(self.conn);
            let mut stop = false;
            loop {
                match frames::parse(&self.buf[self.start..]) {
                    Err(e) => {
                        self.flush(batch).await;
                        return Err((e, format!(" after {frames_seen} frames")));
                    }
                    Ok(None) => break,
                    Ok(Some((Frame::Data(d), n))) => {
                        // The time comes from the message; a frame that is
                        // no dnstap protobuf ends the connection, one
                        // without a time is counted and skipped.
                        self.start += n;
                        let ts = match crate::dnstap::message::frame_time(d) {
                            Ok(ts) => ts,
                            Err(DnstapError::Protobuf) => {
                                self.flush(batch).await;
                                return Err((
                                    DnstapError::Protobuf,
                                    format!(" (data frame {})", frames_seen + 1),
                                ));
                            }
                            Err(e) => {
                                self.shared.count(e);
                                continue;
                            }
                        };
                        frames_seen += 1;
                        batch.data.extend_from_slice(d);
                        batch.ends.push(batch.data.len());
                        batch.times.push(ts);
                    }
                    Ok(Some((Frame::Control(c), n))) => {
                        self.start += n;
                        if c.kind == ControlType::Stop {
                            stop = true;
                            break;
                        }
                        self.flush(batch).await;
                        return Err((
                            DnstapError::UnexpectedControl,
                            format!(" ({} after START)", c.kind.as_str()),
                        ));
                    }
                }
            }
            self.flush(batch).await;
            if stop {
                // FINISH only answers a bidirectional sender; a
                // unidirectional one has closed its side already.
                let _ = self.send_control(ControlType::Finish, None).await;
                return Ok(frames_seen);
            }
            if !self.fill().await? {
                let partial = self.buf.len() > self.start;
                return Err((
                    DnstapError::Truncated,
                    if partial {
                        format!(" (closed inside a frame after {frames_seen} frames)")
                    } else {
                        format!(" (closed without STOP after {frames_seen} frames)")
                    },
                ));
            }
        }
    }

    async fn flush(&mut self, batch: Batch) {
        if !batch.ends.is_empty() {
            let _ = self.tx.send(batch).await;
        }
    }
}

impl FrameSource for DnstapListener {
    fn read(&mut self, max: usize, wait: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> ReadStatus {
        let mut n = 0;
        if self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            // No more frames come in (`close` refuses new sends); what
            // was received goes out first, then the input ends.
            self.rx.close();
            while n < max {
                match self.rx.try_recv() {
                    Ok(b) => n += self.take(b, f),
                    Err(_) => break,
                }
            }
            return if n == 0 {
                ReadStatus::Done
            } else {
                ReadStatus::Frames(n)
            };
        }
        // Wait for the first batch at most `wait`, then take what is there.
        if let Ok(b) = self.rx.try_recv() {
            n += self.take(b, f);
        } else if let Ok(Some(b)) = self
            .rt
            .block_on(async { tokio::time::timeout(wait, self.rx.recv()).await })
        {
            n += self.take(b, f);
        }
        while n < max {
            match self.rx.try_recv() {
                Ok(b) => n += self.take(b, f),
                Err(_) => break,
            }
        }
        if n == 0 {
            ReadStatus::Idle
        } else {
            ReadStatus::Frames(n)
        }
    }

    fn shared(&self) -> bool {
        false
    }

    /// Event time follows the clock while every sender is silent, and the
    /// input drains on stop instead of ending at once.
    fn live(&self) -> bool {
        true
    }

    fn stops_itself(&self) -> bool {
        self.stop.is_some()
    }

    fn watermark_us(&mut self) -> Option<i64> {
        let now = Clock.now();
        let mut active: Option<i64> = None;
        let mut idle: Option<i64> = self.closed_newest;
        for st in self.senders.values() {
            if st.newest_ts == i64::MIN {
                continue;
            }
            let quiet = now.saturating_duration_since(st.last_seen);
            if quiet >= self.idle_timeout {
                let t = st.newest_ts.saturating_add(quiet.as_micros() as i64);
                idle = Some(idle.map_or(t, |m| m.max(t)));
            } else {
                active = Some(active.map_or(st.newest_ts, |m| m.min(st.newest_ts)));
            }
        }
        active.or(idle)
    }
}

impl Drop for DnstapListener {
    fn drop(&mut self) {
        self.tasks.0.cancel();
        for p in &self.socket_files {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The listener's counters (connections and closed connections' errors)
/// added to a run's message-side counters.
pub fn with_listener(mut c: DnstapCounters, l: &ListenerCounters) -> DnstapCounters {
    c.merge(&l.get());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            "unix:/tmp/x.sock".parse::<ListenAddr>(),
            Ok(ListenAddr::Unix("/tmp/x.sock".into()))
        );
        assert_eq!(
            "tcp:127.0.0.1:6000".parse::<ListenAddr>(),
            Ok(ListenAddr::Tcp("127.0.0.1:6000".into()))
        );
        assert!("tcp:127.0.0.1".parse::<ListenAddr>().is_err());
        assert!("unix:".parse::<ListenAddr>().is_err());
        assert!("/tmp/x.sock".parse::<ListenAddr>().is_err());
    }
}
