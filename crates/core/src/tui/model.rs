//! What the live screen shows, as plain data: rates and their history from
//! counter samples, the RCODE mix, the open alerts, the latest top-k report
//! tables, and the operator's choices (sort orders, pause). It is fed by
//! what the pipeline already produces (metric samples once a second, alert
//! states, reports) and knows nothing of terminals: tested alone.
//! Every text that came from the wire is escaped here, once
//! (`escape::for_terminal`).

use std::collections::{BTreeMap, VecDeque};

use crate::alert::{Alert, State};
use crate::detect::Severity;
use crate::escape::for_terminal;
use crate::metrics::RCODES;
use crate::reports::{Items, Report, Table};
use crate::time::{MICROS, rfc3339};

/// Seconds of packets/s and queries/s history kept for the sparklines.
pub const HISTORY_SECS: usize = 300;
/// Rows kept per top table (the report's `top` may be larger).
pub const TOP_ROWS: usize = 50;

/// Cumulative counters read from the metrics registry at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub packets: u64,
    pub queries: u64,
    pub responses: u64,
    pub rcodes: [u64; RCODES.len()],
    pub late: u64,
    pub capture_drops: u64,
    /// Event time up to which windows are closed (Unix seconds; 0 before).
    pub watermark_secs: f64,
}

/// How the top tables are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopSort {
    /// Biggest count first (ties by name).
    Count,
    /// By name.
    Name,
}

/// How the open alerts are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertSort {
    /// Critical first, then the oldest.
    Severity,
    /// The oldest first.
    Age,
}

/// One alert not yet resolved, as shown.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenAlert {
    pub kind: &'static str,
    pub severity: Severity,
    /// `client=127.0.0.66`, escaped.
    pub key: String,
    pub observed: f64,
    pub threshold: f64,
    /// Escaped.
    pub unit: String,
    /// Event time it was raised (µs).
    pub raised_us: i64,
    /// Event time of its latest state (µs).
    pub last_us: i64,
}

/// The newest report of one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopTable {
    /// End of the report's interval (RFC 3339).
    pub end: String,
    pub total: u64,
    /// (escaped name, count), as the report ordered them.
    pub rows: Vec<(String, u64)>,
}

/// Whether the input is still being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Quit asked for; the pipeline is closing its windows.
    Stopping,
    /// The input ended; the screen stays until the operator quits.
    Ended,
}

/// What a key press asks of the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    /// Redraw now (a sort order or the pause changed).
    Redraw,
    /// Stop the pipeline and leave.
    Quit,
}

/// Everything the screen shows.
#[derive(Clone, Debug)]
pub struct View {
    /// The latest sample and the one before (for rates).
    pub now: Sample,
    prev: Option<Sample>,
    /// Packets/s and queries/s, one per tick, newest last.
    pub pps: VecDeque<u64>,
    pub qps: VecDeque<u64>,
    /// RCODE counts of the latest tick's responses (the mix now), and
    /// since the start.
    pub rcodes_recent: [u64; RCODES.len()],
    /// Open alerts by (kind, key): one line each.
    pub alerts: BTreeMap<(&'static str, String), OpenAlert>,
    /// Alert states seen (raised, updated, resolved).
    pub alert_states: u64,
    /// Newest report per table, in `Table::ALL` order.
    pub tops: [TopTable; 3],
    pub top_sort: TopSort,
    pub alert_sort: AlertSort,
    pub paused: bool,
    pub phase: Phase,
}

impl Default for View {
    fn default() -> Self {
        View {
            now: Sample::default(),
            prev: None,
            pps: VecDeque::with_capacity(HISTORY_SECS),
            qps: VecDeque::with_capacity(HISTORY_SECS),
            rcodes_recent: [0; RCODES.len()],
            alerts: BTreeMap::new(),
            alert_states: 0,
            tops: Default::default(),
            top_sort: TopSort::Count,
            alert_sort: AlertSort::Severity,
            paused: false,
            phase: Phase::Running,
        }
    }
}

fn push(h: &mut VecDeque<u64>, v: u64) {
    if h.len() == HISTORY_SECS {
        h.pop_front();
    }
    h.push_back(v);
}

impl View {
    /// A new sample, `secs` after the previous one: rates and history.
    pub fn tick(&mut self, s: Sample, secs: f64) {
        if let Some(p) = self.prev.or(Some(self.now)).filter(|_| secs > 0.0) {
            let rate = |now: u64, before: u64| (now.saturating_sub(before) as f64 / secs).round();
            push(&mut self.pps, rate(s.packets, p.packets) as u64);
            push(&mut self.qps, rate(s.queries, p.queries) as u64);
            for (i, r) in self.rcodes_recent.iter_mut().enumerate() {
                *r = s.rcodes[i].saturating_sub(p.rcodes[i]);
            }
        }
        self.prev = Some(s);
        self.now = s;
    }

    /// Packets/s and queries/s of the latest tick.
    pub fn rates(&self) -> (u64, u64) {
        (
            self.pps.back().copied().unwrap_or(0),
            self.qps.back().copied().unwrap_or(0),
        )
    }

    /// An alert state from the alert stream.
    pub fn alert(&mut self, a: &Alert) {
        self.alert_states += 1;
        let key = key_text(a);
        let id = (a.kind.as_str(), key);
        match a.state {
            State::Resolved => {
                self.alerts.remove(&id);
            }
            State::Raised | State::Updated => {
                let raised_us = self
                    .alerts
                    .get(&id)
                    .map_or(a.event_time_us, |o| o.raised_us);
                let open = OpenAlert {
                    kind: a.kind.as_str(),
                    severity: a.severity,
                    key: id.1.clone(),
                    observed: a.observed,
                    threshold: a.threshold,
                    unit: for_terminal(&a.unit),
                    raised_us,
                    last_us: a.event_time_us,
                };
                self.alerts.insert(id, open);
            }
        }
    }

    /// A report from the report stream: the top-k tables are shown (the
    /// newly observed pairs are not).
    pub fn report(&mut self, r: &Report) {
        let (Some(i), Items::Top(items)) =
            (Table::ALL.iter().position(|t| *t == r.table), &r.items)
        else {
            return;
        };
        self.tops[i] = TopTable {
            end: rfc3339(r.end_us),
            total: r.total,
            rows: items
                .iter()
                .take(TOP_ROWS)
                .map(|(name, n)| (for_terminal(name), *n))
                .collect(),
        };
    }

    /// The rows of a top table in the chosen order.
    pub fn top(&self, t: Table) -> Vec<(&str, u64)> {
        let i = Table::ALL.iter().position(|x| *x == t).unwrap_or(0);
        let mut rows: Vec<(&str, u64)> = self.tops[i]
            .rows
            .iter()
            .map(|(n, c)| (n.as_str(), *c))
            .collect();
        match self.top_sort {
            TopSort::Count => rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0))),
            TopSort::Name => rows.sort_by(|a, b| a.0.cmp(b.0)),
        }
        rows
    }

    /// Open alerts in the chosen order.
    pub fn open_alerts(&self) -> Vec<&OpenAlert> {
        let mut v: Vec<&OpenAlert> = self.alerts.values().collect();
        let age = |a: &&OpenAlert| (a.raised_us, a.kind, a.key.clone());
        match self.alert_sort {
            AlertSort::Severity => v.sort_by(|a, b| {
                b.severity
                    .cmp(&a.severity)
                    .then_with(|| age(a).cmp(&age(b)))
            }),
            AlertSort::Age => v.sort_by_key(age),
        }
        v
    }

    /// How long an alert has been open, in event time (the watermark, or
    /// its latest state when the watermark is behind).
    pub fn age_secs(&self, a: &OpenAlert) -> i64 {
        let now_us = ((self.now.watermark_secs * MICROS as f64) as i64).max(a.last_us);
        (now_us - a.raised_us).max(0) / MICROS
    }

    /// The RCODE mix: (name, share of responses in %) for every RCODE seen,
    /// of the latest tick when it had responses, else since the start.
    pub fn rcode_mix(&self) -> Vec<(&'static str, f64)> {
        let recent: u64 = self.rcodes_recent.iter().sum();
        let counts = if recent > 0 {
            self.rcodes_recent
        } else {
            self.now.rcodes
        };
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Vec::new();
        }
        RCODES
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (*name, n as f64 * 100.0 / total as f64))
            .collect()
    }

    /// A key press. `q` and Ctrl-C quit; `p` or space pauses; `s` sorts the
    /// top tables by count or name; `a` sorts alerts by severity or age.
    pub fn key(&mut self, c: char, ctrl: bool) -> Action {
        match (c, ctrl) {
            ('c', true) | ('q', false) | ('Q', false) => {
                if self.phase == Phase::Running {
                    self.phase = Phase::Stopping;
                }
                Action::Quit
            }
            ('p' | ' ', false) => {
                self.paused = !self.paused;
                Action::Redraw
            }
            ('s', false) => {
                self.top_sort = match self.top_sort {
                    TopSort::Count => TopSort::Name,
                    TopSort::Name => TopSort::Count,
                };
                Action::Redraw
            }
            ('a', false) => {
                self.alert_sort = match self.alert_sort {
                    AlertSort::Severity => AlertSort::Age,
                    AlertSort::Age => AlertSort::Severity,
                };
                Action::Redraw
            }
            _ => Action::None,
        }
    }
}

/// `client=127.0.0.66 domain=x.example`, escaped.
fn key_text(a: &Alert) -> String {
    match a.key.to_json() {
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                format!("{}={}", for_terminal(k), for_terminal(&v))
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => for_terminal(&other.to_string()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::{Key, Kind};

    fn alert(kind: Kind, sev: Severity, state: State, key: Key, t: i64) -> Alert {
        Alert {
            kind,
            severity: sev,
            state,
            key,
            event_time_us: t * MICROS,
            window_start_us: (t - 10) * MICROS,
            observed: 316.2,
            threshold: 300.0,
            unit: "queries/s".into(),
            evidence: Default::default(),
        }
    }

    #[test]
    fn rates_come_from_counter_differences() {
        let mut v = View::default();
        let s = |packets, queries| Sample {
            packets,
            queries,
            ..Sample::default()
        };
        v.tick(s(100, 40), 1.0);
        v.tick(s(1100, 540), 1.0);
        v.tick(s(2100, 540), 2.0);
        assert_eq!(v.pps, [100, 1000, 500]);
        assert_eq!(v.qps, [40, 500, 0]);
        assert_eq!(v.rates(), (500, 0));
        for i in 0..2 * HISTORY_SECS as u64 {
            v.tick(s(2100 + i, 540), 1.0);
        }
        assert_eq!(v.pps.len(), HISTORY_SECS);
    }

    #[test]
    fn rcode_mix_is_recent_when_there_is_traffic() {
        let mut v = View::default();
        let mut s = Sample::default();
        s.rcodes[0] = 90;
        s.rcodes[3] = 10;
        v.tick(s, 1.0);
        assert_eq!(v.rcode_mix(), [("noerror", 90.0), ("nxdomain", 10.0)]);
        s.rcodes[3] = 110;
        v.tick(s, 1.0);
        assert_eq!(v.rcode_mix(), [("nxdomain", 100.0)]);
        // A quiet second: the mix since the start.
        v.tick(s, 1.0);
        let mix = v.rcode_mix();
        assert_eq!(mix[0].0, "noerror");
        assert!((mix[0].1 - 45.0).abs() < 1e-9);
    }

    #[test]
    fn open_alerts_follow_the_stream_and_sort_by_severity_then_age() {
        let mut v = View::default();
        let c = |n: u8| Key::Client(std::net::IpAddr::from([127, 0, 0, n]));
        v.alert(&alert(
            Kind::ClientFlood,
            Severity::Warning,
            State::Raised,
            c(1),
            10,
        ));
        v.alert(&alert(
            Kind::ClientFlood,
            Severity::Warning,
            State::Raised,
            c(2),
            20,
        ));
        v.alert(&alert(
            Kind::ClientFlood,
            Severity::Critical,
            State::Updated,
            c(2),
            25,
        ));
        v.alert(&alert(
            Kind::ClientFlood,
            Severity::Warning,
            State::Raised,
            c(3),
            5,
        ));
        let keys =
            |v: &View| -> Vec<String> { v.open_alerts().iter().map(|a| a.key.clone()).collect() };
        assert_eq!(
            keys(&v),
            ["client=127.0.0.2", "client=127.0.0.3", "client=127.0.0.1"]
        );
        // Age is event time since raised, not since the latest update.
        v.tick(
            Sample {
                watermark_secs: 30.0,
                ..Sample::default()
            },
            1.0,
        );
        let two = v.open_alerts()[0];
        assert_eq!(v.age_secs(two), 10);
        assert_eq!(v.key('a', false), Action::Redraw);
        assert_eq!(
            keys(&v),
            ["client=127.0.0.3", "client=127.0.0.1", "client=127.0.0.2"]
        );
        v.alert(&alert(
            Kind::ClientFlood,
            Severity::Warning,
            State::Resolved,
            c(3),
            40,
        ));
        assert_eq!(keys(&v), ["client=127.0.0.1", "client=127.0.0.2"]);
        assert_eq!(v.alert_states, 5);
    }

    /// A top-k report of the interval ending at `end` (seconds).
    pub(crate) fn top_report(table: Table, end: i64, total: u64, items: &[(&str, u64)]) -> Report {
        Report {
            table,
            end_us: end * MICROS,
            interval_us: 10 * MICROS,
            total,
            items: Items::Top(items.iter().map(|&(s, n)| (s.into(), n)).collect()),
        }
    }

    #[test]
    fn reports_fill_the_tables_escaped() {
        let mut v = View::default();
        v.report(&top_report(
            Table::Qnames,
            1_795_629_670,
            12,
            &[("b.example", 5), ("\u{1b}[2Jevil\u{202e}.example", 7)],
        ));
        v.report(&Report {
            items: Items::Newly(vec![]),
            ..top_report(Table::NewlyObserved, 1_795_629_670, 1, &[])
        });
        assert_eq!(v.tops[0].end, "2026-11-25T18:01:10Z");
        let top = v.top(Table::Qnames);
        assert_eq!(top[0], ("\\u{1b}[2Jevil\\u{202e}.example", 7));
        assert_eq!(top[1], ("b.example", 5));
        assert_eq!(v.tops[0].total, 12);
        assert!(v.top(Table::Clients).is_empty());
        v.key('s', false);
        assert_eq!(v.top(Table::Qnames)[0].0, "\\u{1b}[2Jevil\\u{202e}.example");
        assert_eq!(v.top(Table::Qnames)[1].0, "b.example");
    }

    #[test]
    fn keys_quit_pause_and_sort() {
        let mut v = View::default();
        assert_eq!(v.key('p', false), Action::Redraw);
        assert!(v.paused);
        assert_eq!(v.key(' ', false), Action::Redraw);
        assert!(!v.paused);
        assert_eq!(v.key('x', false), Action::None);
        assert_eq!(v.key('c', false), Action::None);
        assert_eq!(v.key('c', true), Action::Quit);
        assert_eq!(v.phase, Phase::Stopping);
        let mut v = View::default();
        assert_eq!(v.key('q', false), Action::Quit);
    }
}
