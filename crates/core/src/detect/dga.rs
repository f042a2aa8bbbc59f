//! `dga`: an infected host querying algorithmically generated domains (a
//! domain generation algorithm looking for its command server): many
//! distinct registered domains, mostly NXDOMAIN, that look nothing like the
//! names people use, each asked about once, at a low rate (a few a minute
//! to a few a second). Key: the client (the destination of the NXDOMAIN
//! responses). Window: its own, `window_secs` (minutes; the engine's long
//! windows, see `engine::keyed`). Observed: distinct NXDOMAIN registered
//! domains in the window.
//!
//! Per response to a client (map side) `responses` is counted, per
//! NXDOMAIN `nxdomain`; and the NXDOMAIN's registered domain's first label
//! (`a1b2c3.co.uk` -> `a1b2c3`; under a `dynamic_dns_zones` zone the label
//! below it, `a1b2c3.mooo.com` -> `a1b2c3`) gets a lexical score
//! ([`LexModel`]): the sum over four features of `-log10(tail)`, tail = the
//! share of popular names at least as unusual — mean character-bigram
//! log-likelihood against a model of popular names, Shannon entropy,
//! longest digit run, longest consonant run. Every scored name is *seen*:
//! `large` (count), `label_bytes` (score sum, thousandths), its registered
//! domain in `distinct` (HLL++) and the samples (escaped). Names scoring at
//! least `min_name_score` (not most typos of real names) are also
//! *counted*: `long_labels`, their score (`entropy_milli`, thousandths) and
//! those at or above the model's threshold (`txt_null`). A client gets
//! state (a slot in the long window) only with a pane holding a scored
//! name and at least `1 - max_repeat_share` as many distinct registered
//! domains as scored names (a sound bound of both rules below, see
//! `pane_may_fire`); its responses before that are held for the
//! pipeline's window only.
//!
//! Two rules over the window, both with at most `max_repeat_share` repeated
//! lookups among the seen names (`1 - distinct / seen`: a typo or a dead
//! bookmark is retried; a DGA moves on). Fires (warning) when either holds:
//!
//! - **lexical**: at least `min_domains` counted names from at least
//!   `min_domains` distinct domains (counted names times the distinct share
//!   of the seen ones), their mean score at least `min_mean_score`, and at
//!   least `min_nxdomain_share` of the client's responses NXDOMAIN (a busy
//!   client with many typos among many answers is not infected);
//! - **volume**: at least `volume_min_domains` distinct seen domains, their
//!   mean score at least `volume_min_mean_score`, and at least
//!   `volume_min_nxdomain_share` of the client's responses NXDOMAIN. For
//!   the families whose names are words or pronounceable (suppobox, simda,
//!   symmi), which score like popular names: the rule rests on the volume
//!   of distinct failures, a client that mostly fails and hardly retries.
//!
//! Critical from `critical_domains` (the firing rule's domains).
//!
//! The model (`src/detect/dga_model.txt`) is data, built by
//! `scripts/build-dga-model.py` from a public list of popular registered
//! domains (see that script for the source and the calibration).

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::json;

use super::nxdomain_flood::RCODE_NXDOMAIN;
use super::spec::{Check, NetList, defaults, yes};
use super::{
    Detector, Finding, Key, KeyRef, Kind, Observed, Severity, ShortStr, Tally, TallySink,
    WindowView,
};
use crate::spec::{ConfigError, Located};

/// The model file, compiled in.
pub const MODEL_TEXT: &str = include_str!("dga_model.txt");

/// Symbols of the bigram model: the boundary `^`, then a-z, 0-9, `-`.
const ALPHABET: &[u8] = b"^abcdefghijklmnopqrstuvwxyz0123456789-";
const SYMBOLS: usize = 38;

/// The lexical model of popular names (see the module docs).
#[derive(Clone, Debug)]
pub struct LexModel {
    /// log2 P(next | previous), `[previous][next]`.
    bigram: Vec<[f32; SYMBOLS]>,
    /// Quantiles of the held-out popular names, per feature: mean bigram
    /// log-likelihood, entropy, longest digit run, longest consonant run.
    quantiles: [Vec<f64>; 4],
    /// Score reached by 1 % of held-out popular names.
    pub threshold: f64,
}

/// The built-in model (parsed once; the file is tested to parse).
pub static MODEL: LazyLock<LexModel> =
    LazyLock::new(|| LexModel::parse(MODEL_TEXT).expect("src/detect/dga_model.txt parses"));

/// Byte -> its symbol in `ALPHABET` (case-insensitive), `NONE` outside it.
const NONE: u8 = u8::MAX;
static SYMBOL_OF: [u8; 256] = {
    let mut t = [NONE; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        let a = ALPHABET[i];
        t[a as usize] = i as u8;
        t[a.to_ascii_uppercase() as usize] = i as u8;
        i += 1;
    }
    t
};

fn symbol(b: u8) -> Option<usize> {
    let s = SYMBOL_OF[b as usize];
    (s != NONE).then_some(s as usize)
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

impl LexModel {
    /// Parse the text format written by scripts/build-dga-model.py; the
    /// error names the line.
    pub fn parse(text: &str) -> Result<LexModel, String> {
        let mut bigram = Vec::new();
        let mut quantiles: [Vec<f64>; 4] = Default::default();
        let mut threshold = None;
        for (i, line) in text.lines().enumerate() {
            let err = |what: &str| format!("dga model line {}: {what}", i + 1);
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (tag, rest) = line.split_once(' ').ok_or_else(|| err("no value"))?;
            let nums = || -> Result<Vec<f64>, String> {
                rest.split(' ')
                    .map(|v| v.parse::<f64>().map_err(|_| err("not a number")))
                    .collect()
            };
            match tag {
                "alphabet" if rest.as_bytes() == ALPHABET => {}
                "alphabet" => return Err(err("unexpected alphabet")),
                "bigram" => {
                    let v = nums()?;
                    let row: [f32; SYMBOLS] =
                        std::array::from_fn(|j| *v.get(j).unwrap_or(&0.0) as f32);
                    if v.len() != SYMBOLS {
                        return Err(err("bigram row of the wrong length"));
                    }
                    bigram.push(row);
                }
                "q_ll" => quantiles[0] = nums()?,
                "q_entropy" => quantiles[1] = nums()?,
                "q_digit_run" => quantiles[2] = nums()?,
                "q_consonant_run" => quantiles[3] = nums()?,
                "threshold" => {
                    threshold = Some(nums()?.first().copied().ok_or_else(|| err("empty"))?)
                }
                _ => return Err(err("unknown tag")),
            }
        }
        // Sorted, so a score counts them by binary search (the counts, and
        // so the scores, are those of a linear scan).
        for q in &mut quantiles {
            q.sort_by(f64::total_cmp);
        }
        if bigram.len() != SYMBOLS || quantiles.iter().any(Vec::is_empty) {
            return Err("dga model: incomplete (bigram rows or quantiles missing)".into());
        }
        Ok(LexModel {
            bigram,
            quantiles,
            threshold: threshold.ok_or("dga model: no threshold")?,
        })
    }

    /// The four features of a label (lower-case letters, digits, `-`), as
    /// the build script computes them; `None` for other bytes.
    pub fn features(&self, label: &[u8]) -> Option<[f64; 4]> {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        let mut prev = 0usize;
        let mut ll = 0.0f64;
        let mut counts = [0u32; SYMBOLS];
        let (mut digit, mut cons, mut best_d, mut best_c) = (0u32, 0u32, 0u32, 0u32);
        for &b in label {
            let s = symbol(b).filter(|&s| s > 0)?;
            ll += self.bigram[prev][s] as f64;
            prev = s;
            counts[s] += 1;
            let c = b.to_ascii_lowercase();
            digit = if c.is_ascii_digit() { digit + 1 } else { 0 };
            cons = if c.is_ascii_alphabetic() && !b"aeiou".contains(&c) {
                cons + 1
            } else {
                0
            };
            best_d = best_d.max(digit);
            best_c = best_c.max(cons);
        }
        ll += self.bigram[prev][0] as f64;
        ll /= (label.len() + 1) as f64;
        let n = label.len() as f64;
        let ent: f64 = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / n;
                -p * p.log2()
            })
            .sum();
        Some([round4(ll), round4(ent), best_d as f64, best_c as f64])
    }

    /// The lexical score of a label: sum of `-log10(tail)` over the
    /// features (0 for a label like the median popular name; each feature
    /// adds at most `log10(quantiles)`). `None` when the label has bytes
    /// outside the model's alphabet.
    pub fn score(&self, label: &[u8]) -> Option<f64> {
        let f = self.features(label)?;
        let mut s = 0.0;
        for (i, (q, x)) in self.quantiles.iter().zip(f).enumerate() {
            // Low likelihood is unusual; high entropy and long runs are.
            // `q` is sorted (`parse`).
            let k = if i == 0 {
                q.partition_point(|&v| v <= x)
            } else {
                q.len() - q.partition_point(|&v| v < x)
            };
            s -= (k.max(1) as f64 / q.len() as f64).log10();
        }
        Some(s)
    }
}

/// Labels scored recently, per thread: a flood of NXDOMAINs under one
/// registered domain (water torture) scores its label once, not per
/// response. Direct-mapped by label hash; a hit compares the label.
const SCORE_CACHE: usize = 256;

/// A cached label: its hash, the label and its score.
type Scored = (u64, Box<str>, Option<f64>);

struct ScoreCache {
    model: usize,
    slots: Vec<Option<Scored>>,
}

fn cached_score(model: &LexModel, label: &str) -> Option<f64> {
    use std::cell::RefCell;
    thread_local! {
        static CACHE: RefCell<ScoreCache> = const {
            RefCell::new(ScoreCache { model: 0, slots: Vec::new() })
        };
    }
    let h = crate::sketch::stable_hash(label);
    CACHE.with_borrow_mut(|c| {
        let id = model as *const LexModel as usize;
        if c.model != id || c.slots.is_empty() {
            c.model = id;
            c.slots = vec![None; SCORE_CACHE];
        }
        let slot = &mut c.slots[h as usize % SCORE_CACHE];
        if let Some((sh, l, score)) = slot
            && *sh == h
            && **l == *label
        {
            return *score;
        }
        let score = model.score(label.as_bytes());
        *slot = Some((h, label.into(), score));
        score
    })
}

/// `[detectors.dga]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DgaSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Length of the detector's own window, seconds (>= the pipeline's
    /// window; at most 3600).
    #[serde(default = "default_window_secs")]
    pub window_secs: toml::Spanned<u64>,
    /// Least distinct NXDOMAIN registered domains in the window (>= 1).
    #[serde(default = "default_min_domains")]
    pub min_domains: toml::Spanned<u64>,
    /// Distinct domains for a critical alert (>= min_domains).
    #[serde(default = "default_critical_domains")]
    pub critical_domains: toml::Spanned<u64>,
    /// Names scoring below this are not counted (> 0).
    #[serde(default = "default_min_name_score")]
    pub min_name_score: toml::Spanned<f64>,
    /// Least mean score of the counted names (> 0).
    #[serde(default = "default_min_mean_score")]
    pub min_mean_score: toml::Spanned<f64>,
    /// Largest share of repeated lookups, in (0, 1].
    #[serde(default = "default_max_repeat_share")]
    pub max_repeat_share: toml::Spanned<f64>,
    /// Least share of the client's responses that are NXDOMAIN, in (0, 1].
    #[serde(default = "default_min_nxdomain_share")]
    pub min_nxdomain_share: toml::Spanned<f64>,
    /// Volume rule: least distinct NXDOMAIN registered domains, any score
    /// (>= 1).
    #[serde(default = "default_volume_min_domains")]
    pub volume_min_domains: toml::Spanned<u64>,
    /// Volume rule: least mean score of all the NXDOMAIN names (>= 0).
    #[serde(default = "default_volume_min_mean_score")]
    pub volume_min_mean_score: toml::Spanned<f64>,
    /// Volume rule: least NXDOMAIN share of the client's responses, in
    /// (0, 1].
    #[serde(default = "default_volume_min_nxdomain_share")]
    pub volume_min_nxdomain_share: toml::Spanned<f64>,
    /// Zones whose subdomains belong to different people (dynamic-DNS
    /// services missing from the public suffix list): the label below one
    /// is scored and counted as the registered domain.
    #[serde(default = "default_dynamic_dns_zones")]
    pub dynamic_dns_zones: Vec<toml::Spanned<String>>,
    /// Clients (addresses or prefixes) this detector never counts.
    #[serde(default)]
    pub allow_clients: Vec<toml::Spanned<String>>,
}

defaults! {
    default_window_secs: u64 = 300;
    default_min_domains: u64 = 10;
    default_critical_domains: u64 = 50;
    default_min_name_score: f64 = 2.0;
    default_min_mean_score: f64 = 3.0;
    default_max_repeat_share: f64 = 0.5;
    default_min_nxdomain_share: f64 = 0.2;
    default_volume_min_domains: u64 = 25;
    default_volume_min_mean_score: f64 = 0.5;
    default_volume_min_nxdomain_share: f64 = 0.5;
}

/// Free dynamic-DNS zones the public suffix list does not know (it knows
/// `ddns.net`, `dyndns.org`, `duckdns.org`, `no-ip.org` and most of the
/// No-IP and DynDNS zones): FreeDNS (afraid.org) shared domains, the
/// Dyn-era `yi.org` and `dynserv.com` (with `mooo.com` Kraken's zones),
/// ChangeIP's and 3322.org (Pubyun).
pub const DEFAULT_DYNAMIC_DNS_ZONES: [&str; 14] = [
    "2waky.com",
    "3322.org",
    "changeip.com",
    "chickenkiller.com",
    "crabdance.com",
    "dynserv.com",
    "ignorelist.com",
    "jumpingcrab.com",
    "mooo.com",
    "strangled.net",
    "twilightparadox.com",
    "us.to",
    "xxuz.com",
    "yi.org",
];

fn default_dynamic_dns_zones() -> Vec<toml::Spanned<String>> {
    DEFAULT_DYNAMIC_DNS_ZONES
        .iter()
        .map(|z| super::spec::unset(z.to_string()))
        .collect()
}

impl Default for DgaSpec {
    fn default() -> Self {
        DgaSpec {
            enabled: true,
            window_secs: default_window_secs(),
            min_domains: default_min_domains(),
            critical_domains: default_critical_domains(),
            min_name_score: default_min_name_score(),
            min_mean_score: default_min_mean_score(),
            max_repeat_share: default_max_repeat_share(),
            min_nxdomain_share: default_min_nxdomain_share(),
            volume_min_domains: default_volume_min_domains(),
            volume_min_mean_score: default_volume_min_mean_score(),
            volume_min_nxdomain_share: default_volume_min_nxdomain_share(),
            dynamic_dns_zones: default_dynamic_dns_zones(),
            allow_clients: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Dga {
    pub window_secs: u64,
    pub min_domains: u64,
    pub critical_domains: u64,
    pub min_name_score: f64,
    pub min_mean_score: f64,
    pub max_repeat_share: f64,
    pub min_nxdomain_share: f64,
    pub volume_min_domains: u64,
    pub volume_min_mean_score: f64,
    pub volume_min_nxdomain_share: f64,
    /// Sorted, lower-case (binary search).
    pub dynamic_dns_zones: Vec<Box<str>>,
    pub allow_clients: NetList,
    pub model: &'static LexModel,
}

impl Dga {
    /// Validate `spec`; `None` when disabled or invalid (errors pushed).
    pub fn from_spec(
        spec: &DgaSpec,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Dga> {
        if !spec.enabled {
            return None;
        }
        let mut check = Check::new(Kind::Dga, loc, errors);
        let window_secs = check.long_window_secs(&spec.window_secs);
        let min_domains = check.at_least_one("min_domains", &spec.min_domains);
        let critical_domains = check.require(
            "critical_domains",
            &spec.critical_domains,
            |v| v >= min_domains,
            format!("must be a number >= min_domains ({min_domains})"),
        );
        let min_name_score = check.positive("min_name_score", &spec.min_name_score);
        let min_mean_score = check.positive("min_mean_score", &spec.min_mean_score);
        let max_repeat_share = check.ratio("max_repeat_share", &spec.max_repeat_share);
        let min_nxdomain_share = check.ratio("min_nxdomain_share", &spec.min_nxdomain_share);
        let volume_min_domains = check.at_least_one("volume_min_domains", &spec.volume_min_domains);
        let volume_min_mean_score = check.require(
            "volume_min_mean_score",
            &spec.volume_min_mean_score,
            |x| x.is_finite() && x >= 0.0,
            "must be a number >= 0",
        );
        let volume_min_nxdomain_share =
            check.ratio("volume_min_nxdomain_share", &spec.volume_min_nxdomain_share);
        let dynamic_dns_zones = check.domains("dynamic_dns_zones", &spec.dynamic_dns_zones);
        let allow_clients = check.nets("allow_clients", &spec.allow_clients);
        check.ok().then(|| Dga {
            window_secs,
            min_domains,
            critical_domains,
            min_name_score,
            min_mean_score,
            max_repeat_share,
            min_nxdomain_share,
            volume_min_domains,
            volume_min_mean_score,
            volume_min_nxdomain_share,
            dynamic_dns_zones,
            allow_clients,
            model: &MODEL,
        })
    }
}

impl Dga {
    /// The registered domain of an NXDOMAIN's name, one label longer under
    /// a `dynamic_dns_zones` zone (when the name has that label).
    fn scored_domain(&self, m: &Observed<'_, '_>) -> Option<ShortStr> {
        let domain = m.registered_domain_str()?;
        if !self.dynamic_dns_zones.is_empty()
            && self
                .dynamic_dns_zones
                .binary_search_by(|z| (**z).cmp(domain))
                .is_ok()
        {
            let n = m.registered_labels()?;
            let q = &m.msg.question.as_ref()?.qname;
            if q.label_count() > n {
                return Some(q.suffix_lowercase_presentation(n + 1));
            }
        }
        Some(ShortStr::new(domain))
    }
}

impl Detector for Dga {
    fn kind(&self) -> Kind {
        Kind::Dga
    }

    fn window_secs(&self) -> Option<u64> {
        Some(self.window_secs)
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if !m.msg.qr || self.allow_clients.contains(m.payload.dst) {
            return;
        }
        let nx = m.msg.rcode == RCODE_NXDOMAIN;
        // The registered label of an NXDOMAIN and its score; escaped bytes
        // (`\`) are outside the model's alphabet and score None.
        let scored = if nx {
            self.scored_domain(m).and_then(|domain| {
                let label = domain.as_str().split('.').next().unwrap_or("");
                let score = cached_score(self.model, label)?;
                Some((domain, score))
            })
        } else {
            None
        };
        let t = sink.tally(KeyRef::Client(m.payload.dst));
        t.responses += 1;
        t.nxdomain += nx as u64;
        if let Some((domain, score)) = scored {
            let milli = (score * 1000.0).round() as u64;
            t.large += 1;
            t.label_bytes += milli;
            if score >= self.min_name_score {
                t.long_labels += 1;
                t.entropy_milli += milli;
                t.txt_null += (score >= self.model.threshold) as u64;
            }
            let domain = domain.as_str();
            let h = crate::sketch::stable_hash(domain);
            t.distinct_mut().insert(h);
            t.offer_sample(h, domain);
        }
    }

    /// Sound: both rules need a scored name and at most `max_repeat_share`
    /// repeated lookups over the window, i.e. distinct domains at least
    /// `(1 - max_repeat_share)` of the scored names. Distinct domains of a
    /// window are at most the sum of its panes' (and only panes with a
    /// scored name have any), so were every pane with a scored name below
    /// that share, so would the window be: one pane must reach it. A client
    /// of a water-torture flood (NXDOMAINs under one registered domain)
    /// never does, so it takes no slot in the long window.
    fn pane_may_fire(&self, pane: &Tally, _slide_secs: f64, _panes: u64) -> bool {
        pane.large > 0
            && pane.distinct_count()
                >= (1.0 - self.max_repeat_share) * pane.large as f64 * (1.0 - 1e-9)
    }

    fn needs_full_view(&self, counts: &Tally, _window_secs: f64) -> bool {
        let nx_share = counts.nxdomain as f64 / counts.responses.max(1) as f64;
        counts.long_labels >= self.min_domains
            || (counts.large >= self.volume_min_domains
                && nx_share >= self.volume_min_nxdomain_share)
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.distinct_count().round()
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let t = w.tally;
        let (seen, counted) = (t.large, t.long_labels);
        if seen == 0 || t.distinct.is_none() {
            return None;
        }
        let domains = (t.distinct_count().round() as u64).min(seen);
        let distinct_share = domains as f64 / seen as f64;
        let repeat = 1.0 - distinct_share;
        let nx_share = t.nxdomain as f64 / t.responses.max(1) as f64;
        let mean_all = t.label_bytes as f64 / 1000.0 / seen as f64;
        let mean = t.entropy_milli as f64 / 1000.0 / counted.max(1) as f64;
        // Distinct counted domains: the counted names times the distinct
        // share of all (one sketch serves both rules).
        let counted_domains = (counted as f64 * distinct_share).round() as u64;
        let lexical = counted >= self.min_domains
            && counted_domains >= self.min_domains
            && mean >= self.min_mean_score
            && repeat <= self.max_repeat_share
            && nx_share >= self.min_nxdomain_share;
        let volume = domains >= self.volume_min_domains
            && mean_all >= self.volume_min_mean_score
            && repeat <= self.max_repeat_share
            && nx_share >= self.volume_min_nxdomain_share;
        let (rule, rule_domains, threshold) = if lexical {
            ("lexical", counted_domains, self.min_domains)
        } else if volume {
            ("volume", domains, self.volume_min_domains)
        } else {
            return None;
        };
        let (severity, threshold) = if rule_domains >= self.critical_domains {
            (Severity::Critical, self.critical_domains)
        } else {
            (Severity::Warning, threshold)
        };
        let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
        let evidence = json!({
            "rule": rule,
            "responses": t.responses,
            "nxdomain_responses": t.nxdomain,
            "nxdomain_share": r3(nx_share),
            "scored_names": seen,
            "distinct_domains": domains,
            "mean_score_all": r3(mean_all),
            "counted_names": counted,
            "counted_domains": counted_domains,
            "mean_score": r3(mean),
            "above_model_threshold": t.txt_null,
            "model_threshold": self.model.threshold,
            "repeat_share": r3(repeat),
            "window_secs": w.window_secs,
            "min_domains": self.min_domains,
            "min_mean_score": self.min_mean_score,
            "volume_min_domains": self.volume_min_domains,
            "sample_domains": t.sample_names(),
        });
        Some(Finding {
            severity,
            observed: domains as f64,
            threshold: threshold as f64,
            unit: "domains",
            evidence: evidence.as_object().cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_support::*;

    #[test]
    fn model_parses_and_scores() {
        let m = &*MODEL;
        assert!(m.threshold > 2.0 && m.threshold < 8.0, "{}", m.threshold);
        let s = |l: &str| m.score(l.as_bytes()).unwrap();
        for popular in [
            "google",
            "wikipedia",
            "facebook",
            "amazon",
            "example",
            "mail",
        ] {
            assert!(s(popular) < m.threshold, "{popular}: {}", s(popular));
        }
        for dga in [
            "xjw9qkz7vbn2",
            "kq0qw6o2siwq",
            "zxcvbnmqwrtp",
            "hwevqwlocbvmrjdor",
        ] {
            assert!(s(dga) >= 2.0, "{dga}: {}", s(dga));
        }
        assert!(m.score(b"a\\b").is_none() && m.score(b"").is_none());
        assert!(
            LexModel::parse("bigram 1 2\n")
                .unwrap_err()
                .contains("line 1")
        );
    }

    #[test]
    fn dga_spec_validation() {
        let text = "[detectors.dga]\nwindow_secs = 0\nmin_domains = 0\nmin_mean_score = -1.0\nmax_repeat_share = 2.0\nvolume_min_domains = 0\nvolume_min_mean_score = -0.5\nvolume_min_nxdomain_share = 0.0\ndynamic_dns_zones = [\"a..b\"]\nallow_clients = [\"x\"]\n";
        let (d, errors) = validate_table(text, "dga", Dga::from_spec);
        assert!(d.is_none());
        assert_eq!(
            error_keys(&errors),
            [
                "detectors.dga.window_secs",
                "detectors.dga.min_domains",
                "detectors.dga.min_mean_score",
                "detectors.dga.max_repeat_share",
                "detectors.dga.volume_min_domains",
                "detectors.dga.volume_min_mean_score",
                "detectors.dga.volume_min_nxdomain_share",
                "detectors.dga.dynamic_dns_zones",
                "detectors.dga.allow_clients",
            ]
        );
    }
}
