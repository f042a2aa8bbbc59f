//! Ingest: one worker's map side, without timely. Turns captured frames into
//! DNS messages (packet layer + decode), lets every detector observe them
//! into the per-pane `MapTables`, renders event-log lines when asked, and
//! counts what it saw. The dataflow source owns one `Ingest` per worker and
//! decides when tallies leave (watermark) — see `dataflow`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Plan;
use crate::detect::Observed;
use crate::dns::{self, DecodeError};
use crate::packet::{PacketDecoder, PacketStats};
use crate::sketch::topk::TopK;
use crate::window::Pane;
use crate::window::map_side::MapTables;

/// Counters kept by the top-names sketch per worker.
pub const TOP_NAMES_CAPACITY: usize = 4096;

/// One event-log line on its way to the writer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventLine {
    pub file: u32,
    pub frame: u64,
    pub line: Vec<u8>,
}

/// What one worker's ingest counted.
#[derive(Clone, Debug)]
pub struct IngestCounters {
    /// Frames read (by this worker; for shared file input every worker reads all).
    pub frames: u64,
    pub bytes: u64,
    pub dns_messages: u64,
    pub queries: u64,
    pub responses: u64,
    pub decode_errors: BTreeMap<DecodeError, u64>,
    pub late: u64,
    pub top: TopK,
    pub first_ts_us: Option<i64>,
    /// Newest capture timestamp seen (`i64::MIN` before the first frame).
    pub max_ts_us: i64,
}

impl Default for IngestCounters {
    fn default() -> Self {
        IngestCounters {
            frames: 0,
            bytes: 0,
            dns_messages: 0,
            queries: 0,
            responses: 0,
            decode_errors: BTreeMap::new(),
            late: 0,
            top: TopK::new(TOP_NAMES_CAPACITY),
            first_ts_us: None,
            max_ts_us: i64::MIN,
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
}

impl Ingest {
    pub fn new(plan: Arc<Plan>, events: bool) -> Self {
        Ingest {
            decoder: PacketDecoder::new(plan.packet.clone()),
            plan,
            tables: MapTables::default(),
            counters: IngestCounters::default(),
            events,
            event_buf: Vec::new(),
            line: Vec::with_capacity(1024),
        }
    }

    /// Account a frame read from the input (whether or not this worker decodes it).
    pub fn saw_frame(&mut self, ts_us: i64, len: usize) {
        let c = &mut self.counters;
        c.frames += 1;
        c.bytes += len as u64;
        c.first_ts_us.get_or_insert(ts_us);
        c.max_ts_us = c.max_ts_us.max(ts_us);
    }

    pub fn packet_stats(&self) -> &PacketStats {
        self.decoder.stats()
    }

    /// Decode one frame and let the detectors observe its messages. Messages
    /// in panes below `min_pane` are late: logged, counted, not observed.
    pub fn process(&mut self, file: u32, frame: u64, linktype: i32, ts_us: i64, data: &[u8], min_pane: Pane) {
        let Ingest { plan, decoder, tables, counters, events, event_buf, line } = self;
        let spec = plan.window;
        decoder.decode(linktype, ts_us, data, |payload| {
            let msg = match dns::decode(payload.data) {
                Ok(m) => m,
                Err(e) => {
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
            } else {
                counters.queries += 1;
                if let Some(q) = &msg.question {
                    counters.top.offer(q.qname.hash(), 1, || q.qname.to_lowercase_string().into_boxed_str());
                }
            }
            if *events {
                line.clear();
                dns::event::write_event(line, frame, payload, &msg);
                event_buf.push(EventLine { file, frame, line: line.clone() });
            }
            let pane = spec.pane_of(payload.ts_us);
            if pane < min_pane {
                counters.late += 1;
                return;
            }
            let obs = Observed { payload, msg: &msg };
            for (i, d) in plan.detectors.iter().enumerate() {
                d.observe(&obs, &mut tables.sink(pane, i as u16));
            }
        });
    }
}
