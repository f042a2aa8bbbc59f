//! The HTTP endpoint for Prometheus scrapes: hyper (HTTP/1.1), a task on
//! the process's tokio runtime (`crate::runtime`). Connections are served
//! concurrently, at most [`MAX_CONNECTIONS`] at once (more wait in the
//! listen backlog), each bounded in time ([`REQUEST_TIMEOUT`] for the
//! request head, twice that for the whole exchange) and in size
//! ([`MAX_REQUEST_BYTES`] of request head; past it hyper answers 431),
//! answered and closed (`Connection: close`). A few slow or silent clients
//! therefore cannot keep a scrape waiting.
//!
//! `GET /metrics` is the registry in the text format, `GET /` a short page
//! linking it; `HEAD` works for both. Any other path is 404, any other method
//! 405, anything that is not an HTTP/1.x request 400 (from hyper).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::runtime::Runtime;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use super::Metrics;

/// How long a client has to send its request head; the whole exchange
/// (head, answer) gets twice this. A client that connects and sends
/// nothing holds one of the [`MAX_CONNECTIONS`] slots at most this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request head read (hyper's smallest buffer limit).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

const INDEX_HTML: &str = "<!DOCTYPE html>\n<html><head><title>dnsmonitor</title></head>\
<body><h1>dnsmonitor</h1><p><a href=\"/metrics\">/metrics</a></p></body></html>\n";

/// The metrics HTTP server. Dropping it stops it too.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    runtime: &'static Runtime,
    task: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and serves `metrics` from a
    /// task on the shared runtime. Returns once bound; [`local_addr`](Self::local_addr) is
    /// the real address.
    pub fn start(addr: SocketAddr, metrics: Metrics) -> io::Result<MetricsServer> {
        Self::start_with_timeout(addr, metrics, REQUEST_TIMEOUT)
    }

    /// [`start`](Self::start) with another per-connection timeout (tests).
    pub fn start_with_timeout(
        addr: SocketAddr,
        metrics: Metrics,
        timeout: Duration,
    ) -> io::Result<MetricsServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = crate::runtime::shared()?;
        let (stop, stopped) = oneshot::channel();
        let task = runtime.spawn(accept_loop(listener, metrics, timeout, stopped));
        tracing::debug!(%addr, "metrics endpoint listening");
        Ok(MetricsServer {
            addr,
            stop: Some(stop),
            runtime,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (the port is free once this returns), lets the
    /// connections in progress finish (each bounded in time) and waits for
    /// the task.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if !crate::runtime::may_block() {
            // Inside the runtime (cannot wait): the task ends on its own.
            return;
        }
        if let Err(e) = self.runtime.block_on(task)
            && e.is_panic()
        {
            tracing::warn!("metrics server task panicked");
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    metrics: Metrics,
    timeout: Duration,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "metrics endpoint cannot listen");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let slot = tokio::select! {
            _ = &mut stopped => break,
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = &mut stopped => break,
            a = listener.accept() => match a {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        connections.spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&req, &metrics);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .title_case_headers(true)
                .max_buf_size(MAX_REQUEST_BYTES)
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(timeout * 2, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "metrics connection failed"),
                Err(_) => tracing::debug!("metrics connection timed out"),
            }
        });
        // Forget the connections that are done.
        while connections.try_join_next().is_some() {}
    }
    // Free the port now; the connections in progress end on their own.
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// The answer to one request.
fn respond<B>(req: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    let method = req.method();
    let (status, content_type, body) = if method != Method::GET && method != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "method not allowed\n".to_string(),
        )
    } else {
        match req.uri().path() {
            "/metrics" => (StatusCode::OK, prometheus::TEXT_FORMAT, metrics.render()),
            "/" => (
                StatusCode::OK,
                "text/html; charset=utf-8",
                INDEX_HTML.to_string(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                TEXT,
                "not found: try /metrics\n".to_string(),
            ),
        }
    };
    let mut response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response = response.header(ALLOW, "GET, HEAD");
    }
    response
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn get(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// More slow clients than the old single-threaded server could outlast
    /// within a scrape: they hold connections open while scrapes go on.
    #[test]
    fn slow_clients_do_not_hold_up_scrapes() {
        let timeout = Duration::from_secs(5);
        let server = MetricsServer::start_with_timeout(
            "127.0.0.1:0".parse().unwrap(),
            Metrics::new(),
            timeout,
        )
        .unwrap();
        let addr = server.local_addr();
        let slow: Vec<TcpStream> = (0..10)
            .map(|i| {
                let mut s = TcpStream::connect(addr).unwrap();
                if i % 2 == 0 {
                    s.write_all(b"GET /met").unwrap();
                }
                s
            })
            .collect();
        let start = crate::time::Clock.now();
        for _ in 0..3 {
            let r = get(addr);
            assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
            assert!(r.contains("dnsmonitor_build_info"), "{r}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "scrapes took {:?} behind 10 slow clients",
            start.elapsed()
        );
        drop(slow);
        server.stop();
    }
}
