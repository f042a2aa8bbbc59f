//! `blocklist_hit`: a client asked for a name under a blocklisted domain.
//! Key: (client, matched blocklist entry). Observed: matching queries in the
//! window; any hit raises (threshold 1). Only queries count (a response to
//! the same lookup would count it twice); the allowlist is applied by the
//! `BlocklistSet`.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::spec::yes;
use super::{Detector, Finding, Key, KeyRef, Kind, Observed, Severity, TallySink, WindowView};
use crate::blocklist::BlocklistSet;

/// `[detectors.blocklist_hit]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlocklistHitSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Block lists (paths relative to the pipeline file); format detected
    /// per line: domains, hosts, AdBlock `||d^`, RPZ, dnsmasq, unbound, BIND.
    #[serde(default)]
    pub lists: Vec<toml::Spanned<PathBuf>>,
    /// Allow lists: names under these are never hits.
    #[serde(default)]
    pub allow: Vec<toml::Spanned<PathBuf>>,
    /// Severity of a hit: "warning" or "critical".
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

fn default_severity() -> Severity {
    Severity::Warning
}

impl Default for BlocklistHitSpec {
    fn default() -> Self {
        BlocklistHitSpec {
            enabled: true,
            lists: Vec::new(),
            allow: Vec::new(),
            severity: Severity::Warning,
        }
    }
}

pub struct BlocklistHit {
    pub set: Arc<BlocklistSet>,
    pub severity: Severity,
}

impl Detector for BlocklistHit {
    fn kind(&self) -> Kind {
        Kind::BlocklistHit
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if m.msg.qr {
            return;
        }
        let Some(q) = &m.msg.question else { return };
        let Some(hit) = self.set.lookup(&q.qname) else {
            return;
        };
        let t = sink.tally(KeyRef::ClientDomain(m.payload.src, hit.domain));
        t.queries += 1;
        t.offer_qname(&q.qname);
        if t.note.as_deref().is_none_or(|n| hit.list < n) {
            t.note = Some(hit.list.into());
        }
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.queries as f64
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        if w.tally.queries == 0 {
            return None;
        }
        let evidence = json!({
            "queries": w.tally.queries,
            "window_secs": w.window_secs,
            "list": w.tally.note.as_deref(),
            "sample_qnames": w.tally.sample_names(),
        });
        Some(Finding {
            severity: self.severity,
            observed: w.tally.queries as f64,
            threshold: 1.0,
            unit: "queries",
            evidence: evidence.as_object().cloned().unwrap_or_default(),
        })
    }
}
