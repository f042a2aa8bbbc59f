//! A tiny HTTP/1.1 endpoint for Prometheus scrapes, on `std::net`: one
//! thread, one connection at a time, every connection bounded in time
//! ([`REQUEST_TIMEOUT`] for the whole request head) and size
//! ([`MAX_REQUEST_BYTES`]), answered and closed (`Connection: close`).
//!
//! `GET /metrics` is the registry in the text format, `GET /` a short page
//! linking it; `HEAD` works for both. Any other path is 404, any other method
//! 405, anything that is not an HTTP/1.x request line 400.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Metrics;
use crate::time::Clock;

/// How long a client has to send its request head, and how long a response
/// write may block. A client that connects and sends nothing holds the
/// (single) server thread at most this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request head read; a longer one gets 400.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How long [`MetricsServer::stop`] waits to connect to its own listener.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

const INDEX_HTML: &str = "<!DOCTYPE html>\n<html><head><title>dnsmonitor</title></head>\
<body><h1>dnsmonitor</h1><p><a href=\"/metrics\">/metrics</a></p></body></html>\n";

/// The metrics HTTP server. Dropping it stops it too.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and serves `metrics` from a
    /// new thread. Returns once bound; [`local_addr`](Self::local_addr) is
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
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || accept_loop(listener, metrics, flag, timeout))?;
        tracing::debug!(%addr, "metrics endpoint listening");
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, waits for the connection in progress (at most the
    /// timeout) and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Unblock `accept` by connecting to ourselves.
        let _ = TcpStream::connect_timeout(&wake_addr(self.addr), WAKE_TIMEOUT);
        if thread.join().is_err() {
            tracing::warn!("metrics server thread panicked");
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// An address that reaches a listener bound to `addr` (the loopback address
/// of the same family when bound to the unspecified address).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn accept_loop(listener: TcpListener, metrics: Metrics, stop: Arc<AtomicBool>, timeout: Duration) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(stream) => {
                if let Err(e) = serve(stream, &metrics, timeout) {
                    tracing::debug!(error = %e, "metrics connection failed");
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "metrics accept failed");
                Clock.sleep(ACCEPT_ERROR_PAUSE);
            }
        }
    }
}

/// What the request head turned out to be.
#[derive(Debug, PartialEq, Eq)]
enum Request<'a> {
    /// A well-formed request line: method and path (query string removed).
    Line {
        method: &'a str,
        path: &'a str,
    },
    Bad,
}

fn serve(mut stream: TcpStream, metrics: &Metrics, timeout: Duration) -> io::Result<()> {
    stream.set_write_timeout(Some(timeout))?;
    let deadline = Clock.now() + timeout;
    let mut buf = [0u8; MAX_REQUEST_BYTES];
    let mut len = 0;
    let complete = loop {
        if head_end(&buf[..len]).is_some() {
            break true;
        }
        if len == buf.len() {
            break false;
        }
        let remaining = deadline.saturating_duration_since(Clock.now());
        if remaining.is_zero() {
            // Nothing sensible to answer a client this slow; just close.
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(remaining))?;
        match stream.read(&mut buf[len..]) {
            Ok(0) => break false,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    if len == 0 {
        return Ok(()); // connected and closed: nothing to answer
    }
    let request = if complete {
        parse_request(&buf[..len])
    } else {
        Request::Bad
    };
    let (status, content_type, body, head_only) = match request {
        Request::Bad => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n".to_string(),
            false,
        ),
        Request::Line { method, path } if method == "GET" || method == "HEAD" => {
            let head_only = method == "HEAD";
            match path {
                "/metrics" => (
                    "200 OK",
                    prometheus::TEXT_FORMAT,
                    metrics.render(),
                    head_only,
                ),
                "/" => (
                    "200 OK",
                    "text/html; charset=utf-8",
                    INDEX_HTML.to_string(),
                    head_only,
                ),
                _ => (
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    "not found: try /metrics\n".to_string(),
                    head_only,
                ),
            }
        }
        Request::Line { .. } => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "method not allowed\n".to_string(),
            false,
        ),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// Index just past the blank line ending the request head (CRLF CRLF, or
/// bare LF LF from lenient clients).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses the request line `METHOD SP target SP HTTP/1.x`.
fn parse_request(head: &[u8]) -> Request<'_> {
    let Ok(head) = std::str::from_utf8(head) else {
        return Request::Bad;
    };
    let line = head.split('\n').next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    let method_ok = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    if !method_ok || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Request::Bad;
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Request::Line { method, path }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Line {
                method: "GET",
                path: "/metrics"
            }
        );
        assert_eq!(
            parse_request(b"HEAD /?x=1 HTTP/1.0\r\n\r\n"),
            Request::Line {
                method: "HEAD",
                path: "/"
            }
        );
        for bad in [
            &b"garbage\r\n\r\n"[..],
            b"GET /metrics\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 x\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(parse_request(bad), Request::Bad, "{:?}", bad);
        }
    }

    #[test]
    fn head_end_found() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn wake_addr_uses_loopback_for_unspecified() {
        let a: SocketAddr = "0.0.0.0:9153".parse().unwrap();
        assert_eq!(wake_addr(a), "127.0.0.1:9153".parse().unwrap());
        let a: SocketAddr = "[::]:9153".parse().unwrap();
        assert_eq!(wake_addr(a), "[::1]:9153".parse().unwrap());
        let a: SocketAddr = "10.1.2.3:1".parse().unwrap();
        assert_eq!(wake_addr(a), a);
    }
}
