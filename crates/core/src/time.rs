//! Time: the only place that reads the wall clock (`Clock`), and the
//! formatting of event times. Everything else works on event time taken from
//! packets, in microseconds since the Unix epoch (`i64`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Microseconds per second.
pub const MICROS: i64 = 1_000_000;

/// The event-time poisoning guard, shared by the ingest (frames) and the
/// queue source (batches): a frame this far ahead of the newest believed
/// time is a suspected bogus timestamp until `JUMP_CONFIRM` frames in a row
/// agree (a capture paused for longer than this still resumes after that
/// many frames).
pub const TIME_JUMP_US: i64 = 600 * MICROS;
/// Frames in a row that confirm a forward time jump.
pub const JUMP_CONFIRM: u32 = 8;

/// Pane index: event time divided by the window slide. Also the dataflow's
/// timestamp type; windows (`window/`) and detectors (`detect/`) both count
/// in it.
pub type Pane = u64;

/// Reads wall time. Replay uses it only for pacing (`--speed`) and progress;
/// detection never does.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock;

impl Clock {
    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// Wall time as microseconds since the Unix epoch.
    #[allow(clippy::disallowed_methods)]
    pub fn unix_micros(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    }

    pub fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// Civil date (year, month, day) from days since 1970-01-01
/// (H. Hinnant's algorithm; valid for the whole i64 day range we use).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Append RFC 3339 UTC: `2024-01-02T03:04:05Z`, or with `.ffffff` when
/// `micros` is true.
pub fn write_rfc3339(out: &mut String, ts_us: i64, micros: bool) {
    use std::fmt::Write;
    let secs = ts_us.div_euclid(MICROS);
    let frac = ts_us.rem_euclid(MICROS);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if micros {
        let _ = write!(out, ".{frac:06}");
    }
    out.push('Z');
}

/// RFC 3339 UTC with whole seconds, or microseconds when not whole.
pub fn rfc3339(ts_us: i64) -> String {
    let mut s = String::with_capacity(27);
    write_rfc3339(&mut s, ts_us, ts_us.rem_euclid(MICROS) != 0);
    s
}

/// Days since 1970-01-01 of a civil date (inverse of `civil_from_days`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse RFC 3339 (`2026-11-25T18:01:20Z`, fractions of a second and
/// `+hh:mm` offsets allowed) to microseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit())).then(|| t.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_us = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let six: String = digits
            .chars()
            .chain(std::iter::repeat('0'))
            .take(6)
            .collect();
        frac_us = six.parse::<i64>().ok()?;
    }
    let offset_s = match s.get(i..)? {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(&o[..1], "+" | "-") && &o[3..4] == ":" => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    Some(secs * MICROS + frac_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_formats() {
        for t in [0, 951_782_400 * MICROS, 1_795_629_680 * MICROS + 250_000] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{}", rfc3339(t));
        }
        assert_eq!(
            parse_rfc3339("2026-11-25T19:01:20+01:00"),
            parse_rfc3339("2026-11-25T18:01:20Z")
        );
        for bad in [
            "2026-11-25",
            "2026-11-25T18:01:20",
            "2026-13-25T18:01:20Z",
            "x026-11-25T18:01:20Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 * MICROS), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(1_755_792_128_155_410),
            "2025-08-21T16:02:08.155410Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
    }
}
