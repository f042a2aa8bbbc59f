//! Ingest: one worker's map side, without timely. Turns captured frames into
//! DNS messages (packet layer + decode), lets every detector observe them
//! into the per-pane `MapTables`, renders event-log lines when asked, and
//! counts what it saw. The dataflow source owns one `Ingest` per worker and
//! decides when tallies leave (watermark) — see `dataflow`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::map_side::MapTables;
use crate::config::Plan;
use crate::detect::Observed;
use crate::dns::{self, DecodeError};
use crate::dnstap::{self, DnstapCounters, DnstapError};
use crate::packet::{PacketDecoder, PacketStats, Payload};
use crate::sketch::topk::TopK;
use crate::time::{JUMP_CONFIRM, TIME_JUMP_US};
use crate::window::Pane;

/// Counters kept by the top-names sketch per worker.
pub const TOP_NAMES_CAPACITY: usize = 4096;

pub use crate::dns::event::EventLine;

/// What one worker's ingest counted.
#[derive(Clone, Debug)]
pub struct IngestCounters {
    /// Frames read (by this worker; for shared file input every worker reads all).
    pub frames: u64,
    pub bytes: u64,
    pub dns_messages: u64,
    pub queries: u64,
    pub responses: u64,
    /// Responses by RCODE (`metrics::rcode_slot`).
    pub rcodes: [u64; crate::metrics::RCODES.len()],
    pub decode_errors: BTreeMap<DecodeError, u64>,
    pub late: u64,
    /// Top query names, clients and registered domains (summary).
    pub top: TopK,
    pub top_clients: TopK,
    pub top_domains: TopK,
    pub first_ts_us: Option<i64>,
    /// Newest capture timestamp believed (`i64::MIN` before the first
    /// frame); see `TIME_JUMP_US`.
    pub max_ts_us: i64,
    /// Frames in a row far ahead of `max_ts_us` (count, earliest, latest).
    jump: Option<(u32, i64, i64)>,
    /// Forward time jumps accepted.
    pub time_jumps: u64,
    /// dnstap messages by type and errors by reason (see `process_dnstap`).
    pub dnstap: crate::dnstap::DnstapCounters,
}

impl IngestCounters {
    /// The newest frame time handed on so far, believed or not (a forward
    /// jump not yet confirmed counts): no message processed lies later.
    pub fn newest_seen_us(&self) -> i64 {
        self.jump
            .map_or(self.max_ts_us, |(_, _, hi)| hi.max(self.max_ts_us))
    }
}

impl Default for IngestCounters {
    fn default() -> Self {
        IngestCounters {
            frames: 0,
            bytes: 0,
            dns_messages: 0,
            queries: 0,
            responses: 0,
            rcodes: [0; crate::metrics::RCODES.len()],
            decode_errors: BTreeMap::new(),
            late: 0,
            top: TopK::new(TOP_NAMES_CAPACITY),
            top_clients: TopK::new(TOP_NAMES_CAPACITY),
            top_domains: TopK::new(TOP_NAMES_CAPACITY),
            first_ts_us: None,
            max_ts_us: i64::MIN,
            jump: None,
            time_jumps: 0,
            dnstap: Default::default(),
        }
    }
}

pub struct Ingest {
    plan: Arc<Plan>,
    decoder: PacketDecoder,
    pub tables: MapTables,
    pub counters: IngestCounters,
    events: bool,
    pub event_buf: Vec<EventLine>,
    line: Vec<u8>,
    /// Query/response matching, when a detector needs it.
    tracker: Option<QueryTracker>,
    /// Top-k tables per reporting interval (`--reports`).
    pub reports: Option<crate::reports::ReportTables>,
    /// The event log's `source` of the frames now processed, when it is
    /// not `pcap`/`dnstap` (a sensor's id; see `set_source`).
    source: Option<Box<str>>,
    /// Later pipeline versions: messages in a pane `>= from` are observed
    /// by that version's detectors (`dataflow::reload`), in order.
    later: Vec<(Pane, Arc<Plan>)>,
}

impl Ingest {
    pub fn new(plan: Arc<Plan>, events: bool) -> Self {
        let track = plan
            .detectors
            .iter()
            .any(|d| d.kind() == crate::detect::Kind::UnsolicitedResponse);
        let mut ingest = Ingest {
            decoder: PacketDecoder::new(plan.packet.clone()),
            plan,
            tables: MapTables::default(),
            counters: IngestCounters::default(),
            events,
            event_buf: Vec::new(),
            line: Vec::with_capacity(1024),
            tracker: None,
            reports: None,
            source: None,
            later: Vec::new(),
        };
        if track {
            ingest.tracker = Some(QueryTracker::default());
        }
        ingest
    }

    /// Messages in panes `from` and later are observed by `plan`'s
    /// detectors (a reload; `from` not below an earlier switch).
    pub fn switch_at(&mut self, from: Pane, plan: Arc<Plan>) {
        self.later.push((from, plan));
    }

    /// Pipeline versions switched to so far (the starting one not counted).
    pub fn switches(&self) -> usize {
        self.later.len()
    }

    /// Also build the top-k report tables.
    pub fn with_reports(mut self) -> Self {
        self.reports = Some(Default::default());
        self
    }

    /// Account a frame read from the input (whether or not this worker decodes it).
    pub fn saw_frame(&mut self, ts_us: i64, len: usize) {
        let c = &mut self.counters;
        c.frames += 1;
        c.bytes += len as u64;
        c.first_ts_us.get_or_insert(ts_us);
        // The first frames are a jump from nothing: believed once
        // `JUMP_CONFIRM` of them agree, so a bogus first timestamp cannot
        // set event time either (see `settle_time` for shorter inputs).
        if c.max_ts_us != i64::MIN && ts_us <= c.max_ts_us.saturating_add(TIME_JUMP_US) {
            c.max_ts_us = c.max_ts_us.max(ts_us);
            c.jump = None;
            return;
        }
        // A jump far ahead: believe it only once `JUMP_CONFIRM` frames in a
        // row agree, so one frame with a bogus timestamp cannot make every
        // later frame late (and blind the detectors).
        let (n, lo, hi) = c.jump.map_or((0, ts_us, ts_us), |(n, lo, hi)| {
            (n, lo.min(ts_us), hi.max(ts_us))
        });
        if n + 1 >= JUMP_CONFIRM {
            if c.max_ts_us != i64::MIN {
                c.time_jumps += 1;
            }
            c.max_ts_us = lo;
            c.jump = None;
        } else {
            c.jump = Some((n + 1, lo, hi));
        }
    }

    /// End of input: a time still waiting for agreeing frames (an input of
    /// fewer than `JUMP_CONFIRM` frames) is believed now.
    pub fn settle_time(&mut self) {
        let c = &mut self.counters;
        if let Some((_, _, hi)) = c.jump.take()
            && c.max_ts_us == i64::MIN
        {
            c.max_ts_us = hi;
        }
    }

    pub fn packet_stats(&self) -> &PacketStats {
        self.decoder.stats()
    }

    /// Decode one frame and let the detectors observe its messages. Messages
    /// in panes below `min_pane` are late: logged, counted, not observed.
    pub fn process(
        &mut self,
        file: u32,
        frame: u64,
        linktype: i32,
        ts_us: i64,
        data: &[u8],
        min_pane: Pane,
    ) {
        if linktype == crate::dnstap::LINKTYPE_DNSTAP {
            return process_dnstap(self, file, frame, data, min_pane);
        }
        let (decoder, mut to) = self.split("pcap");
        decoder.decode(linktype, ts_us, data, |payload| {
            to.payload(file, frame, payload, min_pane)
        });
    }

    /// Entry point for a DNS message that arrives without a packet around
    /// it (dnstap): its bytes, addresses, ports, transport and time, treated
    /// exactly like a payload the packet decoder produced.
    pub fn process_payload(
        &mut self,
        file: u32,
        frame: u64,
        payload: &Payload<'_>,
        min_pane: Pane,
    ) {
        self.split("dnstap")
            .1
            .payload(file, frame, payload, min_pane);
    }

    /// Who sent the frames processed from now on (`RawPacket::source`):
    /// `None` for this process's own input (`pcap` or `dnstap` in the
    /// event log). Copied only when it changes.
    pub fn set_source(&mut self, source: Option<&str>) {
        if self.source.as_deref() != source {
            self.source = source.map(Into::into);
        }
    }

    /// The packet decoder, and everything a decoded payload updates.
    fn split(&mut self, input: &'static str) -> (&mut PacketDecoder, PayloadTo<'_>) {
        let Ingest {
            plan,
            decoder,
            tables,
            counters,
            events,
            event_buf,
            line,
            tracker,
            reports,
            source,
            later,
        } = self;
        let to = PayloadTo {
            source: source.as_deref().unwrap_or(input),
            plan,
            later,
            tables,
            counters,
            events: *events,
            event_buf,
            line,
            tracker,
            reports,
        };
        (decoder, to)
    }
}

/// The parts of `Ingest` one DNS payload updates (all but the decoder).
struct PayloadTo<'a> {
    /// The event log's `source` field.
    source: &'a str,
    plan: &'a Plan,
    later: &'a [(Pane, Arc<Plan>)],
    tables: &'a mut MapTables,
    counters: &'a mut IngestCounters,
    events: bool,
    event_buf: &'a mut Vec<EventLine>,
    line: &'a mut Vec<u8>,
    tracker: &'a mut Option<QueryTracker>,
    reports: &'a mut Option<crate::reports::ReportTables>,
}

impl PayloadTo<'_> {
    /// Decode one DNS payload and let the detectors observe it. Messages in
    /// panes below `min_pane` are late: logged, counted, not observed.
    fn payload(&mut self, file: u32, frame: u64, payload: &Payload<'_>, min_pane: Pane) {
        let PayloadTo {
            source,
            plan,
            later,
            tables,
            counters,
            events,
            event_buf,
            line,
            tracker,
            reports,
        } = self;
        let spec = plan.window;
        {
            // Borrowed where decoded, not moved out (a message is ~430 bytes).
            let decoded = dns::decode(payload.data);
            let msg = match &decoded {
                Ok(m) => m,
                Err(e) => {
                    let e = *e;
                    *counters.decode_errors.entry(e).or_default() += 1;
                    return;
                }
            };
            counters.dns_messages += 1;
            if let Some(e) = msg.record_error {
                // Kept (header and question are fine), but counted.
                *counters.decode_errors.entry(e).or_default() += 1;
            }
            if msg.qr {
                counters.responses += 1;
                counters.rcodes[crate::metrics::rcode_slot(msg.rcode)] += 1;
            } else {
                counters.queries += 1;
                if let Some(q) = &msg.question {
                    offer_name(&mut counters.top, &q.qname);
                }
            }
            if *events {
                line.clear();
                dns::event::write_event(line, frame, payload, msg);
                // Additive field, last: pcap, dnstap or the sensor's id
                // (in place of the closing "}\n").
                line.truncate(line.len().saturating_sub(2));
                line.extend_from_slice(b",\"source\":");
                dns::event::write_json_str(line, source);
                line.extend_from_slice(b"}\n");
                event_buf.push(EventLine {
                    file,
                    frame,
                    line: line.clone(),
                });
            }
            let pane = spec.pane_of(payload.ts_us);
            if pane < min_pane {
                counters.late += 1;
                return;
            }
            let unsolicited = tracker.as_mut().and_then(|t| t.observe(payload, msg));
            let obs = Observed::new(payload, msg, unsolicited);
            // A query's registered domain, hashed once for both top-k tables.
            let domain = if msg.qr { None } else { domain_hash(&obs) };
            if !msg.qr {
                offer_client(&mut counters.top_clients, payload.src);
            }
            if let (Some(r), false, Some(q)) = (reports.as_mut(), msg.qr, msg.question.as_ref()) {
                let interval = payload.ts_us.max(0) as u64 / plan.report_interval_us as u64;
                let [names, domains, clients] = r.tables(interval);
                offer_name(names, &q.qname);
                offer_domain(domains, &obs, domain);
                offer_client(clients, payload.src);
            }
            // The version in force at this message's pane.
            let detectors = match later.iter().rev().find(|(from, _)| pane >= *from) {
                Some((_, p)) => &p.detectors,
                None => &plan.detectors,
            };
            let mut pane_tables = tables.pane(pane);
            for (i, d) in detectors.iter().enumerate() {
                d.observe(&obs, &mut pane_tables.sink(i as u16));
            }
            if obs.newly_observed.get()
                && let (Some(r), Some(domain)) = (reports.as_mut(), obs.registered_domain_str())
            {
                let interval = payload.ts_us.max(0) as u64 / plan.report_interval_us as u64;
                r.newly(interval).offer(payload.ts_us, payload.dst, domain);
            }
            offer_domain(&mut counters.top_domains, &obs, domain);
        }
    }
}

/// Count a query name (lower-cased; the string is built only for a new counter).
fn offer_name(t: &mut TopK, qname: &crate::dns::QName) {
    t.offer(qname.hash(), 1, || {
        qname.to_lowercase_string().into_boxed_str()
    });
}

/// The hash a top-k table counts a query's registered domain under, when
/// it has one.
fn domain_hash(obs: &Observed<'_, '_>) -> Option<u64> {
    let (n, q) = (obs.registered_labels()?, obs.msg.question.as_ref()?);
    Some(q.qname.suffix_hashes().nth(n - 1).map_or(0, |(_, h)| h))
}

/// Count the query's registered domain (`hash` from `domain_hash`), when it
/// has one.
fn offer_domain(t: &mut TopK, obs: &Observed<'_, '_>, hash: Option<u64>) {
    if let Some(h) = hash {
        t.offer(h, 1, || obs.registered_domain().unwrap_or_default());
    }
}

/// Count a client address.
fn offer_client(t: &mut TopK, ip: std::net::IpAddr) {
    t.offer_ip(crate::sketch::stable_hash(&ip), 1, ip);
}

/// The values last added to the metrics, so each publish adds only the
/// difference (counters are bumped per batch, never per packet).
#[derive(Clone, Debug, Default)]
pub struct Published {
    frames: u64,
    bytes: u64,
    queries: u64,
    responses: u64,
    rcodes: [u64; crate::metrics::RCODES.len()],
    late: u64,
    decode_errors: BTreeMap<DecodeError, u64>,
    packet: PacketStats,
    top_evictions: u64,
    tracker_evictions: u64,
    time_jumps: u64,
    dnstap: crate::dnstap::DnstapCounters,
}

impl Ingest {
    /// Add what was counted since the last call to `m`. `count_frames` is
    /// false on workers that read shared input only to skip it (worker 0
    /// counts the frames of shared input once).
    pub fn publish(&self, last: &mut Published, m: &crate::metrics::Metrics, count_frames: bool) {
        let c = &self.counters;
        if count_frames {
            m.packets.inc_by(c.frames - last.frames);
            m.bytes.inc_by(c.bytes - last.bytes);
            last.frames = c.frames;
            last.bytes = c.bytes;
        }
        m.dns_messages
            .with_label_values(&["query"])
            .inc_by(c.queries - last.queries);
        m.dns_messages
            .with_label_values(&["response"])
            .inc_by(c.responses - last.responses);
        for (i, rcode) in crate::metrics::RCODES.iter().enumerate() {
            if c.rcodes[i] > last.rcodes[i] {
                m.dns_responses
                    .with_label_values(&[rcode])
                    .inc_by(c.rcodes[i] - last.rcodes[i]);
            }
        }
        m.late_messages.inc_by(c.late - last.late);
        for (e, n) in &c.decode_errors {
            let before = last.decode_errors.get(e).copied().unwrap_or(0);
            if *n > before {
                m.parse_errors
                    .with_label_values(&["dns", e.as_str()])
                    .inc_by(n - before);
            }
        }
        let p = self.packet_stats();
        for e in crate::packet::PacketError::ALL {
            let (now, before) = (p.errors[e as usize], last.packet.errors[e as usize]);
            if now > before {
                m.parse_errors
                    .with_label_values(&["packet", e.as_str()])
                    .inc_by(now - before);
            }
        }
        m.state_evictions
            .with_label_values(&["fragments"])
            .inc_by(p.fragment_evictions - last.packet.fragment_evictions);
        m.state_evictions
            .with_label_values(&["tcp_flows"])
            .inc_by(p.tcp_flow_evictions - last.packet.tcp_flow_evictions);
        m.state_evictions
            .with_label_values(&["tcp_bytes"])
            .inc_by(p.tcp_budget_evictions - last.packet.tcp_budget_evictions);
        m.state_evictions
            .with_label_values(&["top_names"])
            .inc_by(c.top.evictions - last.top_evictions);
        let tracker = self.tracker.as_ref().map_or(0, |t| t.evictions);
        m.state_evictions
            .with_label_values(&["pending_queries"])
            .inc_by(tracker - last.tracker_evictions);
        m.time_jumps.inc_by(c.time_jumps - last.time_jumps);
        last.tracker_evictions = tracker;
        last.time_jumps = c.time_jumps;
        last.queries = c.queries;
        last.responses = c.responses;
        last.rcodes = c.rcodes;
        last.late = c.late;
        last.decode_errors = c.decode_errors.clone();
        last.packet = p.clone();
        last.top_evictions = c.top.evictions;
        publish_dnstap(&c.dnstap, &mut last.dnstap, m);
    }
}

/// Add what `c` counted since `last` to the metrics (per batch, never per
/// message), then remember it.
fn publish_dnstap(c: &DnstapCounters, last: &mut DnstapCounters, m: &crate::metrics::Metrics) {
    m.dnstap_frames.inc_by(c.frames - last.frames);
    m.dnstap_bytes.inc_by(c.bytes - last.bytes);
    m.dnstap_connections
        .inc_by(c.connections - last.connections);
    for t in crate::dnstap::MessageType::ALL {
        let i = t as usize;
        if c.messages[i] > last.messages[i] {
            m.dnstap_messages
                .with_label_values(&[t.as_str()])
                .inc_by(c.messages[i] - last.messages[i]);
        }
    }
    for e in DnstapError::ALL {
        let i = e as usize;
        if c.errors[i] > last.errors[i] {
            m.dnstap_errors
                .with_label_values(&[e.as_str()])
                .inc_by(c.errors[i] - last.errors[i]);
        }
    }
    *last = c.clone();
}

/// Log lines about malformed messages, at most this many per run and
/// worker (the counters keep counting).
pub const MAX_DNSTAP_WARNINGS: u64 = 20;

/// One dnstap frame (`data`: the protobuf payload) meets the ingest: see
/// `dnstap`'s module doc. `frame` numbers it for the event log.
fn process_dnstap(ingest: &mut Ingest, file: u32, frame: u64, data: &[u8], min_pane: Pane) {
    let c = &mut ingest.counters.dnstap;
    c.frames += 1;
    c.bytes += data.len() as u64;
    let warn = |c: &mut DnstapCounters, e: DnstapError| {
        c.error(e);
        let n: u64 = c.errors.iter().sum();
        if n <= MAX_DNSTAP_WARNINGS {
            tracing::warn!(
                reason = e.as_str(),
                "dnstap frame {frame} (input {file}) skipped: {e}{}",
                if n == MAX_DNSTAP_WARNINGS {
                    " (no more of these are logged; see the dnstap error counters)"
                } else {
                    ""
                }
            );
        }
    };
    let d = match dnstap::message::decode(data) {
        Ok(d) => d,
        Err(e) => return warn(c, e),
    };
    let (m, t) = match dnstap::message::inner(&d) {
        Ok(x) => x,
        Err(e) => return warn(c, e),
    };
    c.message(t);
    if t.is_upstream() {
        if t.is_response()
            && let Some(r) = m.response_message.as_deref()
            && r.get(3).is_some_and(|b| b & 0x0f == 2)
        {
            c.upstream_servfail += 1;
        }
        return;
    }
    if !t.is_client_side() {
        return;
    }
    let mapped = match dnstap::message::to_payload(m, t) {
        Ok(p) => p,
        Err(e) => return warn(c, e),
    };
    if mapped.no_server_address {
        c.no_server_address += 1;
    }
    if crate::dns::decode(mapped.payload.data).is_err() {
        // Counted by the ingest under its DNS decode reason as well.
        warn(c, DnstapError::BadDns);
    }
    ingest.process_payload(file, frame, &mapped.payload, min_pane);
}

/// Queries waiting for their response, per worker. Both directions of an
/// address pair are decoded on the same worker (`shard_key`), so whether a
/// response matches depends only on its own pair: the same on any number of
/// workers (except when the table is full and evicts, which is counted).
pub const MAX_PENDING_QUERIES: usize = 1 << 16;
/// A response later than this after its query counts as unmatched.
pub const QUERY_TIMEOUT_US: i64 = 10 * crate::time::MICROS;

type TxKey = (std::net::IpAddr, u16, std::net::IpAddr, u16, u16);

/// Pending queries by transaction, and the same in arrival order for
/// expiry. A transaction is held as its 64-bit hash, keyed per process
/// (`foldhash::quality`: two transactions are taken for one with odds of
/// about 2^-64 per pair), beside its time: 16 bytes where the key and time
/// took 48, and 16 in `order` where it took 56. Under a spoofed flood
/// every query is a new transaction and most expire unanswered, so the
/// table stays full; at that size it probes within the cache. Each insert,
/// match or expiry is one probe.
#[derive(Default)]
pub struct QueryTracker {
    pending: hashbrown::HashTable<(u64, i64)>,
    /// `(hash, time)` of every query recorded, oldest first; an entry
    /// whose transaction was answered or asked again since is skipped at
    /// expiry.
    order: std::collections::VecDeque<(u64, i64)>,
    hasher: foldhash::quality::RandomState,
    pub evictions: u64,
}

impl QueryTracker {
    /// Record a query, or match a response: `Some(true)` for a response with
    /// no pending query (client, client port, server, server port, id),
    /// `Some(false)` when matched, `None` for queries.
    pub fn observe(
        &mut self,
        p: &crate::packet::Payload<'_>,
        m: &crate::dns::DnsMessage<'_>,
    ) -> Option<bool> {
        use std::hash::BuildHasher;
        let now = p.ts_us;
        while let Some(&(h, ts)) = self.order.front() {
            if now - ts <= QUERY_TIMEOUT_US && self.order.len() <= MAX_PENDING_QUERIES {
                break;
            }
            self.order.pop_front();
            if let Ok(e) = self.pending.find_entry(h, |e| *e == (h, ts)) {
                e.remove();
                if now - ts <= QUERY_TIMEOUT_US {
                    self.evictions += 1;
                }
            }
        }
        // The transaction as its query saw it: (client, port, server, port, id).
        let k: TxKey = if m.qr {
            (p.dst, p.dport, p.src, p.sport, m.id)
        } else {
            (p.src, p.sport, p.dst, p.dport, m.id)
        };
        let h = self.hasher.hash_one(k);
        if !m.qr {
            match self.pending.entry(h, |e| e.0 == h, |e| e.0) {
                hashbrown::hash_table::Entry::Occupied(mut o) => o.get_mut().1 = now,
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert((h, now));
                }
            }
            self.order.push_back((h, now));
            None
        } else {
            match self.pending.find_entry(h, |e| e.0 == h) {
                Ok(e) => {
                    e.remove();
                    Some(false)
                }
                Err(_) => Some(true),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::packet::Transport;

    /// A DNS message for `a.example` A with `id`, a response when `qr`.
    fn message(id: u16, qr: bool) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[if qr { 0x81 } else { 0x01 }, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
        m
    }

    /// `(src, sport) -> (dst, dport)` at `ts_us`, message `id`.
    fn observe(
        t: &mut QueryTracker,
        ts_us: i64,
        (src, sport): (&str, u16),
        (dst, dport): (&str, u16),
        id: u16,
        qr: bool,
    ) -> Option<bool> {
        let data = message(id, qr);
        let p = Payload {
            ts_us,
            src: src.parse::<IpAddr>().unwrap(),
            dst: dst.parse::<IpAddr>().unwrap(),
            sport,
            dport,
            transport: Transport::Udp,
            data: &data,
        };
        let m = dns::decode(&data).unwrap();
        t.observe(&p, &m)
    }

    #[test]
    fn a_response_matches_only_its_own_transaction_once_and_in_time() {
        let mut t = QueryTracker::default();
        let (c, s) = (("10.0.0.1", 5353), ("192.0.2.53", 53));
        assert_eq!(observe(&mut t, 0, c, s, 7, false), None);
        // Another id, another client port, another client, another server:
        // not the query's answer.
        assert_eq!(observe(&mut t, 1, s, c, 8, true), Some(true));
        assert_eq!(
            observe(&mut t, 1, s, ("10.0.0.1", 5354), 7, true),
            Some(true)
        );
        assert_eq!(
            observe(&mut t, 1, s, ("10.0.0.2", 5353), 7, true),
            Some(true)
        );
        assert_eq!(
            observe(&mut t, 1, ("192.0.2.54", 53), c, 7, true),
            Some(true)
        );
        // Its answer matches once; a duplicate does not.
        assert_eq!(observe(&mut t, 2, s, c, 7, true), Some(false));
        assert_eq!(observe(&mut t, 3, s, c, 7, true), Some(true));
        // Over IPv6 too; and an answer later than the timeout is unmatched
        // (the query expired), one just in time is matched.
        let (c6, s6) = (("2001:db8::1", 40000), ("2001:db8::53", 53));
        observe(&mut t, 10, c6, s6, 9, false);
        observe(&mut t, 20, c, s, 11, false);
        assert_eq!(
            observe(&mut t, 10 + QUERY_TIMEOUT_US, s6, c6, 9, true),
            Some(false)
        );
        assert_eq!(
            observe(&mut t, 21 + QUERY_TIMEOUT_US, s, c, 11, true),
            Some(true)
        );
        assert_eq!(t.evictions, 0);
    }

    #[test]
    fn a_full_table_evicts_the_oldest_and_counts_it() {
        let mut t = QueryTracker::default();
        let s = ("192.0.2.53", 53);
        for i in 0..=MAX_PENDING_QUERIES as u32 {
            let port = 1024 + (i % 60_000) as u16;
            let id = (i / 60_000) as u16;
            observe(&mut t, 1, ("10.0.0.1", port), s, id, false);
        }
        // The next message expires the oldest query (one over the bound).
        assert_eq!(
            observe(&mut t, 2, s, ("10.0.0.1", 1024), 0, true),
            Some(true)
        );
        assert_eq!(t.evictions, 1);
        // The second oldest is still there.
        assert_eq!(
            observe(&mut t, 2, s, ("10.0.0.1", 1025), 0, true),
            Some(false)
        );
    }
}
