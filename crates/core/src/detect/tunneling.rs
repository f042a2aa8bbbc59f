//! `tunneling`: data carried in query names (iodine, dnscat2, dns2tcp,
//! DNScapy, tuns, ad-hoc exfiltration). Key: (query source, registered
//! domain). Observed: bytes per second carried in names, i.e. in the labels
//! below the registered domain.
//!
//! Per query, from the labels below the registered domain (the
//! "sub-labels"): their total bytes (`label_bytes`); whether one of them is
//! long (>= [`LONG_LABEL_BYTES`]) or high-entropy (Shannon entropy >=
//! [`HIGH_ENTROPY_MILLI`] thousandths of a bit per byte over a label of >=
//! [`ENTROPY_LABEL_BYTES`]), counted in `long_labels`; the entropy of the
//! concatenated sub-labels (`entropy_milli`, summed); whether the query type
//! is one tunnels use for their downstream ([`PAYLOAD_QTYPES`], `txt_null`);
//! and the name's hash into the distinct sketch.
//!
//! The window is the detector's own, `window_secs` (60 s by default; the
//! engine's long windows, see `engine::keyed`; 0: the pipeline's window):
//! `min_queries` in a minute is a rate bar of 1/3 q/s, so a slow tunnel is
//! found, while a fast one reaches `min_queries` as early as in a 10 s
//! window. Its alert resolves once the tunnel's queries leave the window.
//!
//! Fires (warning) when, in the window, the key has
//! - at least `min_queries` queries, and
//! - at least `min_distinct_ratio` of them distinct names (a tunnel never
//!   repeats a name: each carries new data and must miss the caches), and
//! - on average at least `min_avg_label_bytes` sub-label bytes per query, and
//! - at least `min_long_ratio` of the queries with a long/high-entropy label.
//!
//! The warning threshold reported is the least rate these conditions allow
//! (`min_queries * min_avg_label_bytes / window_secs`); critical when the
//! rate reaches `critical_bytes_per_sec`. `txt_null` and the entropy are
//! evidence only (see below for why).
//!
//! Choices, measured on the shared data (test `tunneling_per_name_agreement`
//! and the capture tests below):
//! - Names under a top-level label no registry could have (one with a digit
//!   or another non-letter, like dnscat2's direct mode
//!   `dnscat.<hex>.<hex>`) have no meaningful registered domain: they are
//!   keyed on the domain `.` with every label a sub-label. Otherwise each
//!   such name would be its own key and never add up.
//! - Names with no sub-label (a registered domain itself) carry nothing and
//!   are not counted (no key is created for them).
//! - Lookups of reputation services carry data in names by design (a file
//!   hash under an antivirus zone, a reversed address under a DNSBL):
//!   registered domains in `allow_domains` are never keyed. The default
//!   list is [`DEFAULT_ALLOW_DOMAINS`]; setting the key replaces it.
//!   Clients in `allow_clients` are never counted.
//! - Payload query types: TXT, NULL, CNAME, MX and iodine's PRIVATE (65399):
//!   iodine uses NULL, dns2tcp TXT, dnscat2 TXT/MX/CNAME (about a third
//!   each in `dns_exfiltration.pcap` and `bad-dns-traffic.pcap`). SRV is left
//!   out (service discovery: `_ldap._tcp.dc._msdcs...`) and ANY (an
//!   amplification signal, not a tunnel one). Tools can use A/AAAA too, so
//!   the type is evidence, not a condition.

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, MAX_LONG_WINDOW_SECS, NetList, defaults, yes};
use super::{
    Detector, Finding, Key, KeyRef, Kind, Observed, Severity, Tally, TallySink, WindowView,
};
use crate::dns::QName;
use crate::spec::{ConfigError, Located};

/// Sub-label bytes from which an ordinary-type query is a tunnel candidate.
pub const CARRIER_BYTES: u64 = 20;
/// A sub-label at least this long is a "long label".
pub const LONG_LABEL_BYTES: usize = 24;
/// Shortest sub-label whose entropy is looked at.
pub const ENTROPY_LABEL_BYTES: usize = 16;
/// Entropy (thousandths of a bit per byte) from which a sub-label of at
/// least `ENTROPY_LABEL_BYTES` counts as high-entropy.
pub const HIGH_ENTROPY_MILLI: u64 = 3500;
/// Query types that carry a tunnel's downstream: TXT, NULL, CNAME, MX,
/// PRIVATE (65399, iodine).
pub const PAYLOAD_QTYPES: [u16; 5] = [16, 10, 5, 15, 65399];

/// Registered domains of reputation lookups, `allow_domains` by default:
/// DNSBL and mail reputation zones (Spamhaus, SpamCop, SORBS, Barracuda,
/// SURBL, URIBL, Mailspike, the CBL, DNSWL, Sender Score, SenderBase,
/// SpamRATS, Spam Eating Monkey) and antivirus / file-reputation lookups
/// that put hashes in names (Sophos Live Protection, ESET LiveGrid, McAfee
/// GTI, Team Cymru's malware hash registry).
pub const DEFAULT_ALLOW_DOMAINS: [&str; 17] = [
    "abuseat.org",
    "barracudacentral.org",
    "cymru.com",
    "dnswl.org",
    "e5.sk",
    "mailspike.net",
    "mcafee.com",
    "senderbase.org",
    "senderscore.com",
    "sophosxl.net",
    "sorbs.net",
    "spamcop.net",
    "spameatingmonkey.net",
    "spamhaus.org",
    "spamrats.com",
    "surbl.org",
    "uribl.com",
];

fn default_allow_domains() -> Vec<toml::Spanned<String>> {
    DEFAULT_ALLOW_DOMAINS
        .iter()
        .map(|d| super::spec::unset(d.to_string()))
        .collect()
}

/// `[detectors.tunneling]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelingSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Length of the detector's own window, seconds (0: the pipeline's
    /// window; at most 3600). A longer window lowers the rate a tunnel
    /// needs (`min_queries` in it), not the shape bars.
    #[serde(default = "default_window_secs")]
    pub window_secs: toml::Spanned<u64>,
    /// Least queries from the client under the domain in the window.
    #[serde(default = "default_min_queries")]
    pub min_queries: toml::Spanned<u64>,
    /// Least average bytes per query in the labels below the registered
    /// domain.
    #[serde(default = "default_min_avg_label_bytes")]
    pub min_avg_label_bytes: toml::Spanned<f64>,
    /// Least fraction of the queries that are distinct names, in (0, 1].
    #[serde(default = "default_min_distinct_ratio")]
    pub min_distinct_ratio: toml::Spanned<f64>,
    /// Least fraction of the queries with a long or high-entropy label, in
    /// (0, 1].
    #[serde(default = "default_min_long_ratio")]
    pub min_long_ratio: toml::Spanned<f64>,
    /// Bytes per second carried in names for a critical alert.
    #[serde(default = "default_critical_bytes_per_sec")]
    pub critical_bytes_per_sec: toml::Spanned<f64>,
    /// Registered domains never keyed (reputation lookups); the default is
    /// [`DEFAULT_ALLOW_DOMAINS`], a value replaces it.
    #[serde(default = "default_allow_domains")]
    pub allow_domains: Vec<toml::Spanned<String>>,
    /// Clients (addresses or prefixes) this detector never counts.
    #[serde(default)]
    pub allow_clients: Vec<toml::Spanned<String>>,
}

defaults! {
    default_window_secs: u64 = 60;
    default_min_queries: u64 = 20;
    default_min_avg_label_bytes: f64 = 30.0;
    default_min_distinct_ratio: f64 = 0.8;
    default_min_long_ratio: f64 = 0.5;
    default_critical_bytes_per_sec: f64 = 1000.0;
}

impl Default for TunnelingSpec {
    fn default() -> Self {
        TunnelingSpec {
            enabled: true,
            window_secs: default_window_secs(),
            min_queries: default_min_queries(),
            min_avg_label_bytes: default_min_avg_label_bytes(),
            min_distinct_ratio: default_min_distinct_ratio(),
            min_long_ratio: default_min_long_ratio(),
            critical_bytes_per_sec: default_critical_bytes_per_sec(),
            allow_domains: default_allow_domains(),
            allow_clients: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tunneling {
    /// Own window, seconds; `None`: the pipeline's.
    pub window_secs: Option<u64>,
    pub min_queries: u64,
    pub min_avg_label_bytes: f64,
    pub min_distinct_ratio: f64,
    pub min_long_ratio: f64,
    pub critical_bytes_per_sec: f64,
    /// Sorted, lower-cased registered domains never keyed.
    pub allow_domains: Vec<Box<str>>,
    pub allow_clients: NetList,
}

impl Tunneling {
    /// Validate `spec`; `None` when disabled or invalid (errors pushed).
    pub fn from_spec(
        spec: &TunnelingSpec,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Tunneling> {
        if !spec.enabled {
            return None;
        }
        let mut check = Check::new(Kind::Tunneling, loc, errors);
        let window_secs = check.require(
            "window_secs",
            &spec.window_secs,
            |v| v <= MAX_LONG_WINDOW_SECS,
            format!(
                "must be a number of seconds in 0..={MAX_LONG_WINDOW_SECS} (0: the pipeline's window)"
            ),
        );
        let min_queries = check.at_least_one("min_queries", &spec.min_queries);
        let min_avg_label_bytes = check.positive("min_avg_label_bytes", &spec.min_avg_label_bytes);
        let critical_bytes_per_sec =
            check.positive("critical_bytes_per_sec", &spec.critical_bytes_per_sec);
        let min_distinct_ratio = check.ratio("min_distinct_ratio", &spec.min_distinct_ratio);
        let min_long_ratio = check.ratio("min_long_ratio", &spec.min_long_ratio);
        let allow_domains = check.domains("allow_domains", &spec.allow_domains);
        let allow_clients = check.nets("allow_clients", &spec.allow_clients);
        check.ok().then_some(Tunneling {
            window_secs: (window_secs > 0).then_some(window_secs),
            allow_domains,
            allow_clients,
            min_queries,
            min_avg_label_bytes,
            min_distinct_ratio,
            min_long_ratio,
            critical_bytes_per_sec,
        })
    }

    /// The conditions the counters alone can check.
    fn counters_allow(&self, t: &Tally) -> bool {
        t.queries > 0
            && t.queries >= self.min_queries
            && t.label_bytes as f64 >= self.min_avg_label_bytes * t.queries as f64
            && t.long_labels as f64 >= self.min_long_ratio * t.queries as f64
    }

    /// The least bytes/s a warning implies (its reported threshold).
    pub fn warning_bytes_per_sec(&self, window_secs: f64) -> f64 {
        self.min_queries as f64 * self.min_avg_label_bytes / window_secs
    }
}

/// What one query name carries, from its sub-labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameSignals {
    /// Bytes of the labels below the key domain (without dots).
    pub label_bytes: u64,
    /// A sub-label is long or high-entropy.
    pub long: bool,
    /// Entropy of the concatenated sub-labels, thousandths of a bit per byte.
    pub entropy_milli: u64,
}

/// Shannon entropy of `bytes`, in thousandths of a bit per byte: the sum
/// of `-p log2 p` over the distinct bytes in ascending byte order. Counted
/// in a histogram and walked through a bitmap of the bytes present (no
/// sort); `-p log2 p` is computed once per distinct count (most bytes of a
/// random label occur once or twice), with the same expression and in the
/// same order as a sum over sorted runs, so the result is bit for bit the
/// same.
fn entropy_milli(bytes: &[u8]) -> u64 {
    if bytes.is_empty() {
        return 0;
    }
    let mut counts = [0u8; 256];
    let mut present = [0u64; 4];
    for &b in bytes {
        // At most 255 bytes: a name is.
        counts[b as usize] = counts[b as usize].wrapping_add(1);
        present[(b >> 6) as usize] |= 1 << (b & 63);
    }
    let n = bytes.len() as f64;
    let term = |c: u8| {
        let p = f64::from(c) / n;
        -p * p.log2()
    };
    // Terms of the counts below 16, computed on first use.
    let mut small = [None::<f64>; 16];
    let mut h = -0.0f64;
    for (w, mut bits) in present.into_iter().enumerate() {
        while bits != 0 {
            let b = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let c = counts[b];
            h += match small.get_mut(c as usize) {
                Some(t) => *t.get_or_insert_with(|| term(c)),
                None => term(c),
            };
        }
    }
    (h * 1000.0).round() as u64
}

/// Byte length of the labels below the key domain and whether one of them
/// is long or high-entropy; cheap (no entropy over the whole name).
pub fn name_shape(name: &QName, key_labels: usize) -> (u64, bool) {
    let subs = name.label_count().saturating_sub(key_labels);
    let mut total = 0usize;
    let mut long = false;
    for label in name.labels().take(subs) {
        total += label.len();
        if label.len() >= LONG_LABEL_BYTES {
            long = true;
        } else if !long && label.len() >= ENTROPY_LABEL_BYTES {
            long = entropy_milli(label) >= HIGH_ENTROPY_MILLI;
        }
    }
    (total as u64, long)
}

/// Signals of `name` whose last `key_labels` labels are the key domain.
pub fn name_signals(name: &QName, key_labels: usize) -> NameSignals {
    let (label_bytes, long) = name_shape(name, key_labels);
    NameSignals {
        label_bytes,
        long,
        entropy_milli: sub_label_entropy(name, key_labels),
    }
}

/// Entropy of all the bytes of the labels below the key domain.
fn sub_label_entropy(name: &QName, key_labels: usize) -> u64 {
    let subs = name.label_count().saturating_sub(key_labels);
    let mut all = [0u8; 256];
    let mut total = 0usize;
    for label in name.labels().take(subs) {
        all[total..total + label.len()].copy_from_slice(label);
        total += label.len();
    }
    entropy_milli(&all[..total])
}

/// Could `label` be a top-level domain? Every delegated TLD is letters
/// only, or an IDN `xn--` label.
fn plausible_tld(label: &[u8]) -> bool {
    label.len() >= 2
        && (label.iter().all(u8::is_ascii_alphabetic)
            || (label.len() > 4 && label[..4].eq_ignore_ascii_case(b"xn--")))
}

/// How many trailing labels of `name` make the key domain: the registered
/// domain (`registered`, by the public suffix list) when the top-level label
/// is plausible, 0 (the domain `.`) when it is not; `None` to skip the name.
pub fn key_labels(name: &QName, registered: impl FnOnce() -> Option<usize>) -> Option<usize> {
    let n = name.label_count();
    if n == 0 {
        return None;
    }
    if !plausible_tld(name.label(n - 1)) {
        return Some(0);
    }
    registered()
}

impl Detector for Tunneling {
    fn kind(&self) -> Kind {
        Kind::Tunneling
    }

    fn window_secs(&self) -> Option<u64> {
        self.window_secs
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if m.msg.qr || self.allow_clients.contains(m.payload.src) {
            return;
        }
        let Some(q) = &m.msg.question else { return };
        let Some(k) = key_labels(&q.qname, || m.registered_labels()) else {
            return;
        };
        if k >= q.qname.label_count() {
            return; // no sub-label: carries nothing
        }
        let (label_bytes, long) = name_shape(&q.qname, k);
        // Only names that could carry data make a key: a long or
        // high-entropy label, at least CARRIER_BYTES below the registered
        // domain, or a payload type with a non-trivial sub-label. Ordinary
        // browsing (`www`, `mail`, `api.v2`) never creates state here, so
        // the per-(client, domain) key space stays small; the ratios below
        // are over these candidate queries.
        let payload = PAYLOAD_QTYPES.contains(&q.qtype);
        if !(long || label_bytes >= CARRIER_BYTES || (payload && label_bytes >= 8)) {
            return;
        }
        let s = NameSignals {
            label_bytes,
            long,
            entropy_milli: sub_label_entropy(&q.qname, k),
        };
        // `k` is 0 or the registered domain's labels (`key_labels`).
        let domain = if k == 0 {
            "."
        } else {
            match m.registered_domain_str() {
                Some(d) => d,
                None => return,
            }
        };
        if !self.allow_domains.is_empty()
            && self
                .allow_domains
                .binary_search_by(|a| (**a).cmp(domain))
                .is_ok()
        {
            return;
        }
        let t = sink.tally(KeyRef::ClientDomain(m.payload.src, domain));
        t.queries += 1;
        t.label_bytes += s.label_bytes;
        t.long_labels += s.long as u64;
        t.entropy_milli += s.entropy_milli;
        if PAYLOAD_QTYPES.contains(&q.qtype) {
            t.txt_null += 1;
        }
        t.distinct_mut().insert(q.qname.hash());
        t.offer_qname(&q.qname);
    }

    /// The distinct sketch is needed once the counters meet every other
    /// condition.
    fn needs_full_view(&self, counts: &Tally, _window_secs: f64) -> bool {
        self.counters_allow(counts)
    }

    fn pane_may_fire(&self, pane: &Tally, _slide_secs: f64, panes: u64) -> bool {
        super::pane_share_of_count(pane.queries, self.min_queries, panes)
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.label_bytes as f64 / w.window_secs
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let t = w.tally;
        if !self.counters_allow(t) || t.distinct.is_none() {
            return None;
        }
        let names = t.distinct_count();
        let q = t.queries as f64;
        // HLL estimates can exceed the true count by a little.
        let distinct_ratio = (names / q).min(1.0);
        if distinct_ratio < self.min_distinct_ratio {
            return None;
        }
        let rate = self.measure(w);
        let (severity, threshold) = if rate >= self.critical_bytes_per_sec {
            (Severity::Critical, self.critical_bytes_per_sec)
        } else {
            (Severity::Warning, self.warning_bytes_per_sec(w.window_secs))
        };
        let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
        let evidence = json!({
            "queries": t.queries,
            "distinct_names": names.round() as u64,
            "distinct_ratio": r3(distinct_ratio),
            "label_bytes": t.label_bytes,
            "avg_label_bytes": r3(t.label_bytes as f64 / q),
            "long_labels": t.long_labels,
            "long_ratio": r3(t.long_labels as f64 / q),
            "avg_entropy": r3(t.entropy_milli as f64 / q / 1000.0),
            "payload_qtypes": t.txt_null,
            "window_secs": w.window_secs,
            "min_queries": self.min_queries,
            "min_avg_label_bytes": self.min_avg_label_bytes,
            "min_distinct_ratio": self.min_distinct_ratio,
            "min_long_ratio": self.min_long_ratio,
            "critical_bytes_per_sec": self.critical_bytes_per_sec,
            "sample_qnames": t.sample_names(),
        });
        Some(Finding {
            severity,
            observed: rate,
            threshold,
            unit: "bytes/s",
            evidence: evidence.as_object().cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::detect::spec::NetList;
    use crate::detect::test_support::{
        Sink, at, default_built, from_spec, key_lines, observe_at, validate_table,
    };

    /// `entropy_milli` gives what the sum over sorted runs it replaced
    /// gave, bit for bit, on random strings of every length a name allows,
    /// over small and large alphabets (repeated bytes, counts past 16).
    #[test]
    fn entropy_equals_the_sum_over_sorted_runs() {
        fn sorted_runs(bytes: &[u8]) -> u64 {
            if bytes.is_empty() {
                return 0;
            }
            let mut sorted = bytes.to_vec();
            sorted.sort_unstable();
            let n = sorted.len() as f64;
            let h: f64 = sorted
                .chunk_by(|a, b| a == b)
                .map(|run| {
                    let p = run.len() as f64 / n;
                    -p * p.log2()
                })
                .sum();
            (h * 1000.0).round() as u64
        }
        let mut rng = crate::sketch::Rng::new(11);
        for len in 0..=253usize {
            for alphabet in [1u64, 2, 3, 16, 37, 256] {
                let bytes: Vec<u8> = (0..len).map(|_| rng.below(alphabet) as u8).collect();
                assert_eq!(entropy_milli(&bytes), sorted_runs(&bytes), "{bytes:?}");
            }
        }
        assert_eq!(entropy_milli(b"aaaa"), 0);
        assert_eq!(entropy_milli(b"ab"), 1000);
    }
    use crate::packet::frame::{FrameBuilder, qtype};

    fn detector() -> Tunneling {
        default_built(Tunneling::from_spec)
    }

    fn query(
        d: &Tunneling,
        sink: &mut Sink,
        fb: &mut FrameBuilder,
        src: &str,
        qname: &str,
        qt: u16,
    ) {
        let bytes = fb.query_message(1, qname, qt, true).to_vec();
        observe_at(
            d,
            sink,
            0,
            at(src, 40000),
            at("192.0.2.53", 53),
            &bytes,
            None,
        );
    }

    /// Evaluate as the reduce side does: counters first, the full view only
    /// when asked for.
    fn eval(d: &Tunneling, key: &Key, t: &Tally) -> Option<Finding> {
        let mut counts = Tally::default();
        counts.add_counts(t);
        let view = |tally| WindowView {
            tally,
            window_secs: 10.0,
            baseline: None,
            panes: &[],
            end: 0,
            slide_secs: 1.0,
        };
        if d.needs_full_view(&counts, 10.0) {
            d.evaluate(key, &view(t))
        } else {
            assert!(d.evaluate(key, &view(&counts)).is_none());
            None
        }
    }

    /// A deterministic base32 string of `n` chars (iodine-like alphabet).
    fn base32(seed: u64, n: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz012345";
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                A[(x % 32) as usize] as char
            })
            .collect()
    }

    #[test]
    fn tunneling_name_signals() {
        let n = |s: &str| QName::from_text(s).unwrap();
        let s = name_signals(&n("www.example.com"), 2);
        assert_eq!((s.label_bytes, s.long), (3, false));
        let s = name_signals(&n("example.com"), 2);
        assert_eq!(s, NameSignals::default());
        // 24 bytes: long whatever its entropy.
        let s = name_signals(&n("aaaaaaaaaaaaaaaaaaaaaaaa.x.example.com"), 2);
        assert_eq!((s.label_bytes, s.long), (25, true));
        // 16 random bytes: high entropy; 16 repeated ones: not.
        assert!(name_signals(&n("k3j5h1g9f7d2s4a6.example.com"), 2).long);
        assert!(!name_signals(&n("aaaabbbbaaaabbbb.example.com"), 2).long);
        assert!(
            !name_signals(&n("k3j5h1g9f7d2s4a.example.com"), 2).long,
            "15 bytes"
        );
        let s = name_signals(&n("ab.example.com"), 2);
        assert_eq!(s.entropy_milli, 1000);
        // ip6.arpa: 32 one-nibble labels, not long.
        let rev = "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa";
        let q = n(rev);
        let k = key_labels(&q, || crate::dns::name::registered_labels(&q)).unwrap();
        let s = name_signals(&q, k);
        assert!(!s.long && s.label_bytes >= 30, "{s:?} {k}");

        // Key domains.
        let kl = |s: &str| {
            let q = n(s);
            key_labels(&q, || crate::dns::name::registered_labels(&q))
        };
        assert_eq!(kl("a.b.example.co.uk"), Some(3));
        assert_eq!(kl("co.uk"), None);
        assert_eq!(kl("x.pirate.sea"), Some(2), "unknown but plausible TLD");
        assert_eq!(kl("dnscat.9f00.a35c00f5"), Some(0), "hex top label");
        assert_eq!(kl("abc.xn--p1ai"), Some(2));
        assert_eq!(kl("localhost"), None);
    }

    #[test]
    fn tunneling_tiers_and_non_firing() {
        let d = detector();
        assert_eq!(
            d,
            Tunneling {
                window_secs: Some(60),
                min_queries: 20,
                min_avg_label_bytes: 30.0,
                min_distinct_ratio: 0.8,
                min_long_ratio: 0.5,
                critical_bytes_per_sec: 1000.0,
                allow_domains: DEFAULT_ALLOW_DOMAINS.map(Box::from).to_vec(),
                allow_clients: NetList::default(),
            }
        );
        // Hash lookups of an antivirus (40 hex digits under sophosxl.net)
        // and of a DNSBL: reputation zones, never keyed.
        let mut allowed = Sink::default();
        for i in 0..40 {
            let name = format!("{}.fh.sophosxl.net", base32(i, 40));
            query(
                &d,
                &mut allowed,
                &mut FrameBuilder::new(),
                "10.0.0.8",
                &name,
                1,
            );
            let name = format!("{}.{}.zen.spamhaus.org", base32(i, 30), base32(i + 7, 30));
            query(
                &d,
                &mut allowed,
                &mut FrameBuilder::new(),
                "10.0.0.8",
                &name,
                1,
            );
        }
        assert!(allowed.0.is_empty(), "{:?}", allowed.0.keys());
        let no_defaults = Tunneling {
            allow_domains: Vec::new(),
            ..detector()
        };
        for i in 0..40 {
            let name = format!("{}.fh.sophosxl.net", base32(i, 40));
            query(
                &no_defaults,
                &mut allowed,
                &mut FrameBuilder::new(),
                "10.0.0.8",
                &name,
                1,
            );
        }
        assert_eq!(allowed.0.len(), 1, "keyed without the default list");
        let mut fb = FrameBuilder::new();
        let mut sink = Sink::default();
        let tun = "10.0.0.5";
        // A slow tunnel: 40 queries of 2 x 50-char base32 labels (101 bytes)
        // over 10 s: 404 B/s -> warning.
        for i in 0..40 {
            let name = format!("{}.{}.t.example.org", base32(i, 50), base32(i + 1000, 50));
            query(&d, &mut sink, &mut fb, tun, &name, 10);
        }
        // A fast one: 120 queries of 3 x 60 chars (180 bytes) -> 2160 B/s.
        let fast = "10.0.0.6";
        for i in 0..120 {
            let name = format!(
                "{}.{}.{}.example.net",
                base32(i, 60),
                base32(i + 7, 60),
                base32(i + 9, 60)
            );
            query(&d, &mut sink, &mut fb, fast, &name, qtype::TXT);
        }
        // The same long names, repeated (a cached long CDN name, a retry
        // loop): distinct ratio too low.
        let rep = "10.0.0.7";
        for i in 0..100 {
            let name = format!("{}.cdn.example.com", base32(i % 5, 50));
            query(&d, &mut sink, &mut fb, rep, &name, qtype::A);
        }
        // Short random names (DGA-ish, NXDOMAIN walking): few bytes per query.
        let short = "10.0.0.8";
        for i in 0..200 {
            query(
                &d,
                &mut sink,
                &mut fb,
                short,
                &format!("{}.example.com", base32(i, 12)),
                qtype::A,
            );
        }
        // Reverse lookups of many IPv6 addresses: long names, no long label.
        let rev = "10.0.0.9";
        for i in 0..100u32 {
            let ip: std::net::Ipv6Addr = format!("2001:db8::{:x}:{:x}", i, i * 7).parse().unwrap();
            let name: String = ip
                .octets()
                .iter()
                .rev()
                .flat_map(|b| [b & 0xf, b >> 4])
                .map(|n| format!("{n:x}."))
                .collect::<String>()
                + "ip6.arpa";
            query(&d, &mut sink, &mut fb, rev, &name, qtype::PTR);
        }
        // Too few queries: 19 of a real tunnel.
        let few = "10.0.0.10";
        for i in 0..19 {
            query(
                &d,
                &mut sink,
                &mut fb,
                few,
                &format!("{}.example.org", base32(i, 63)),
                qtype::TXT,
            );
        }
        // Apex queries make no key.
        query(
            &d,
            &mut sink,
            &mut fb,
            "10.0.0.11",
            "example.com",
            qtype::MX,
        );

        let key = |c: &str, dom: &str| Key::ClientDomain(c.parse().unwrap(), dom.into());
        let f = eval(
            &d,
            &key(tun, "example.org"),
            &sink.0[&key(tun, "example.org")],
        )
        .expect("slow tunnel");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.unit, "bytes/s");
        assert_eq!(f.observed, 404.0);
        assert_eq!(f.threshold, 60.0, "20 queries x 30 bytes / 10 s");
        assert_eq!(f.evidence["queries"], 40);
        assert_eq!(f.evidence["distinct_names"], 40);
        assert_eq!(f.evidence["long_labels"], 40);
        assert_eq!(f.evidence["payload_qtypes"], 40);
        assert_eq!(f.evidence["avg_label_bytes"], 101.0);
        assert!(f.evidence["avg_entropy"].as_f64().unwrap() > 4.5);
        assert_eq!(f.evidence["sample_qnames"].as_array().unwrap().len(), 3);

        let f = eval(
            &d,
            &key(fast, "example.net"),
            &sink.0[&key(fast, "example.net")],
        )
        .expect("fast tunnel");
        assert_eq!(
            (f.severity, f.observed, f.threshold),
            (Severity::Critical, 2160.0, 1000.0)
        );

        for (c, dom) in [
            (rep, "example.com"),
            (short, "example.com"),
            (few, "example.org"),
        ] {
            // Short names create no key at all (not tunnel candidates).
            assert!(
                sink.0
                    .get(&key(c, dom))
                    .is_none_or(|t| eval(&d, &key(c, dom), t).is_none()),
                "{c}"
            );
        }
        let rev_key = sink
            .0
            .keys()
            .find(|k| matches!(k, Key::ClientDomain(c, _) if *c == rev.parse::<IpAddr>().unwrap()))
            .unwrap()
            .clone();
        assert!(eval(&d, &rev_key, &sink.0[&rev_key]).is_none());
        assert!(
            !sink
                .0
                .keys()
                .any(|k| matches!(k, Key::ClientDomain(c, _) if c.to_string() == "10.0.0.11"))
        );
        assert_eq!(
            d.measure(&WindowView {
                tally: &Tally::default(),
                window_secs: 10.0,
                baseline: None,
                panes: &[],
                end: 0,
                slide_secs: 1.0,
            }),
            0.0
        );
    }

    #[test]
    fn tunneling_spec_validation() {
        let text = "[detectors.tunneling]\nmin_queries = 0\nmin_avg_label_bytes = -3.0\nmin_distinct_ratio = 1.2\nmin_long_ratio = 0.0\ncritical_bytes_per_sec = 0.0\n";
        let (d, errors) = validate_table(text, "tunneling", Tunneling::from_spec);
        assert!(d.is_none());
        let got = key_lines(&errors);
        assert_eq!(
            got,
            [
                ("detectors.tunneling.min_queries", 2),
                ("detectors.tunneling.min_avg_label_bytes", 3),
                ("detectors.tunneling.critical_bytes_per_sec", 6),
                ("detectors.tunneling.min_distinct_ratio", 4),
                ("detectors.tunneling.min_long_ratio", 5),
            ]
        );
        let spec: TunnelingSpec = toml::from_str("enabled = false\nmin_queries = 0").unwrap();
        assert!(from_spec(&spec, text, Tunneling::from_spec).0.is_none());
        assert!(toml::from_str::<TunnelingSpec>("warning_bytes_per_sec = 5.0").is_err());
    }
}
