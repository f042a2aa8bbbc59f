//! Frequent access patterns: top-k query names, registered domains and
//! clients per reporting interval, from bounded heavy-hitter sketches
//! (`TopK`, Misra–Gries). Each worker keeps one set of tables per open
//! interval; when the watermark passes an interval its tables are sent to
//! worker 0, merged, and written as `dnsmonitor.report/1` lines. Pure: the
//! dataflow decides when; this module says what.

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

/// Merge the parts of one interval and render its report lines (one per
/// table, in `Table` order), `top` items each, biggest first.
pub fn render(interval: u64, interval_us: i64, parts: &[ReportPart], top: usize) -> Vec<String> {
    let mut lines = Vec::new();
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
        let (name, field) = t.names();
        let end_us = (interval as i64 + 1) * interval_us;
        let items: Vec<serde_json::Value> = merged
            .top(top)
            .into_iter()
            .map(|(s, n)| {
                let mut o = serde_json::Map::new();
                o.insert(field.into(), s.into());
                o.insert("count".into(), n.into());
                serde_json::Value::Object(o)
            })
            .collect();
        let v = serde_json::json!({
            "schema": SCHEMA,
            "report": name,
            "event_time": rfc3339(end_us),
            "window": { "start": rfc3339(end_us - interval_us), "end": rfc3339(end_us) },
            "total": total,
            "top": items,
        });
        lines.push(v.to_string());
    }
    if let Some(line) = render_newly(interval, interval_us, parts) {
        lines.push(line);
    }
    lines
}

/// The `newly_observed` line of an interval: every pair the workers kept,
/// by (event time, client, domain), a pair listed once (its first time).
fn render_newly(interval: u64, interval_us: i64, parts: &[ReportPart]) -> Option<String> {
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
    let end_us = (interval as i64 + 1) * interval_us;
    let items: Vec<serde_json::Value> = items
        .into_iter()
        .map(|(ts, s)| {
            let (client, domain) = s.split_once(' ').unwrap_or((s, ""));
            serde_json::json!({
                "client": client,
                "domain": domain,
                "first_seen": rfc3339(ts as i64),
            })
        })
        .collect();
    let v = serde_json::json!({
        "schema": SCHEMA,
        "report": "newly_observed",
        "event_time": rfc3339(end_us),
        "window": { "start": rfc3339(end_us - interval_us), "end": rfc3339(end_us) },
        "total": total,
        "listed": items.len(),
        "items": items,
    });
    Some(v.to_string())
}
