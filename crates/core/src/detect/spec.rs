//! What every `[detectors.<kind>]` table shares: serde defaults and the
//! checks of `from_spec`, each pushing a located error for
//! `detectors.<kind>.<key>` (the messages are part of the config contract).

use toml::Spanned;

use super::Kind;
use crate::spec::{ConfigError, Located};

/// `#[serde(default = "yes")]` for `enabled`.
pub fn yes() -> bool {
    true
}

/// A default value: it has no place in the file (span `0..0`).
pub fn unset<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

/// A detector built from its spec's defaults (which are valid), for
/// `impl Default`: `built(Detector::from_spec)`.
pub fn built<S: Default, D>(
    from_spec: impl FnOnce(&S, &Located<'_>, &mut Vec<ConfigError>) -> Option<D>,
) -> D {
    let loc = Located { file: "", text: "" };
    from_spec(&S::default(), &loc, &mut Vec::new()).expect("the default spec is valid")
}

/// Named default functions for `#[serde(default = "...")]`:
/// `defaults! { default_warning: f64 = 100.0; }`.
macro_rules! defaults {
    ($($name:ident: $t:ty = $v:expr;)*) => {
        $(fn $name() -> toml::Spanned<$t> {
            $crate::detect::spec::unset($v)
        })*
    };
}
pub(crate) use defaults;

/// Longest `window_secs` of a detector with its own long window (`dga`,
/// `tunneling`, `newly_observed`).
pub const MAX_LONG_WINDOW_SECS: u64 = 3600;

/// Validation of one detector's table: every failed check pushes an error
/// keyed `detectors.<kind>.<key>` at the value's span and returns the value
/// anyway, so all problems are reported; `ok` tells whether any was.
pub struct Check<'a, 'b> {
    loc: &'a Located<'b>,
    errors: &'a mut Vec<ConfigError>,
    kind: &'static str,
    before: usize,
}

impl<'a, 'b> Check<'a, 'b> {
    pub fn new(kind: Kind, loc: &'a Located<'b>, errors: &'a mut Vec<ConfigError>) -> Self {
        let before = errors.len();
        Check {
            loc,
            errors,
            kind: kind.as_str(),
            before,
        }
    }

    /// No check failed since `new`.
    pub fn ok(&self) -> bool {
        self.errors.len() == self.before
    }

    /// The value of `v`; an error with `message` unless `valid` holds for it.
    pub fn require<T: Copy>(
        &mut self,
        key: &str,
        v: &Spanned<T>,
        valid: impl FnOnce(T) -> bool,
        message: impl Into<String>,
    ) -> T {
        let x = *v.get_ref();
        if !valid(x) {
            let key = format!("detectors.{}.{key}", self.kind);
            self.errors.push(self.loc.error(v.span(), &key, message));
        }
        x
    }

    /// A list of domain names (presentation form), lower-cased; an error
    /// names each entry that is not a valid name.
    pub fn domains(&mut self, key: &str, v: &[Spanned<String>]) -> Vec<Box<str>> {
        let mut out = Vec::new();
        for d in v {
            match crate::dns::QName::from_text(d.get_ref()) {
                Ok(n) if !n.is_root() => out.push(n.to_lowercase_string().into_boxed_str()),
                _ => {
                    let k = format!("detectors.{}.{key}", self.kind);
                    let msg = format!("`{}` is not a domain name", d.get_ref().escape_debug());
                    self.errors.push(self.loc.error(d.span(), &k, msg));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// `allow_clients`: addresses and prefixes (`10.1.200.1`,
    /// `192.0.2.0/24`, `2001:db8::/48`); an error names each entry that is
    /// neither.
    pub fn nets(&mut self, key: &str, v: &[Spanned<String>]) -> NetList {
        let mut out = Vec::new();
        for n in v {
            let text = n.get_ref().trim();
            let parsed = text
                .parse::<ipnet::IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => out.push(net),
                Err(_) => {
                    let k = format!("detectors.{}.{key}", self.kind);
                    let msg = format!(
                        "`{}` is not an IP address or prefix (address/length)",
                        n.get_ref().escape_debug()
                    );
                    self.errors.push(self.loc.error(n.span(), &k, msg));
                }
            }
        }
        out.sort();
        out.dedup();
        NetList(out)
    }

    /// A finite number > 0.
    pub fn positive(&mut self, key: &str, v: &Spanned<f64>) -> f64 {
        self.require(key, v, is_positive, "must be a positive number")
    }

    /// A finite number > 0, in `unit` (named in the message).
    pub fn positive_in(&mut self, key: &str, v: &Spanned<f64>, unit: &str) -> f64 {
        self.require(
            key,
            v,
            is_positive,
            format!("must be a positive number ({unit})"),
        )
    }

    /// A finite number >= `min` (the value of key `min_name`).
    pub fn at_least(&mut self, key: &str, v: &Spanned<f64>, min: f64, min_name: &str) -> f64 {
        self.require(
            key,
            v,
            |x| x.is_finite() && x >= min,
            format!("must be a number >= {min_name} ({min})"),
        )
    }

    /// A finite number > 0 and >= `min` (the value of key `min_name`).
    pub fn positive_at_least(
        &mut self,
        key: &str,
        v: &Spanned<f64>,
        min: f64,
        min_name: &str,
    ) -> f64 {
        self.require(
            key,
            v,
            |x| x.is_finite() && x >= min && x > 0.0,
            format!("must be a number >= {min_name} ({min})"),
        )
    }

    /// A ratio in (0, 1].
    pub fn ratio(&mut self, key: &str, v: &Spanned<f64>) -> f64 {
        self.require(key, v, |x| x > 0.0 && x <= 1.0, "must be a ratio in (0, 1]")
    }

    /// A detector's own long window (`window_secs`), 1..=`MAX_LONG_WINDOW_SECS`.
    pub fn long_window_secs(&mut self, v: &Spanned<u64>) -> u64 {
        self.require(
            "window_secs",
            v,
            |v| (1..=MAX_LONG_WINDOW_SECS).contains(&v),
            format!("must be a number of seconds in 1..={MAX_LONG_WINDOW_SECS}"),
        )
    }

    /// A count of at least 1 ("must be at least 1").
    pub fn at_least_one(&mut self, key: &str, v: &Spanned<u64>) -> u64 {
        self.require(key, v, |x| x >= 1, "must be at least 1")
    }

    /// An integer of at least 1 ("must be a positive integer").
    pub fn positive_int(&mut self, key: &str, v: &Spanned<u64>) -> u64 {
        self.require(key, v, |x| x >= 1, "must be a positive integer")
    }
}

/// A detector's `allow_clients`: sources it never counts (a known NAT,
/// forwarder or scanner), as addresses and prefixes. Short lists: a linear
/// scan, skipped entirely when empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetList(pub Vec<ipnet::IpNet>);

impl NetList {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        !self.0.is_empty() && self.0.iter().any(|n| n.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn is_positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_push_keyed_errors_and_keep_values() {
        let loc = Located {
            file: "p.toml",
            text: "",
        };
        let mut errors = Vec::new();
        let mut c = Check::new(Kind::Tunneling, &loc, &mut errors);
        assert_eq!(c.positive("a", &unset(2.0)), 2.0);
        assert_eq!(c.ratio("b", &unset(1.0)), 1.0);
        assert_eq!(c.at_least_one("c", &unset(1)), 1);
        assert!(c.ok());
        assert!(c.positive("a", &unset(f64::NAN)).is_nan());
        assert_eq!(c.at_least("d", &unset(1.0), 2.0, "w"), 1.0);
        assert_eq!(c.positive_at_least("e", &unset(0.0), -1.0, "w"), 0.0);
        assert_eq!(c.positive_int("f", &unset(0)), 0);
        assert!(!c.ok());
        let got: Vec<_> = errors
            .iter()
            .map(|e| (e.key.as_str(), e.message.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            [
                ("detectors.tunneling.a", "must be a positive number", 0),
                ("detectors.tunneling.d", "must be a number >= w (2)", 0),
                ("detectors.tunneling.e", "must be a number >= w (-1)", 0),
                ("detectors.tunneling.f", "must be a positive integer", 0),
            ]
        );
    }
}
