//! Frequent access patterns: top-k query names, registered domains and
//! clients per reporting interval, from bounded heavy-hitter sketches
//! (`TopK`, Misra–Gries). Each worker keeps one set of tables per open
//! interval; when the watermark passes an interval its tables are sent to
//! worker 0, merged, and written as `dnsmonitor.report/1` lines. Pure: the
//! dataflow decides when; this module says what.

pub mod spec;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sketch::topk::TopK;
use crate::time::rfc3339;

/// Schema name written in every report line.
pub const SCHEMA: &str = "dnsmonitor.report/1";
/// Counters per table per worker (memory bound; items with more than
/// N / (capacity + 1) occurrences are always kept).
pub const REPORT_CAPACITY: usize = 1024;

/// Last pane (of length `slide_us`) of reporting interval `interval`;
/// intervals are whole multiples of the slide (checked by the config).
pub fn last_pane(interval: u64, interval_us: i64, slide_us: i64) -> crate::window::Pane {
    (((interval as i64 + 1) * interval_us) / slide_us - 1) as crate::window::Pane
}

/// The first interval not yet complete when the watermark is at `pane`:
/// every interval below it ends at or before the pane's start.
pub fn first_open_interval(pane: crate::window::Pane, interval_us: i64, slide_us: i64) -> u64 {
    (pane as i64 * slide_us / interval_us) as u64
}

/// The report tables, in output order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Table {
    Qnames,
    Domains,
    Clients,
    /// (client, domain) pairs newly observed (`detect::newly_observed`):
    /// not a top-k table; written after the three, only when the detector
    /// found any.
    NewlyObserved,
}

impl Table {
    /// The top-k tables.
    pub const ALL: [Table; 3] = [Table::Qnames, Table::Domains, Table::Clients];

    /// Report name (`top_<what>`) and the field naming each item.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Table::Qnames => ("top_qnames", "qname"),
            Table::Domains => ("top_domains", "domain"),
            Table::Clients => ("top_clients", "client"),
            Table::NewlyObserved => ("newly_observed", "domain"),
        }
    }
}

/// One worker's tables for one interval, as sent to worker 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportPart {
    pub interval: u64,
    pub table: Table,
    pub total: u64,
    /// (item hash, count, item text)
    pub items: Vec<(u64, u64, Box<str>)>,
}

/// One worker's newly observed (client, domain) pairs of one interval:
/// the first `REPORT_CAPACITY`, and how many there were.
#[derive(Clone, Debug, Default)]
pub struct NewlyTable {
    pub total: u64,
    /// (stable hash of the text, event time in microseconds, "client domain")
    pub items: Vec<(u64, u64, Box<str>)>,
}

impl NewlyTable {
    /// A newly observed `domain` (escaped presentation form, so without
    /// spaces) looked up by `client` at `ts_us`.
    pub fn offer(&mut self, ts_us: i64, client: std::net::IpAddr, domain: &str) {
        self.total += 1;
        if self.items.len() < REPORT_CAPACITY {
            let text: Box<str> = format!("{client} {domain}").into();
            let h = crate::sketch::stable_hash(&*text);
            self.items.push((h, ts_us.max(0) as u64, text));
        }
    }
}

/// Open intervals of one worker.
#[derive(Default)]
pub struct ReportTables {
    open: BTreeMap<u64, ([TopK; 3], NewlyTable)>,
}

impl ReportTables {
    fn open(&mut self, interval: u64) -> &mut ([TopK; 3], NewlyTable) {
        self.open.entry(interval).or_insert_with(|| {
            (
                std::array::from_fn(|_| TopK::new(REPORT_CAPACITY)),
                NewlyTable::default(),
            )
        })
    }

    pub fn tables(&mut self, interval: u64) -> &mut [TopK; 3] {
        &mut self.open(interval).0
    }

    /// The newly observed pairs of `interval`.
    pub fn newly(&mut self, interval: u64) -> &mut NewlyTable {
        &mut self.open(interval).1
    }

    /// Take the intervals before `below` (all when `None`).
    pub fn drain(&mut self, below: Option<u64>) -> Vec<ReportPart> {
        let keep = match below {
            Some(b) => self.open.split_off(&b),
            None => BTreeMap::new(),
        };
        let taken = std::mem::replace(&mut self.open, keep);
        let mut out = Vec::new();
        for (interval, (tables, newly)) in taken {
            for (t, topk) in Table::ALL.into_iter().zip(tables.iter()) {
                out.push(ReportPart {
                    interval,
                    table: t,
                    total: topk.total(),
                    items: topk.items(),
                });
            }
            if newly.total > 0 {
                out.push(ReportPart {
                    interval,
                    table: Table::NewlyObserved,
                    total: newly.total,
                    items: newly.items,
                });
            }
        }
        out
    }
}

/// One `dnsmonitor.report/1` record: a table of one interval, merged over
/// the workers (README, Reports). Rendered to JSON only by the sinks.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub table: Table,
    /// End of the interval (µs since the epoch: `event_time`).
    pub end_us: i64,
    /// Length of the interval (µs): it started this long before `end_us`.
    pub interval_us: i64,
    /// Queries counted in the interval (top tables), newly observed
    /// responses (`newly_observed`).
    pub total: u64,
    pub items: Items,
}

/// What a report lists.
#[derive(Clone, Debug, PartialEq)]
pub enum Items {
    /// A top-k table: (item, count), biggest first.
    Top(Vec<(Box<str>, u64)>),
    /// Newly observed pairs, each once, in time order.
    Newly(Vec<NewlyItem>),
}

/// A (client, domain) pair newly observed, at the response that made it new.
#[derive(Clone, Debug, PartialEq)]
pub struct NewlyItem {
    pub client: Box<str>,
    pub domain: Box<str>,
    pub first_seen_us: i64,
}

impl Report {
    /// The report's name (`top_qnames`, ..., `newly_observed`).
    pub fn name(&self) -> &'static str {
        self.table.names().0
    }

    /// The report as a `dnsmonitor.report/1` object, fields in schema order.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("schema".into(), SCHEMA.into());
        m.insert("report".into(), self.name().into());
        m.insert("event_time".into(), rfc3339(self.end_us).into());
        m.insert(
            "window".into(),
            serde_json::json!({
                "start": rfc3339(self.end_us - self.interval_us),
                "end": rfc3339(self.end_us),
            }),
        );
        m.insert("total".into(), self.total.into());
        match &self.items {
            Items::Top(items) => {
                let field = self.table.names().1;
                let items: Vec<serde_json::Value> = items
                    .iter()
                    .map(|(s, n)| {
                        let mut o = serde_json::Map::new();
                        o.insert(field.into(), (**s).into());
                        o.insert("count".into(), (*n).into());
                        serde_json::Value::Object(o)
                    })
                    .collect();
                m.insert("top".into(), items.into());
            }
            Items::Newly(items) => {
                let items: Vec<serde_json::Value> = items
                    .iter()
                    .map(|i| {
                        serde_json::json!({
                            "client": i.client,
                            "domain": i.domain,
                            "first_seen": rfc3339(i.first_seen_us),
                        })
                    })
                    .collect();
                m.insert("listed".into(), items.len().into());
                m.insert("items".into(), items.into());
            }
        }
        serde_json::Value::Object(m)
    }

    /// The report as one JSON line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        self.to_json().to_string()
    }
}

/// Merge the parts of one interval into its reports (one per table, in
/// `Table` order), `top` items each, biggest first.
pub fn render(interval: u64, interval_us: i64, parts: &[ReportPart], top: usize) -> Vec<Report> {
    let end_us = (interval as i64 + 1) * interval_us;
    let mut reports = Vec::new();
    for t in Table::ALL {
        let mut merged = TopK::new(REPORT_CAPACITY);
        let mut total = 0;
        // Merge in a fixed order so the result does not depend on arrival order.
        let mut mine: Vec<&ReportPart> = parts.iter().filter(|p| p.table == t).collect();
        mine.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.items.cmp(&b.items)));
        for p in mine {
            total += p.total;
            for (h, n, s) in &p.items {
                merged.offer(*h, *n, || s.clone());
            }
        }
        if total == 0 {
            continue;
        }
        let items = merged
            .top(top)
            .into_iter()
            .map(|(s, n)| (s.into_owned().into_boxed_str(), n))
            .collect();
        reports.push(Report {
            table: t,
            end_us,
            interval_us,
            total,
            items: Items::Top(items),
        });
    }
    if let Some(r) = render_newly(end_us, interval_us, parts) {
        reports.push(r);
    }
    reports
}

/// The `newly_observed` report of an interval: every pair the workers
/// kept, by (event time, client, domain), a pair listed once (its first
/// time).
fn render_newly(end_us: i64, interval_us: i64, parts: &[ReportPart]) -> Option<Report> {
    let mine = parts.iter().filter(|p| p.table == Table::NewlyObserved);
    let total: u64 = mine.clone().map(|p| p.total).sum();
    if total == 0 {
        return None;
    }
    let mut items: Vec<(u64, &str)> = mine
        .flat_map(|p| p.items.iter().map(|(_, ts, s)| (*ts, &**s)))
        .collect();
    items.sort();
    let mut seen = std::collections::HashSet::new();
    items.retain(|(_, s)| seen.insert(*s));
    let items = items
        .into_iter()
        .map(|(ts, s)| {
            let (client, domain) = s.split_once(' ').unwrap_or((s, ""));
            NewlyItem {
                client: client.into(),
                domain: domain.into(),
                first_seen_us: ts as i64,
            }
        })
        .collect();
    Some(Report {
        table: Table::NewlyObserved,
        end_us,
        interval_us,
        total,
        items: Items::Newly(items),
    })
}
