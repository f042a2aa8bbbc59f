//! When each asked-for attack runs and at what rate, and the truth that
//! follows from it.

use std::collections::HashSet;

use super::attacks::{Attack, Inject, MIXED, TruthCtx, by_name};
use super::background::{self, BENIGN_QPS, SECOND_SERVER_MIN_QPS};
use super::world::SECOND_SERVER_SHARE;
use super::{SynthOptions, TRUTH_SCHEMA, Truth, WARMUP_START_S, mixed_slot};
use dnsmonitor_core::time::MICROS;

/// The length of the timeline of [`mixed_slot`], in seconds.
const MIXED_REF_S: f64 = 180.0;
/// Seconds left after a lone attack for its alert to resolve (window 10 s
/// + hold 20 s + 2 s).
const RESOLVE_ROOM_S: u32 = 32;
/// Shortest lone attack.
const MIN_ATTACK_S: u32 = 10;

/// One attack of the capture: `[start, end)` µs and its rate.
pub(super) struct Planned {
    pub inject: &'static dyn Inject,
    pub start_us: i64,
    pub end_us: i64,
    /// Events per second (queries, responses or bots, per attack).
    pub rate: f64,
}

impl Planned {
    pub fn attack(&self) -> Attack {
        self.inject.attack()
    }
}

pub(super) struct Plan {
    pub scale: f64,
    pub attacks: Vec<Planned>,
    /// Normal rate of the second server (for `rate_anomaly`).
    pub second_server_qps: f64,
    pub start_us: i64,
}

/// `[start, end)` in whole seconds of `attack` in a capture of `d` seconds.
fn attack_window(attack: Attack, alone: bool, d: u32, len: Option<u32>) -> (u32, u32) {
    let at = |f: f64| (d as f64 * f).round() as u32;
    let (mut s, mut e) = if alone {
        let s = if attack.needs_warmup() {
            at(0.2).max(WARMUP_START_S)
        } else {
            at(0.2)
        };
        let e = at(0.6).min(d.saturating_sub(RESOLVE_ROOM_S));
        match len {
            Some(l) => (s, s + l),
            None => (s, e.max(s + MIN_ATTACK_S)),
        }
    } else {
        let (a, slot_len) = mixed_slot(attack.name()).unwrap_or((0, 0));
        let len = len.unwrap_or(slot_len);
        let mut s = (a as f64 * d as f64 / MIXED_REF_S).round() as u32;
        if attack.needs_warmup() {
            s = s.max(WARMUP_START_S);
        }
        (s, s + len)
    };
    e = e.min(d);
    s = s.min(e);
    (s, e)
}

impl Plan {
    pub fn new(opts: &SynthOptions) -> Plan {
        let mut kinds: Vec<&'static dyn Inject> = Vec::new();
        for n in &opts.scenarios {
            if n == "mixed" {
                kinds.extend(MIXED);
            } else if let Some(a) = by_name(n) {
                kinds.push(a);
            }
        }
        let mut seen = HashSet::new();
        kinds.retain(|a| seen.insert(a.attack()));
        // Those of `mixed` in its order, after the others (`None` first).
        kinds.sort_by_key(|a| MIXED.iter().position(|b| b.attack() == a.attack()));
        let d = opts.duration_s;
        let scale = opts.rate_scale;
        let second_server_qps =
            (BENIGN_QPS * scale * SECOND_SERVER_SHARE).max(SECOND_SERVER_MIN_QPS);
        let attacks = kinds
            .iter()
            .map(|&inject| {
                let attack = inject.attack();
                let (s, e) = attack_window(attack, kinds.len() == 1, d, opts.attack_secs);
                let scale = opts
                    .intensity
                    .iter()
                    .rev()
                    .find(|(n, _)| n == attack.name())
                    .map_or(scale, |(_, f)| *f);
                Planned {
                    inject,
                    start_us: opts.start_us + s as i64 * MICROS,
                    end_us: opts.start_us + e as i64 * MICROS,
                    rate: inject.rate(scale),
                }
            })
            .collect();
        Plan {
            scale,
            attacks,
            second_server_qps,
            start_us: opts.start_us,
        }
    }

    pub fn truth(&self, opts: &SynthOptions) -> Truth {
        let mut attacks = Vec::new();
        let mut notes = vec![background::note(self, opts.clients)];
        for p in &self.attacks {
            let secs = |us: i64| (us - self.start_us) as f64 / MICROS as f64;
            let mut t = TruthCtx {
                p,
                when: format!("{}-{} s", secs(p.start_us), secs(p.end_us)),
                second_server_qps: self.second_server_qps,
                out: &mut attacks,
            };
            notes.push(p.inject.truth(&mut t));
        }
        if self
            .attacks
            .iter()
            .any(|p| p.attack().needs_warmup() && p.start_us - self.start_us < 70 * MICROS)
        {
            notes.push(
                "warning: spoofed_flood / rate_anomaly start before 70 s (capture too short); \
                 their detectors may still be learning their baseline"
                    .into(),
            );
        }
        Truth {
            schema: TRUTH_SCHEMA.into(),
            seed: opts.seed,
            duration_s: opts.duration_s,
            scenarios: opts.scenarios.clone(),
            attacks,
            notes,
        }
    }
}
