//! The process's one tokio runtime, for every part that does network I/O
//! on tasks (the AMQP room, the dnstap listener, the metrics endpoint).
//! Built on first use, never dropped: it lives until the process exits.
//!
//! Because nothing drops it, a part does not get its tasks cancelled for
//! free when it is done (as dropping a runtime of its own did): it ends its
//! own tasks (a stop signal, then [`wait`] bounded in time, then
//! `abort`), and closes its connections before it returns.
//!
//! Blocking on the runtime (`block_on`, [`wait`]) is for threads outside
//! it: the main thread, timely workers, a sensor's reading loop. A task
//! never blocks.

use std::future::Future;
use std::io;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};

/// Worker threads of the runtime. The tasks mostly wait on sockets (the
/// heavy work is on timely's workers); a second thread keeps one busy task
/// (a scrape rendering the registry, a burst of deliveries) from holding up
/// the others, such as lapin's heartbeats.
pub const WORKER_THREADS: usize = 2;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The process's runtime, built on the first call (multi-thread, threads
/// named `dnsmonitor-io`). An error only if the first build fails (no
/// threads left); the next call tries again.
pub fn shared() -> io::Result<&'static Runtime> {
    static BUILDING: Mutex<()> = Mutex::new(());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("dnsmonitor-io")
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// True on a thread that may block on the runtime: not one of its workers,
/// nor inside a `block_on`.
pub fn may_block() -> bool {
    tokio::runtime::Handle::try_current().is_err()
}

/// Run `f` to its end on the shared runtime, waiting at most `limit`;
/// `None` when time ran out, or without waiting at all when called where
/// blocking is not allowed ([`may_block`]: e.g. a drop inside a task) or
/// when there is no runtime (then nothing was ever spawned on it).
pub fn wait<F: Future>(limit: Duration, f: F) -> Option<F::Output> {
    let rt = RUNTIME.get()?;
    if !may_block() {
        return None;
    }
    rt.block_on(async { tokio::time::timeout(limit, f).await.ok() })
}
