//! TCP header parsing and DNS-over-TCP stream reassembly.
//!
//! Each direction of a connection is its own flow, keyed by (source,
//! destination, source port, destination port). A flow holds the next
//! expected sequence number, the bytes of an incomplete message and a small
//! stash of out-of-order segments. DNS over TCP frames every message with a
//! 2-byte big-endian length (RFC 1035 4.2.2); a segment may carry several
//! messages, and a message (or its length prefix) may span segments.
//!
//! * SYN sets the initial sequence number; when the capture starts mid-flow
//!   the first data segment's sequence number is taken as the start (so a
//!   flow joined mid-message is misframed until it ends: the DNS layer sees
//!   malformed messages).
//! * Data before the expected sequence number (retransmissions) is trimmed
//!   or ignored; data after it is stashed (at most
//!   [`MAX_STASHED_SEGMENTS`]) until the gap fills.
//! * Capture loss: when the peer acknowledges bytes this capture never saw
//!   (they reached the receiver, so they will not be retransmitted), the
//!   gap is given up: the incomplete message is dropped and framing resumes
//!   at the first stashed segment, assumed to start a message.
//! * FIN frees the flow once everything before it arrived; RST frees both
//!   directions.
//! * Bounds: `max_flows` flows (least recently active evicted, counted),
//!   `max_buffer_bytes` of buffered plus stashed bytes per flow, and a
//!   stash or gap beyond that: `TcpStream`, and the flow is dropped (the
//!   next data segment starts it anew). Idle flows expire after
//!   `timeout_us`. All flows together hold at most `max_total_bytes`
//!   (buffer capacity plus stashed bytes): past it the least recently
//!   active flows are evicted until the total fits (counted apart,
//!   [`TcpReassembler::budget_evictions`]), so many flows each holding a
//!   partial message cannot add up to gigabytes.

use super::aged::AgedTable;
use std::net::IpAddr;

use super::PacketError;

pub const TCP_MIN_HEADER_LEN: usize = 20;
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;
/// DNS-over-TCP length prefix.
pub const DNS_TCP_PREFIX_LEN: usize = 2;
/// Largest DNS message a length prefix can announce, plus the prefix.
pub const MAX_DNS_TCP_FRAME: usize = u16::MAX as usize + DNS_TCP_PREFIX_LEN;
/// Out-of-order segments held per flow while waiting for a gap to fill.
pub const MAX_STASHED_SEGMENTS: usize = 16;
/// An emptied flow buffer whose capacity exceeds this is released.
pub const BUFFER_KEEP_BYTES: usize = 4096;

/// The fields of a TCP header the reassembler needs.
#[derive(Clone, Copy, Debug)]
pub struct TcpHeader<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    /// Acknowledgement number (meaningful when `flags` has [`TCP_ACK`]).
    pub ack: u32,
    /// The low flag bits (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR).
    pub flags: u8,
    pub data: &'a [u8],
}

/// Parses a TCP header (options skipped through the data offset).
pub fn parse_header(b: &[u8]) -> Result<TcpHeader<'_>, PacketError> {
    let [
        sp0,
        sp1,
        dp0,
        dp1,
        s0,
        s1,
        s2,
        s3,
        a0,
        a1,
        a2,
        a3,
        off,
        flags,
        ..,
    ] = *b
    else {
        return Err(PacketError::TruncatedTcp);
    };
    let header_len = usize::from(off >> 4) * 4;
    if header_len < TCP_MIN_HEADER_LEN {
        return Err(PacketError::TruncatedTcp);
    }
    let data = b.get(header_len..).ok_or(PacketError::TruncatedTcp)?;
    Ok(TcpHeader {
        sport: u16::from_be_bytes([sp0, sp1]),
        dport: u16::from_be_bytes([dp0, dp1]),
        seq: u32::from_be_bytes([s0, s1, s2, s3]),
        ack: u32::from_be_bytes([a0, a1, a2, a3]),
        flags,
        data,
    })
}

/// One direction of a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

impl FlowKey {
    /// The other direction of the same connection.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

#[derive(Debug)]
struct Stashed {
    seq: u32,
    /// Timestamp of the frame that carried it.
    ts_us: i64,
    data: Vec<u8>,
}

#[derive(Debug)]
struct Flow {
    /// Sequence number of the next byte expected in order.
    next_seq: u32,
    /// In-order bytes not yet framed into a complete message.
    buf: Vec<u8>,
    /// Out-of-order segments.
    stash: Vec<Stashed>,
    stash_bytes: usize,
    fin: bool,
    /// Highest acknowledgement from the peer that is ahead of `next_seq`:
    /// the peer received bytes this capture missed.
    peer_ack: Option<u32>,
}

/// Message sink inside a flow: (timestamp, message).
type Emit<'a> = dyn FnMut(i64, &[u8]) + 'a;

/// Signed distance from `from` to `to` in sequence space.
fn seq_diff(to: u32, from: u32) -> i32 {
    to.wrapping_sub(from) as i32
}

/// Calls `emit` for every complete length-prefixed message at the start of
/// `b`; returns the bytes consumed. A zero-length message is delivered as
/// an empty slice (for the DNS layer to count as malformed), like an empty
/// UDP datagram on a DNS port.
fn frame_messages(b: &[u8], ts_us: i64, emit: &mut Emit<'_>) -> usize {
    let mut off = 0usize;
    while let Some(&[hi, lo]) = b.get(off..).and_then(|r| r.get(..DNS_TCP_PREFIX_LEN)) {
        let start = off + DNS_TCP_PREFIX_LEN;
        let end = start + usize::from(u16::from_be_bytes([hi, lo]));
        let Some(msg) = b.get(start..end) else {
            break;
        };
        emit(ts_us, msg);
        off = end;
    }
    off
}

impl Flow {
    /// Bytes this flow holds against the total budget: its buffer's
    /// capacity (what it costs, not just what it uses) and the stash.
    fn held(&self) -> usize {
        self.buf.capacity().saturating_add(self.stash_bytes)
    }

    fn new(next_seq: u32) -> Self {
        Flow {
            next_seq,
            buf: Vec::new(),
            stash: Vec::new(),
            stash_bytes: 0,
            fin: false,
            peer_ack: None,
        }
    }

    /// Adds a segment's data, then whatever stashed segments became in
    /// order. Messages completed get `ts_us`.
    fn push(
        &mut self,
        seq: u32,
        data: &[u8],
        ts_us: i64,
        max_buffer: usize,
        emit: &mut Emit<'_>,
    ) -> Result<(), PacketError> {
        self.accept(seq, data, ts_us, max_buffer, emit)?;
        self.drain_stash(ts_us, max_buffer, emit)?;
        self.skip_acked_gap(max_buffer, emit)?;
        if self.buf.len().saturating_add(self.stash_bytes) > max_buffer {
            return Err(PacketError::TcpStream);
        }
        if self.buf.is_empty() && self.buf.capacity() > BUFFER_KEEP_BYTES {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Feeds every stashed segment that became in order. A message
    /// completes at the later of the stashed segment's time and `floor_us`
    /// (the time of the segment that filled the gap).
    fn drain_stash(
        &mut self,
        floor_us: i64,
        max_buffer: usize,
        emit: &mut Emit<'_>,
    ) -> Result<(), PacketError> {
        while let Some(i) = self
            .stash
            .iter()
            .position(|st| seq_diff(st.seq, self.next_seq) <= 0)
        {
            let st = self.stash.swap_remove(i);
            self.stash_bytes = self.stash_bytes.saturating_sub(st.data.len());
            self.accept(st.seq, &st.data, st.ts_us.max(floor_us), max_buffer, emit)?;
        }
        Ok(())
    }

    /// The peer acknowledged `ack`: if that is past bytes this capture never
    /// saw, they were lost by the capture, not the network, and will not be
    /// retransmitted.
    fn note_peer_ack(
        &mut self,
        ack: u32,
        max_buffer: usize,
        emit: &mut Emit<'_>,
    ) -> Result<(), PacketError> {
        if seq_diff(ack, self.next_seq) <= 0 {
            return Ok(());
        }
        if self.peer_ack.is_none_or(|a| seq_diff(ack, a) > 0) {
            self.peer_ack = Some(ack);
        }
        self.skip_acked_gap(max_buffer, emit)
    }

    /// When the gap before the first stashed segment is acknowledged by the
    /// peer (capture loss), gives up on it: the incomplete message is
    /// dropped and framing resumes at the stashed segment (assumed to start
    /// a message, as after a mid-flow start). Messages released keep the
    /// time of the segments that carried them.
    fn skip_acked_gap(
        &mut self,
        max_buffer: usize,
        emit: &mut Emit<'_>,
    ) -> Result<(), PacketError> {
        let Some(ack) = self.peer_ack else {
            return Ok(());
        };
        if seq_diff(ack, self.next_seq) <= 0 {
            self.peer_ack = None;
            return Ok(());
        }
        let next = self.next_seq;
        let Some(first) = self
            .stash
            .iter()
            .map(|st| st.seq)
            .min_by_key(|&s| seq_diff(s, next))
        else {
            return Ok(());
        };
        if seq_diff(first, ack) > 0 {
            return Ok(());
        }
        self.buf.clear();
        self.next_seq = first;
        self.drain_stash(i64::MIN, max_buffer, emit)
    }

    fn accept(
        &mut self,
        seq: u32,
        data: &[u8],
        ts_us: i64,
        max_buffer: usize,
        emit: &mut Emit<'_>,
    ) -> Result<(), PacketError> {
        let diff = seq_diff(seq, self.next_seq);
        let data = if diff < 0 {
            // Starts before what we have: a retransmission, maybe with new
            // bytes at its end.
            let skip = diff.unsigned_abs() as usize;
            match data.get(skip..) {
                Some(rest) if !rest.is_empty() => rest,
                _ => return Ok(()),
            }
        } else if diff > 0 {
            return self.stash(seq, diff.unsigned_abs() as usize, data, ts_us, max_buffer);
        } else {
            data
        };
        if data.is_empty() {
            return Ok(());
        }
        // `data.len()` comes from a captured frame, far below 2^32.
        self.next_seq = self.next_seq.wrapping_add(data.len() as u32);
        if self.buf.is_empty() {
            // Common case: frame straight from the segment.
            let used = frame_messages(data, ts_us, emit);
            self.buf
                .extend_from_slice(data.get(used..).unwrap_or_default());
        } else {
            self.buf.extend_from_slice(data);
            let used = frame_messages(&self.buf, ts_us, emit);
            self.buf.drain(..used.min(self.buf.len()));
        }
        Ok(())
    }

    fn stash(
        &mut self,
        seq: u32,
        gap: usize,
        data: &[u8],
        ts_us: i64,
        max_buffer: usize,
    ) -> Result<(), PacketError> {
        if data.is_empty() {
            return Ok(());
        }
        if gap > max_buffer {
            return Err(PacketError::TcpStream);
        }
        if let Some(held) = self.stash.iter_mut().find(|st| st.seq == seq) {
            // Retransmitted out-of-order segment: keep the longer copy.
            if data.len() > held.data.len() {
                self.stash_bytes = self.stash_bytes.saturating_sub(held.data.len()) + data.len();
                held.data = data.to_vec();
                held.ts_us = ts_us;
            }
        } else {
            if self.stash.len() >= MAX_STASHED_SEGMENTS {
                return Err(PacketError::TcpStream);
            }
            self.stash.push(Stashed {
                seq,
                ts_us,
                data: data.to_vec(),
            });
            self.stash_bytes += data.len();
        }
        if self.buf.len().saturating_add(self.stash_bytes) > max_buffer {
            return Err(PacketError::TcpStream);
        }
        Ok(())
    }
}

/// Bounded DNS-over-TCP reassembler. See the module documentation.
#[derive(Debug)]
pub struct TcpReassembler {
    /// Aged by last segment (least recently active first).
    flows: AgedTable<FlowKey, Flow>,
    max_flows: usize,
    max_buffer_bytes: usize,
    max_total_bytes: usize,
    /// Sum of `Flow::held` over all flows.
    held_bytes: usize,
    timeout_us: i64,
    evictions: u64,
    budget_evictions: u64,
    expired: u64,
}

impl TcpReassembler {
    pub fn new(max_flows: usize, max_buffer_bytes: usize, timeout_us: i64) -> Self {
        TcpReassembler {
            flows: AgedTable::default(),
            max_flows,
            max_buffer_bytes,
            max_total_bytes: usize::MAX,
            held_bytes: 0,
            timeout_us,
            evictions: 0,
            budget_evictions: 0,
            expired: 0,
        }
    }

    /// Bound the bytes all flows hold together (see the module documentation).
    pub fn with_total_budget(mut self, max_total_bytes: usize) -> Self {
        self.max_total_bytes = max_total_bytes;
        self
    }

    /// Bytes all flows hold (buffer capacity plus stashed segments).
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Flows evicted to keep the total under `max_total_bytes`.
    pub fn budget_evictions(&self) -> u64 {
        self.budget_evictions
    }

    /// Flows (directions) held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Flows evicted because the table was full.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Flows dropped by [`TcpReassembler::expire`].
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Forgets one direction's state (e.g. after a snaplen-truncated
    /// segment left a hole that will never fill).
    pub fn reset(&mut self, key: &FlowKey) {
        if let Some(f) = self.flows.remove(key) {
            self.held_bytes = self.held_bytes.saturating_sub(f.held());
        }
    }

    /// Removes the least recently active flow (`None` when there is none).
    fn evict_oldest(&mut self) -> Option<FlowKey> {
        let (oldest, f) = self.flows.pop_oldest()?;
        self.held_bytes = self.held_bytes.saturating_sub(f.held());
        Some(oldest)
    }

    /// Re-counts one flow's bytes after it changed (`before`: its bytes
    /// before), then evicts the least recently active flows while the total
    /// is over budget.
    fn account(&mut self, key: &FlowKey, before: usize) {
        let after = self.flows.get(key).map_or(0, Flow::held);
        self.held_bytes = self.held_bytes.saturating_sub(before).saturating_add(after);
        while self.held_bytes > self.max_total_bytes {
            if self.evict_oldest().is_none() {
                break;
            }
            self.budget_evictions += 1;
        }
        // The fuzz targets (built with `--cfg fuzzing`) check the count.
        #[cfg(fuzzing)]
        assert_eq!(
            self.held_bytes,
            self.flows.values().map(Flow::held).sum::<usize>(),
            "TCP byte count drifted"
        );
    }

    /// Feeds one segment of direction `key`, captured at `ts_us`; `emit`
    /// gets every DNS message it completes (without the length prefix) as
    /// (direction, timestamp, message). The direction is usually `key`, but
    /// an acknowledgement can release messages of the reverse direction
    /// (capture-loss gaps, see the module documentation); the timestamp is
    /// that of the segment that completed the message (for a message
    /// released by such an acknowledgement, the segment that carried it).
    /// On `Err` the offending flow has been dropped.
    #[allow(clippy::too_many_arguments)]
    pub fn segment<F: FnMut(&FlowKey, i64, &[u8])>(
        &mut self,
        key: FlowKey,
        seq: u32,
        ack: u32,
        flags: u8,
        data: &[u8],
        ts_us: i64,
        mut emit: F,
    ) -> Result<(), PacketError> {
        if flags & TCP_RST != 0 {
            self.reset(&key);
            self.reset(&key.reversed());
            return Ok(());
        }
        let max_buffer = self.max_buffer_bytes;
        let mut reverse_result = Ok(());
        let rkey = key.reversed();
        if flags & TCP_ACK != 0
            && let Some(rev) = self.flows.get_mut(&rkey)
        {
            let before = rev.held();
            reverse_result = rev.note_peer_ack(ack, max_buffer, &mut |t, m| emit(&rkey, t, m));
            let drop = reverse_result.is_err() || (rev.fin && rev.stash.is_empty());
            self.account(&rkey, before);
            if drop {
                self.reset(&rkey);
            }
        }
        let mut data_seq = seq;
        if flags & TCP_SYN != 0 {
            data_seq = seq.wrapping_add(1);
            let retransmitted = self
                .flows
                .get(&key)
                .is_some_and(|f| f.next_seq == data_seq && f.buf.is_empty() && f.stash.is_empty());
            if !retransmitted {
                self.reset(&key);
                self.create(key, data_seq, ts_us)?;
            }
        }
        if !self.flows.contains_key(&key) {
            if data.is_empty() {
                // Pure ACK / FIN of a flow we hold nothing for.
                return reverse_result;
            }
            self.create(key, data_seq, ts_us)?;
        }
        self.flows.touch(&key, ts_us);
        let Some(flow) = self.flows.get_mut(&key) else {
            return reverse_result;
        };
        let before = flow.held();
        let result = flow.push(data_seq, data, ts_us, max_buffer, &mut |t, m| {
            emit(&key, t, m)
        });
        if flags & TCP_FIN != 0 {
            flow.fin = true;
        }
        let done = flow.fin && flow.stash.is_empty();
        self.account(&key, before);
        if result.is_err() || done {
            self.reset(&key);
        }
        result.and(reverse_result)
    }

    fn create(&mut self, key: FlowKey, next_seq: u32, ts_us: i64) -> Result<(), PacketError> {
        if self.max_flows == 0 {
            return Err(PacketError::TcpStream);
        }
        while self.flows.len() >= self.max_flows {
            if self.evict_oldest().is_none() {
                break;
            }
            self.evictions += 1;
        }
        self.flows.insert(key, Flow::new(next_seq), ts_us);
        Ok(())
    }

    /// Drops flows idle for longer than the timeout.
    pub fn expire(&mut self, now_us: i64) {
        let cutoff = now_us.saturating_sub(self.timeout_us);
        while let Some((_, f)) = self.flows.pop_older_than(cutoff) {
            self.held_bytes = self.held_bytes.saturating_sub(f.held());
            self.expired += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(sport: u16) -> FlowKey {
        FlowKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            sport,
            dport: 53,
        }
    }

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u16).to_be_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    struct Run {
        r: TcpReassembler,
        got: Vec<Vec<u8>>,
    }

    impl Run {
        fn new() -> Self {
            Run {
                r: TcpReassembler::new(8, 2 * MAX_DNS_TCP_FRAME, 60_000_000),
                got: Vec::new(),
            }
        }
        fn seg(&mut self, k: FlowKey, seq: u32, flags: u8, data: &[u8]) -> Result<(), PacketError> {
            let got = &mut self.got;
            self.r
                .segment(k, seq, 0, flags, data, 0, |_, _, m| got.push(m.to_vec()))
        }
    }

    /// Many flows each holding a partial message stay under the total
    /// budget: the least recently active are evicted (counted apart from
    /// table-full evictions), the count of held bytes stays exact, and a
    /// flow that is still active completes its message.
    #[test]
    fn total_budget_evicts_the_least_recently_active_flows() {
        let budget = 128 * 1024;
        let mut r =
            TcpReassembler::new(1000, 2 * MAX_DNS_TCP_FRAME, 60_000_000).with_total_budget(budget);
        let mut got = Vec::new();
        // Each flow announces a 60 000-byte message and sends 10 000 bytes.
        let mut start = vec![0xea, 0x60];
        start.extend_from_slice(&[7; 9998]);
        for sport in 1000..1100u16 {
            r.segment(key(sport), 1, 0, 0, &start, i64::from(sport), |_, _, m| {
                got.push(m.len())
            })
            .unwrap();
            assert!(r.held_bytes() <= budget, "{} held", r.held_bytes());
            let sum: usize = r.flows.values().map(Flow::held).sum();
            assert_eq!(r.held_bytes(), sum);
        }
        assert_eq!(r.evictions(), 0, "the flow table never filled");
        // 13 flows of 10 000 bytes fit in 128 KiB; each of the others was
        // evicted once.
        assert_eq!(r.len(), 13);
        assert_eq!(r.budget_evictions(), 100 - 13);
        // The newest flow is still there and completes its message.
        let rest = vec![7u8; 50_002];
        r.segment(key(1099), 10_001, 0, 0, &rest, 2000, |_, _, m| {
            got.push(m.len())
        })
        .unwrap();
        assert_eq!(got, [60_000]);
        // Closing and expiring everything brings the count back to zero.
        r.expire(i64::MAX);
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
    }

    #[test]
    fn held_bytes_follow_stash_reset_and_fin() {
        let mut r = TcpReassembler::new(8, 2 * MAX_DNS_TCP_FRAME, 60_000_000);
        let noop = |_: &FlowKey, _: i64, _: &[u8]| {};
        // After the SYN, a segment past a gap: stashed.
        r.segment(key(1), 0, 0, TCP_SYN, &[], 0, noop).unwrap();
        r.segment(key(1), 101, 0, TCP_ACK, &[1; 300], 0, noop)
            .unwrap();
        assert!(r.held_bytes() >= 300);
        // RST frees it.
        r.segment(key(1), 0, 0, TCP_RST, &[], 1, noop).unwrap();
        assert_eq!(r.held_bytes(), 0);
        // A partial message, then its end with FIN: freed.
        r.segment(key(2), 1, 0, 0, &[0, 10, 1, 2, 3], 2, noop)
            .unwrap();
        assert!(r.held_bytes() >= 3);
        r.segment(key(2), 6, 0, TCP_FIN, &[4, 5, 6, 7, 8, 9, 10], 3, noop)
            .unwrap();
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
    }

    #[test]
    fn header_parse() {
        let mut h = vec![0x30, 0x39, 0, 53, 0, 0, 0, 9, 0, 0, 0, 0, 0x60, 0x18];
        h.extend_from_slice(&[0; 10]); // rest of 24-byte header (one option word)
        h.extend_from_slice(b"data");
        let t = parse_header(&h).unwrap();
        assert_eq!((t.sport, t.dport, t.seq, t.flags), (12345, 53, 9, 0x18));
        assert_eq!(t.data, b"data");
        let mut bad = h.clone();
        bad[12] = 0x40; // 16-byte header
        assert_eq!(parse_header(&bad).unwrap_err(), PacketError::TruncatedTcp);
        bad[12] = 0xf0; // 60 bytes, past the end
        assert_eq!(parse_header(&bad).unwrap_err(), PacketError::TruncatedTcp);
        assert_eq!(
            parse_header(&h[..13]).unwrap_err(),
            PacketError::TruncatedTcp
        );
    }

    #[test]
    fn two_messages_in_one_segment() {
        let mut run = Run::new();
        run.seg(key(1), 100, TCP_SYN, &[]).unwrap();
        run.seg(key(1), 101, 0x18, &framed(&[b"first", b"second"]))
            .unwrap();
        assert_eq!(run.got, vec![b"first".to_vec(), b"second".to_vec()]);
    }

    #[test]
    fn message_across_three_segments_prefix_split() {
        let mut run = Run::new();
        let s = framed(&[b"a message split in three"]);
        run.seg(key(1), 0, TCP_SYN, &[]).unwrap();
        run.seg(key(1), 1, 0x10, &s[..1]).unwrap(); // half the prefix
        run.seg(key(1), 2, 0x10, &s[1..10]).unwrap();
        assert!(run.got.is_empty());
        run.seg(key(1), 11, 0x18, &s[10..]).unwrap();
        assert_eq!(run.got, vec![b"a message split in three".to_vec()]);
    }

    #[test]
    fn retransmission_and_partial_overlap() {
        let mut run = Run::new();
        let s = framed(&[b"one", b"two", b"three"]);
        run.seg(key(1), 1000, TCP_SYN, &[]).unwrap();
        run.seg(key(1), 1001, 0, &s[..5]).unwrap(); // "one"
        run.seg(key(1), 1001, 0, &s[..5]).unwrap(); // duplicate
        assert_eq!(run.got.len(), 1);
        run.seg(key(1), 1001, 0, &s[..10]).unwrap(); // overlaps, brings "two"
        assert_eq!(run.got, vec![b"one".to_vec(), b"two".to_vec()]);
        run.seg(key(1), 1011, TCP_FIN, &s[10..]).unwrap();
        assert_eq!(run.got.len(), 3);
        assert!(run.r.is_empty());
    }

    #[test]
    fn out_of_order_segments() {
        let mut run = Run::new();
        let s = framed(&[b"alpha", b"beta", b"gamma"]);
        run.seg(key(1), 0, TCP_SYN, &[]).unwrap();
        run.seg(key(1), 1 + 13, 0, &s[13..]).unwrap();
        run.seg(key(1), 1 + 4, 0, &s[4..13]).unwrap();
        assert!(run.got.is_empty());
        run.seg(key(1), 1, 0, &s[..4]).unwrap();
        assert_eq!(
            run.got,
            vec![b"alpha".to_vec(), b"beta".to_vec(), b"gamma".to_vec()]
        );
    }

    #[test]
    fn mid_flow_start_and_seq_wrap() {
        let mut run = Run::new();
        let s = framed(&[b"wrapping"]);
        let seq = u32::MAX - 3;
        run.seg(key(1), seq, 0x18, &s[..6]).unwrap();
        run.seg(key(1), seq.wrapping_add(6), 0x18, &s[6..]).unwrap();
        assert_eq!(run.got, vec![b"wrapping".to_vec()]);
    }

    #[test]
    fn fin_waits_for_gap_and_rst_frees_both() {
        let mut run = Run::new();
        let s = framed(&[b"late"]);
        run.seg(key(1), 0, TCP_SYN, &[]).unwrap();
        run.seg(key(1), 3, TCP_FIN, &s[2..]).unwrap();
        assert_eq!(run.r.len(), 1);
        run.seg(key(1), 1, 0, &s[..2]).unwrap();
        assert_eq!(run.got, vec![b"late".to_vec()]);
        assert!(run.r.is_empty());
        run.seg(key(1), 0, TCP_SYN, &[]).unwrap();
        run.seg(key(1).reversed(), 0, TCP_SYN, &[]).unwrap();
        assert_eq!(run.r.len(), 2);
        run.seg(key(1), 1, TCP_RST, &[]).unwrap();
        assert!(run.r.is_empty());
    }

    #[test]
    fn flow_cap_evicts_least_recent() {
        let mut r = TcpReassembler::new(2, MAX_DNS_TCP_FRAME, 1_000);
        let partial = [0u8, 10, 1];
        r.segment(key(1), 0, 0, 0, &partial, 1, |_, _, _| {})
            .unwrap();
        r.segment(key(2), 0, 0, 0, &partial, 2, |_, _, _| {})
            .unwrap();
        r.segment(key(1), 3, 0, 0, &[2], 3, |_, _, _| {}).unwrap(); // key 1 now most recent
        r.segment(key(3), 0, 0, 0, &partial, 4, |_, _, _| {})
            .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.evictions(), 1);
        // key(1) survived: completing its message works.
        let mut got = 0;
        r.segment(key(1), 4, 0, 0, &[0; 8], 5, |_, _, m| {
            assert_eq!(m.len(), 10);
            got += 1;
        })
        .unwrap();
        assert_eq!(got, 1);
        r.expire(1_005);
        assert_eq!(r.len(), 1);
        assert_eq!(r.expired(), 1);
    }

    #[test]
    fn buffer_and_stash_bounds() {
        let mut r = TcpReassembler::new(4, 100, 1_000);
        // A gap wider than the buffer cap.
        r.segment(key(1), 0, 0, 0, &[0, 50, 1], 0, |_, _, _| {})
            .unwrap();
        assert_eq!(
            r.segment(key(1), 500, 0, 0, &[1; 10], 0, |_, _, _| {}),
            Err(PacketError::TcpStream)
        );
        assert!(r.is_empty());
        // Too many stashed segments.
        r.segment(key(1), 0, 0, 0, &[0, 50, 1], 0, |_, _, _| {})
            .unwrap();
        let mut res = Ok(());
        for i in 0..=MAX_STASHED_SEGMENTS as u32 {
            res = r.segment(key(1), 10 + i * 2, 0, 0, &[1], 0, |_, _, _| {});
        }
        assert_eq!(res, Err(PacketError::TcpStream));
        // Buffered + stashed bytes over the cap.
        r.segment(key(2), 0, 0, 0, &[0, 200, 1], 0, |_, _, _| {})
            .unwrap();
        assert_eq!(
            r.segment(key(2), 3, 0, 0, &[1; 98], 0, |_, _, _| {}),
            Err(PacketError::TcpStream)
        );
    }

    #[test]
    fn acked_capture_gap_is_skipped() {
        let server = key(1).reversed();
        let one = framed(&[b"resp-one"]);
        let two = framed(&[b"resp-two"]);
        let lost = 10u32;
        let after_gap = 1 + one.len() as u32 + lost;
        let acked = after_gap + two.len() as u32;
        for ack_first in [false, true] {
            let mut r = TcpReassembler::new(8, 2 * MAX_DNS_TCP_FRAME, 1_000_000);
            let mut got: Vec<(FlowKey, i64, Vec<u8>)> = Vec::new();
            let mut emit = |k: &FlowKey, t: i64, m: &[u8]| got.push((*k, t, m.to_vec()));
            r.segment(server, 0, 0, TCP_SYN, &[], 0, &mut emit).unwrap();
            r.segment(server, 1, 0, TCP_ACK, &one, 1, &mut emit)
                .unwrap();
            // `lost` bytes between the two responses never reach the capture.
            if ack_first {
                r.segment(key(1), 1, acked, TCP_ACK, &[], 2, &mut emit)
                    .unwrap();
                r.segment(server, after_gap, 0, TCP_ACK, &two, 3, &mut emit)
                    .unwrap();
            } else {
                r.segment(server, after_gap, 0, TCP_ACK, &two, 3, &mut emit)
                    .unwrap();
                r.segment(key(1), 1, acked, TCP_ACK, &[], 4, &mut emit)
                    .unwrap();
            }
            // Released messages keep the time of the segment carrying them.
            assert_eq!(
                got,
                vec![
                    (server, 1, b"resp-one".to_vec()),
                    (server, 3, b"resp-two".to_vec())
                ],
                "ack_first {ack_first}"
            );
        }
        // An acknowledgement that does not cover the gap changes nothing.
        let mut r = TcpReassembler::new(8, 2 * MAX_DNS_TCP_FRAME, 1_000_000);
        let mut n = 0;
        r.segment(server, 0, 0, TCP_SYN, &[], 0, |_, _, _| n += 1)
            .unwrap();
        r.segment(server, 20, 0, TCP_ACK, &two, 0, |_, _, _| n += 1)
            .unwrap();
        r.segment(key(1), 1, 10, TCP_ACK, &[], 0, |_, _, _| n += 1)
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn zero_length_message_delivered_empty() {
        let mut run = Run::new();
        let mut s = vec![0, 0];
        s.extend(framed(&[b"x"]));
        run.seg(key(1), 7, 0, &s).unwrap();
        assert_eq!(run.got, vec![b"".to_vec(), b"x".to_vec()]);
    }
}
