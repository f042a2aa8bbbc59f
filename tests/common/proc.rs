//! `Proc`: a child process under test with its stderr collected by a
//! thread; killed (SIGKILL) and reaped on drop unless it was waited for.
//! Used by the live-capture and dnstap tests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use dnsmonitor::time::Clock;

pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let reader = thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Proc {
            name,
            child,
            stderr,
            reader: Some(reader),
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until stderr contains `needle`; panics (with the stderr so far)
    /// after `limit` or when the process exits first.
    pub fn wait_for_stderr(&mut self, needle: &str, limit: Duration) {
        let t0 = Clock.now();
        loop {
            if self.stderr().contains(needle) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // All of stderr, for the message.
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                panic!(
                    "{} exited ({st}) before printing {needle:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            assert!(
                t0.elapsed() < limit,
                "{} did not print {needle:?} within {limit:?}; stderr:\n{}",
                self.name,
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid (not yet reaped).
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Wait for the exit at most `limit` (then kill and panic); returns the
    /// status with all of stderr collected.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        if let Some(st) = self.status {
            return st;
        }
        let t0 = Clock.now();
        let st = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {limit:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        self.status = Some(st);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        st
    }

    /// SIGINT, then wait at most `limit`.
    pub fn interrupt(&mut self, limit: Duration) -> ExitStatus {
        self.signal(libc::SIGINT);
        self.wait(limit)
    }

    /// CPU time (user + system) used so far, from /proc/<pid>/stat.
    pub fn cpu_secs(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields after the name start at field 3 (state): utime is field 14.
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Some(ticks / hz)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
