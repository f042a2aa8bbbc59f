//! The DGA detector (detect/dga.rs) on names of the DGA generator
//! (`dnsmonitor::synth::dga`). These were unit tests of detect/dga.rs until
//! the generator became its own crate above the library (crates/synth):
//! the library's tests cannot reach it, so they run here, through the facade.
//!
//! The detector tests' helpers (`Sink`, `observe`, `view`, ...) are the
//! library's own `detect/test_support.rs`, compiled into this test: its
//! `crate::` paths resolve through the `use` of the modules below.

#[allow(dead_code)]
#[path = "../crates/core/src/detect/test_support.rs"]
mod test_support;

// The modules test_support.rs names as `crate::...`.
use dnsmonitor::{detect, dns, packet, spec};

use dnsmonitor::detect::dga::Dga;
use dnsmonitor::detect::spec::NetList;
use dnsmonitor::detect::{Detector, Finding, Key};
use dnsmonitor::packet::frame::{FrameBuilder, qtype, rcode};
use dnsmonitor::synth::dga::{FAMILIES, generate};
use test_support::*;

/// `n` NXDOMAIN responses to `client` for `names` (registered domains).
fn nx(d: &Dga, sink: &mut Sink, client: &str, names: &[String]) {
    let mut fb = FrameBuilder::new();
    for n in names {
        let q = format!("www.{n}");
        let bytes = fb
            .response_message(7, &q, qtype::A, rcode::NXDOMAIN, &[], 0)
            .to_vec();
        observe(
            d,
            sink,
            at("192.0.2.53", 53),
            at(client, 5353),
            &bytes,
            None,
        );
    }
}

fn eval(d: &Dga, sink: &Sink, client: &str) -> Option<Finding> {
    let key = Key::Client(client.parse().unwrap());
    d.evaluate(&key, &view(sink.0.get(&key)?, 300.0))
}

#[test]
fn dga_fires_on_generated_names_not_on_typos() {
    let d = detect::spec::built(Dga::from_spec);
    assert_eq!(d.window_secs(), Some(300));
    let mut sink = Sink::default();
    let bot: Vec<String> = generate("ramnit", 3, 40);
    nx(&d, &mut sink, "10.1.2.3", &bot);
    let f = eval(&d, &sink, "10.1.2.3").expect("ramnit bot");
    assert_eq!(f.unit, "domains");
    assert!(f.observed >= 10.0, "{f:?}");
    assert_eq!(f.evidence["sample_domains"].as_array().unwrap().len(), 3);
    // Typos of popular names and a retried dead name: nothing.
    let typos: Vec<String> = ["gooogle.com", "wikipdia.org", "facebok.com", "amazom.com"]
        .iter()
        .cycle()
        .take(40)
        .map(|s| s.to_string())
        .collect();
    nx(&d, &mut sink, "10.1.2.4", &typos);
    assert!(eval(&d, &sink, "10.1.2.4").is_none());
    // The bot's names from a busy client with five times as many
    // answered lookups: NXDOMAIN share below 0.2, not infected.
    nx(&d, &mut sink, "10.1.2.6", &bot);
    let mut fb = FrameBuilder::new();
    let ok = fb
        .response_message(7, "www.example.com", qtype::A, rcode::NOERROR, &[], 0)
        .to_vec();
    for _ in 0..200 {
        observe(
            &d,
            &mut sink,
            at("192.0.2.53", 53),
            at("10.1.2.6", 5353),
            &ok,
            None,
        );
    }
    assert!(eval(&d, &sink, "10.1.2.6").is_none());
    // The same generated name over and over: a repeat, not a DGA.
    let one = vec![bot[0].clone(); 40];
    nx(&d, &mut sink, "10.1.2.5", &one);
    assert!(eval(&d, &sink, "10.1.2.5").is_none());
    // An allowed client creates no state.
    let allowed = Dga {
        allow_clients: NetList(vec!["10.1.2.0/24".parse().unwrap()]),
        ..detect::spec::built(Dga::from_spec)
    };
    let mut none = Sink::default();
    nx(&allowed, &mut none, "10.1.2.3", &bot);
    assert!(none.0.is_empty());
}

/// The volume rule: a word DGA (suppobox) scores like popular names
/// and is found by its many distinct failures; the same names from a
/// client that mostly succeeds, or retried, are not.
#[test]
fn volume_rule_finds_word_dgas() {
    let d = detect::spec::built(Dga::from_spec);
    let mut sink = Sink::default();
    let words: Vec<String> = generate("suppobox", 3, 40);
    nx(&d, &mut sink, "10.1.3.1", &words[..24]);
    assert!(eval(&d, &sink, "10.1.3.1").is_none(), "below 25 domains");
    nx(&d, &mut sink, "10.1.3.1", &words[24..]);
    let f = eval(&d, &sink, "10.1.3.1").expect("suppobox bot");
    assert_eq!(f.evidence["rule"], "volume", "{f:?}");
    assert_eq!(f.threshold, 25.0);
    assert!(f.observed >= 30.0, "{f:?}");
    // Mostly answered: NXDOMAIN share 40/100 < 0.5.
    nx(&d, &mut sink, "10.1.3.2", &words);
    let mut fb = FrameBuilder::new();
    let ok = fb
        .response_message(7, "www.example.com", qtype::A, rcode::NOERROR, &[], 0)
        .to_vec();
    for _ in 0..60 {
        observe(
            &d,
            &mut sink,
            at("192.0.2.53", 53),
            at("10.1.3.2", 5353),
            &ok,
            None,
        );
    }
    assert!(eval(&d, &sink, "10.1.3.2").is_none());
    // Each name three times: repeat share 2/3 > 0.5.
    let thrice: Vec<String> = words
        .iter()
        .flat_map(|w| [w.clone(), w.clone(), w.clone()])
        .collect();
    nx(&d, &mut sink, "10.1.3.3", &thrice);
    assert!(eval(&d, &sink, "10.1.3.3").is_none());
    // A lexical find says so.
    let bot: Vec<String> = generate("ramnit", 3, 40);
    nx(&d, &mut sink, "10.1.3.4", &bot);
    assert_eq!(
        eval(&d, &sink, "10.1.3.4").unwrap().evidence["rule"],
        "lexical"
    );
}

/// Under a dynamic-DNS zone the public suffix list does not know, the
/// label below the zone is the registered domain; without the zone in
/// the list every name is `mooo.com`, one domain.
#[test]
fn dynamic_dns_zones_split_registered_domains() {
    let d = detect::spec::built(Dga::from_spec);
    let names: Vec<String> = generate("dircrypt", 4, 30)
        .iter()
        .map(|n| n.replace(".com", ".mooo.com"))
        .collect();
    let mut sink = Sink::default();
    nx(&d, &mut sink, "10.1.4.1", &names);
    let f = eval(&d, &sink, "10.1.4.1").expect("generated names under mooo.com");
    assert!(f.observed >= 25.0, "{f:?}");
    assert!(
        f.evidence["sample_domains"][0]
            .as_str()
            .unwrap()
            .ends_with(".mooo.com"),
        "{f:?}"
    );
    let plain = Dga {
        dynamic_dns_zones: Vec::new(),
        ..detect::spec::built(Dga::from_spec)
    };
    let mut sink = Sink::default();
    nx(&plain, &mut sink, "10.1.4.1", &names);
    assert!(eval(&plain, &sink, "10.1.4.1").is_none());
}

/// Per DGA family of the generator (3 seeds x 200 names): the share of
/// names counted (score >= the default min_name_score 2.0) and their
/// mean score, printed (`--nocapture`); the families built on random
/// characters must be counted mostly and score above min_mean_score.
#[test]
fn lexical_scores_per_family() {
    let d = detect::spec::built(Dga::from_spec);
    for f in FAMILIES {
        let (mut counted, mut sum, mut all) = (0usize, 0.0, 0usize);
        for seed in 1..=3 {
            for n in generate(f, seed, 200) {
                let label = n.split('.').next().unwrap();
                let s = d.model.score(label.as_bytes()).unwrap();
                all += 1;
                if s >= d.min_name_score {
                    counted += 1;
                    sum += s;
                }
            }
        }
        let mean = if counted > 0 {
            sum / counted as f64
        } else {
            0.0
        };
        println!(
            "{f}: counted {:.2}, mean {mean:.2}",
            counted as f64 / all as f64
        );
        if ["corebot", "dircrypt", "necurs", "ramnit", "tinba"].contains(&f) {
            assert!(counted * 2 > all && mean >= d.min_mean_score, "{f}");
        }
    }
}
