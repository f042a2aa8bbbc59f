//! Re-forming: a running member that loses another (its timely connection
//! breaks, or its znode goes) cannot go on inside the same timely run
//! (timely has no fault tolerance), so it starts over in a fresh process
//! image: `execv` of its own executable with the same arguments, the PID
//! unchanged (a service manager sees no exit). What it carries over that
//! exec is [`Carried`], in the environment variable [`ENV`]; the new image
//! registers again (a new znode), deletes the znode it had, and forms with
//! the members present (`form.rs`).
//!
//! The same path takes a new member in: a cluster running below
//! `--processes` re-forms when one registers.
//!
//! Must not: touch outputs or the dataflow; the command decides what to
//! do before the exec (flush, save) and calls [`exec_self`].

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use serde::{Deserialize, Serialize};

/// The environment variable a re-formed image finds [`Carried`] in (JSON).
pub const ENV: &str = "DNSMONITOR_REFORM";

/// Why a member re-forms (the `cause` label of
/// `dnsmonitor_cluster_reforms_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A member of its formation was lost (connection broke, znode gone).
    Loss,
    /// The cluster ran below `--processes` and a new member registered.
    Grow,
}

impl Cause {
    pub const ALL: [Cause; 2] = [Cause::Loss, Cause::Grow];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Loss => "loss",
            Cause::Grow => "grow",
        }
    }
}

/// What a member carries over its re-exec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// Re-forms of this process after a member loss, this one included.
    pub losses: u64,
    /// Re-forms of this process to take a new member in, this one included.
    pub grows: u64,
    /// The formation it left (its epoch, see `form::Formation`).
    pub epoch: u64,
    /// Its znode there (`/dnsmonitor/<cluster>/members/m-NNNNNNNNNN`):
    /// deleted by the new image once it has registered again, so the
    /// others wait for it to come back rather than form without it.
    pub znode: String,
    /// Its process index there (kept where it can be: process 0 writes
    /// the outputs).
    pub index: usize,
    /// When the re-form began (Unix microseconds): its deadline counts
    /// from here.
    pub since_us: i64,
}

impl Carried {
    /// Re-forms of this process so far.
    pub fn reforms(&self) -> u64 {
        self.losses + self.grows
    }

    /// The value of [`ENV`].
    pub fn to_env(&self) -> String {
        serde_json::to_string(self).expect("carried state serialises")
    }

    /// Parse [`ENV`]'s value; the error says why it is not one.
    pub fn from_env_value(v: &str) -> Result<Carried, String> {
        serde_json::from_str(v).map_err(|e| format!("{ENV} is not a re-form's state ({e})"))
    }

    /// The state this image was started with, if it is a re-formed one.
    /// A value that does not parse is ignored with a warning (this image
    /// then starts as a new member).
    pub fn from_env() -> Option<Carried> {
        let v = std::env::var(ENV).ok()?;
        match Carried::from_env_value(&v) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "starting as a new member");
                None
            }
        }
    }

    /// The state the next image carries after a re-form for `cause`,
    /// leaving formation `epoch` where this member was `znode` at `index`.
    pub fn next(
        before: Option<&Carried>,
        cause: Cause,
        epoch: u64,
        znode: &str,
        index: usize,
        now_us: i64,
    ) -> Carried {
        let (losses, grows) = before.map_or((0, 0), |c| (c.losses, c.grows));
        Carried {
            losses: losses + u64::from(cause == Cause::Loss),
            grows: grows + u64::from(cause == Cause::Grow),
            epoch,
            znode: znode.to_string(),
            index,
            since_us: now_us,
        }
    }
}

/// Replace this process image with a fresh one of the same executable and
/// arguments, `carried` in [`ENV`]. Every open descriptor but standard
/// input, output and error is closed by the exec (sockets to the other
/// members, ZooKeeper, RabbitMQ, the capture; files). Returns only when
/// the exec failed.
pub fn exec_self(carried: &Carried) -> std::io::Error {
    close_on_exec_from(3);
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let arg0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| "dnsmonitor".into());
    // /proc/self/exe: the executable this process runs, even if the file
    // was replaced (an upgrade) since.
    std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env(ENV, carried.to_env())
        .exec()
}

/// Mark every descriptor from `first` on close-on-exec (Rust and most
/// libraries open theirs so; libpcap's socket, say, may not be).
fn close_on_exec_from(first: i32) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on a descriptor number only reads or sets its
        // flags; one closed meanwhile (the directory's own) fails harmlessly.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_state_survives_the_environment_and_counts_by_cause() {
        let first = Carried::next(
            None,
            Cause::Loss,
            3,
            "/dnsmonitor/c/members/m-0000000007",
            1,
            42,
        );
        assert_eq!((first.losses, first.grows, first.reforms()), (1, 0, 1));
        let back = Carried::from_env_value(&first.to_env()).unwrap();
        assert_eq!(back, first);
        let second = Carried::next(
            Some(&back),
            Cause::Grow,
            4,
            "/dnsmonitor/c/members/m-0000000011",
            0,
            43,
        );
        assert_eq!((second.losses, second.grows, second.reforms()), (1, 1, 2));
        assert_eq!(second.epoch, 4);
        assert!(Carried::from_env_value("{\"losses\":1}").is_err());
        assert!(Carried::from_env_value("junk").unwrap_err().contains(ENV));
    }

    #[test]
    fn causes_are_the_metric_label_values() {
        let causes: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(causes, crate::metrics::REFORM_CAUSES);
    }

    #[test]
    fn descriptors_are_marked_close_on_exec() {
        // A descriptor opened without O_CLOEXEC, as C libraries may.
        // SAFETY: dup of standard error; closed below.
        let fd = unsafe { libc::dup(2) };
        assert!(fd >= 3);
        // SAFETY: flag reads and the close of our own descriptor.
        unsafe {
            assert_eq!(libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC, 0);
            close_on_exec_from(fd);
            assert_ne!(libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC, 0);
            libc::close(fd);
        }
    }
}
