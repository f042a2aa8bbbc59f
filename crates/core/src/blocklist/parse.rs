//! Line parser for the blocklist formats. Format is detected per line; the
//! parser only extracts raw names (with the allow/exception flag) and
//! rejections, and `normalize` turns a raw name into the stored form. The few
//! bits of state across lines are the zone-file `$ORIGIN`/apex and the
//! multi-line SOA `( ... )` and BIND `zone { ... }` continuations.

use std::fmt;
use std::net::IpAddr;

use crate::dns::name::{NameError, QName};

/// Longest name kept, in presentation form without the trailing dot.
pub const MAX_TEXT_LEN: usize = 253;

/// Why a line (or one name on a multi-name line) was not turned into an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    Empty,
    IpAddress,
    NumericTld,
    NonAscii,
    BadChar(u8),
    Wildcard,
    EmptyLabel,
    LabelTooLong,
    NameTooLong,
    UrlPath,
    Modifier,
    NoSeparator,
    UnsupportedRule,
    AllDomains,
    NotBlocking,
    NonQnameTrigger,
    OutsideZone,
    Include,
    Unrecognised,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Empty => f.write_str("empty name"),
            Reject::IpAddress => f.write_str("ip address, not a domain"),
            Reject::NumericTld => f.write_str("all-numeric top-level label"),
            Reject::NonAscii => f.write_str("non-ascii name (write IDNs as punycode xn--)"),
            Reject::BadChar(b) => write!(f, "invalid character {:?} in name", *b as char),
            Reject::Wildcard => f.write_str("wildcard other than a leading `*.`"),
            Reject::EmptyLabel => f.write_str("empty label"),
            Reject::LabelTooLong => f.write_str("label longer than 63 octets"),
            Reject::NameTooLong => f.write_str("name longer than 253 characters"),
            Reject::UrlPath => {
                f.write_str("rule with a url path, port or query (not a whole domain)")
            }
            Reject::Modifier => f.write_str("rule with an unsupported $modifier"),
            Reject::NoSeparator => f.write_str("adblock rule without `^` after the domain"),
            Reject::UnsupportedRule => f.write_str("unsupported adblock rule"),
            Reject::AllDomains => f.write_str("rule for all domains (`#`)"),
            Reject::NotBlocking => {
                f.write_str("entry that does not block (forward/tcp-only/nodefault)")
            }
            Reject::NonQnameTrigger => {
                f.write_str("rpz trigger other than a query name (rpz-ip, rpz-nsdname...)")
            }
            Reject::OutsideZone => f.write_str("name outside the zone origin"),
            Reject::Include => f.write_str("$INCLUDE/$GENERATE not supported"),
            Reject::Unrecognised => f.write_str("unrecognised line"),
        }
    }
}

/// What a line produced: a raw name (`allow` for exception syntax such as
/// `@@||d^`), or a rejection.
pub enum Item<'a> {
    Name { raw: &'a [u8], allow: bool },
    Reject(Reject),
}

/// Names hosts files map to loopback by convention; never entries.
const LOCAL_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "localhost4",
    "localhost4.localdomain4",
    "localhost6",
    "localhost6.localdomain6",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

const RR_TYPES: &[&str] = &[
    "A",
    "AAAA",
    "CNAME",
    "DNAME",
    "NS",
    "SOA",
    "TXT",
    "MX",
    "PTR",
    "SRV",
    "HINFO",
    "CAA",
    "HTTPS",
    "SVCB",
    "NAPTR",
    "DS",
    "DNSKEY",
    "RRSIG",
    "NSEC",
    "NSEC3",
    "NSEC3PARAM",
    "TLSA",
    "LOC",
    "SPF",
];

const RR_CLASSES: &[&str] = &["IN", "CH", "HS", "CS"];

/// AdBlock modifiers that keep a `||d^` rule a whole-domain block.
const SIMPLE_MODIFIERS: &[&str] = &["important", "all", "document", "doc"];

/// Per-file parser state.
#[derive(Default)]
pub struct LineParser {
    /// Current `$ORIGIN`, absolute, lower-case, no trailing dot ("" = root).
    origin: Option<String>,
    /// Zone apex (SOA owner, else the first `$ORIGIN`); RPZ triggers are
    /// record names relative to it.
    apex: Option<String>,
    soa_seen: bool,
    /// Inside a multi-line `( ... )` record.
    paren_depth: i32,
    /// Inside a BIND `zone "d" { ... }` spanning lines.
    brace_depth: i32,
    /// Owner of the previous zone record (for lines starting with blanks).
    last_owner: String,
    /// Scratch for building RPZ triggers.
    buf: String,
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Cut a `#` comment that follows a blank (`d # note`, `0.0.0.0 d #note`);
/// a `#` glued to other text (`address=/d/#`, `d##.ad`) is kept.
fn cut_hash_comment(s: &[u8]) -> &[u8] {
    for i in 1..s.len() {
        if s[i] == b'#' && is_blank(s[i - 1]) {
            return &s[..i];
        }
    }
    s
}

fn tokens(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
}

fn eq_any(token: &[u8], set: &[&str]) -> bool {
    set.iter().any(|s| s.as_bytes().eq_ignore_ascii_case(token))
}

fn parse_ip(token: &[u8]) -> Option<IpAddr> {
    // Fast reject: IPs start with a hex digit or ':'.
    match token.first() {
        Some(b) if b.is_ascii_hexdigit() || *b == b':' => {}
        _ => return None,
    }
    let s = std::str::from_utf8(token).ok()?;
    let s = s.split('%').next().unwrap_or(s); // fe80::1%lo0
    s.parse().ok()
}

fn is_ttl(token: &[u8]) -> bool {
    token.first().is_some_and(u8::is_ascii_digit)
        && token
            .iter()
            .all(|b| b.is_ascii_digit() || b"smhdwSMHDW".contains(b))
}

fn count(s: &[u8], c: u8) -> i32 {
    s.iter().filter(|&&b| b == c).count() as i32
}

impl LineParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse one line (without its `\n`), reporting names and rejections.
    pub fn parse_line(&mut self, raw_line: &[u8], emit: &mut dyn FnMut(Item<'_>)) {
        let raw_line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        let line = trim(raw_line);
        if self.brace_depth > 0 {
            self.brace_depth += count(line, b'{') - count(line, b'}');
            return;
        }
        if self.paren_depth > 0 {
            let code = line.split(|&b| b == b';').next().unwrap_or(line);
            self.paren_depth += count(code, b'(') - count(code, b')');
            return;
        }
        let Some(&first) = line.first() else { return };
        if matches!(first, b'#' | b'!' | b';') || line.starts_with(b"//") {
            return;
        }
        if first == b'[' && line.ends_with(b"]") {
            return; // [Adblock Plus 2.0]
        }
        let line = trim(cut_hash_comment(line));
        if line.starts_with(b"||") || line.starts_with(b"@@") {
            return emit(parse_adblock(line));
        }
        if first == b'|' || first == b'/' {
            return emit(Item::Reject(Reject::UnsupportedRule));
        }
        if let Some(rest) = line.strip_prefix(b"address=") {
            return parse_dnsmasq(rest, true, emit);
        }
        if let Some(rest) = line
            .strip_prefix(b"server=")
            .or_else(|| line.strip_prefix(b"local="))
        {
            return parse_dnsmasq(rest, false, emit);
        }
        if let Some(rest) = line.strip_prefix(b"local-zone:") {
            return emit(parse_unbound(rest));
        }
        if line.starts_with(b"local-data:")
            || line.starts_with(b"local-data-ptr:")
            || line == b"server:"
            || line.starts_with(b"include:")
        {
            return; // unbound structure around local-zone lines
        }
        if line.starts_with(b"zone") && (line.contains(&b'"') || line.contains(&b'{')) {
            return self.parse_bind(line, emit);
        }
        if first == b'$' {
            return self.parse_directive(line, emit);
        }
        let owner_omitted = raw_line.first().copied().is_some_and(is_blank);
        let mut toks = tokens(line);
        let Some(t0) = toks.next() else { return };
        let t1 = toks.next();
        if t1.is_some() && parse_ip(t0).is_some() {
            // hosts: IP followed by names, `# comment` already cut
            for name in tokens(line).skip(1) {
                if !eq_any(name, LOCAL_NAMES) {
                    emit(Item::Name {
                        raw: name,
                        allow: false,
                    });
                }
            }
            return;
        }
        if t1.is_none() {
            return emit(Item::Name {
                raw: t0,
                allow: false,
            });
        }
        let type_window = if owner_omitted { 3 } else { 4 };
        if tokens(line).take(type_window).any(|t| eq_any(t, RR_TYPES)) {
            return self.parse_record(line, owner_omitted, emit);
        }
        emit(Item::Reject(Reject::Unrecognised))
    }

    fn parse_bind(&mut self, line: &[u8], emit: &mut dyn FnMut(Item<'_>)) {
        let rest = trim(&line[4..]);
        let name = if let Some(q) = rest.strip_prefix(b"\"") {
            match q.iter().position(|&b| b == b'"') {
                Some(end) => &q[..end],
                None => return emit(Item::Reject(Reject::Unrecognised)),
            }
        } else {
            let end = rest
                .iter()
                .position(|&b| b.is_ascii_whitespace() || b == b'{')
                .unwrap_or(rest.len());
            &rest[..end]
        };
        let depth = count(line, b'{') - count(line, b'}');
        if depth > 0 {
            self.brace_depth = depth;
        }
        emit(Item::Name {
            raw: name,
            allow: false,
        })
    }

    fn parse_directive(&mut self, line: &[u8], emit: &mut dyn FnMut(Item<'_>)) {
        let code = line.split(|&b| b == b';').next().unwrap_or(line);
        let mut toks = tokens(code);
        let dir = toks.next().unwrap_or_default();
        if dir.eq_ignore_ascii_case(b"$ORIGIN") {
            let Some(arg) = toks.next() else {
                return emit(Item::Reject(Reject::Unrecognised));
            };
            let abs = self.absolute(arg);
            if self.apex.is_none() && !self.soa_seen {
                self.apex = abs.clone();
            }
            self.origin = abs;
        } else if dir.eq_ignore_ascii_case(b"$TTL") {
            // no effect on entries
        } else if dir.eq_ignore_ascii_case(b"$INCLUDE") || dir.eq_ignore_ascii_case(b"$GENERATE") {
            emit(Item::Reject(Reject::Include))
        } else {
            emit(Item::Reject(Reject::Unrecognised))
        }
    }

    /// Resolve a zone-file name against `$ORIGIN`: lower-case, no trailing
    /// dot, "" for the root. `None` when relative and no origin is known
    /// (then only `@` is unresolvable; other names are taken as they are).
    fn absolute(&self, name: &[u8]) -> Option<String> {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        if lower == "@" {
            return self.origin.clone();
        }
        if let Some(abs) = lower.strip_suffix('.') {
            return Some(abs.to_string());
        }
        Some(match self.origin.as_deref() {
            Some("") | None => lower,
            Some(o) => format!("{lower}.{o}"),
        })
    }

    fn parse_record(&mut self, line: &[u8], owner_omitted: bool, emit: &mut dyn FnMut(Item<'_>)) {
        let code = line.split(|&b| b == b';').next().unwrap_or(line);
        let depth = count(code, b'(') - count(code, b')');
        if depth > 0 {
            self.paren_depth = depth;
        }
        let mut toks = tokens(code).peekable();
        if !owner_omitted {
            let owner = toks.next().unwrap_or_default();
            self.last_owner.clear();
            self.last_owner.push_str(&String::from_utf8_lossy(owner));
        }
        // [ttl] [class] type, in either order
        let mut rtype: &[u8] = b"";
        for t in toks.by_ref() {
            if is_ttl(t) || eq_any(t, RR_CLASSES) {
                continue;
            }
            rtype = t;
            break;
        }
        if self.last_owner.is_empty() {
            return emit(Item::Reject(Reject::Unrecognised)); // blank owner, no previous record
        }
        let owner = std::mem::take(&mut self.last_owner);
        let full = self.absolute(owner.as_bytes());
        self.last_owner = owner;
        if rtype.eq_ignore_ascii_case(b"SOA") {
            if !self.soa_seen {
                self.soa_seen = true;
                if full.is_some() {
                    self.apex = full;
                }
            }
            return;
        }
        if rtype.eq_ignore_ascii_case(b"NS") {
            return;
        }
        let mut allow = false;
        if rtype.eq_ignore_ascii_case(b"CNAME") {
            let target = toks.next().unwrap_or_default();
            let target = target.strip_suffix(b".").unwrap_or(target);
            if target.eq_ignore_ascii_case(b"rpz-passthru") {
                allow = true;
            } else if target.eq_ignore_ascii_case(b"rpz-tcp-only") {
                return emit(Item::Reject(Reject::NotBlocking));
            }
            // ".", "*.", "rpz-drop." and walled-garden redirects all block.
        }
        // Any other data (A, AAAA, TXT...) is a local-data override: a block.
        let Some(full) = full else { return }; // `@` with unknown origin: apex
        let trigger = match self.apex.as_deref() {
            None | Some("") => full.as_str(),
            Some(apex) => {
                if full == apex {
                    return; // apex records
                }
                match full.strip_suffix(apex).and_then(|s| s.strip_suffix('.')) {
                    Some(t) => t,
                    None => return emit(Item::Reject(Reject::OutsideZone)),
                }
            }
        };
        if trigger.is_empty() {
            return;
        }
        let last = trigger.rsplit('.').next().unwrap_or(trigger);
        if matches!(
            last,
            "rpz-ip" | "rpz-nsip" | "rpz-nsdname" | "rpz-client-ip"
        ) {
            return emit(Item::Reject(Reject::NonQnameTrigger));
        }
        self.buf.clear();
        self.buf.push_str(trigger);
        emit(Item::Name {
            raw: self.buf.as_bytes(),
            allow,
        })
    }
}

fn parse_adblock(line: &[u8]) -> Item<'_> {
    let (allow, rule) = match line.strip_prefix(b"@@") {
        Some(r) => (true, r),
        None => (false, line),
    };
    let Some(body) = rule.strip_prefix(b"||") else {
        return Item::Reject(Reject::UnsupportedRule);
    };
    let end = body
        .iter()
        .position(|b| b"^$/|*?:".contains(b))
        .unwrap_or(body.len());
    let (domain, tail) = body.split_at(end);
    let tail = match tail.first() {
        Some(b'^') => &tail[1..],
        Some(b'*') => return Item::Reject(Reject::Wildcard),
        Some(b'/' | b'?' | b':') => return Item::Reject(Reject::UrlPath),
        _ => return Item::Reject(Reject::NoSeparator),
    };
    let tail = tail.strip_prefix(b"|").unwrap_or(tail);
    if !tail.is_empty() {
        let Some(mods) = tail.strip_prefix(b"$") else {
            return Item::Reject(if tail.contains(&b'*') {
                Reject::Wildcard
            } else {
                Reject::UrlPath
            });
        };
        if !mods
            .split(|&b| b == b',')
            .all(|m| eq_any(trim(m), SIMPLE_MODIFIERS))
        {
            return Item::Reject(Reject::Modifier);
        }
    }
    Item::Name { raw: domain, allow }
}

/// `address=/d1/d2/target` (always a block: NXDOMAIN, null or sinkhole) and
/// `server=/d/` / `local=/d/` (no upstream: answered locally = NXDOMAIN);
/// `server=/d/upstream` forwards and is not a block.
fn parse_dnsmasq(rest: &[u8], address: bool, emit: &mut dyn FnMut(Item<'_>)) {
    let Some(rest) = rest.strip_prefix(b"/") else {
        return emit(Item::Reject(Reject::Unrecognised));
    };
    let Some(last_slash) = rest.iter().rposition(|&b| b == b'/') else {
        return emit(Item::Reject(Reject::Unrecognised));
    };
    let (domains, target) = (&rest[..last_slash], trim(&rest[last_slash + 1..]));
    if !address && !target.is_empty() {
        return emit(Item::Reject(Reject::NotBlocking));
    }
    for d in domains.split(|&b| b == b'/') {
        if d == b"#" {
            emit(Item::Reject(Reject::AllDomains));
        } else {
            emit(Item::Name {
                raw: d,
                allow: false,
            });
        }
    }
}

/// `local-zone: "d" type`: blocking types give block entries, the
/// transparent family (how unbound punches holes) gives allow entries.
fn parse_unbound(rest: &[u8]) -> Item<'_> {
    let rest = trim(rest);
    let (name, after) = if let Some(q) = rest.strip_prefix(b"\"") {
        match q.iter().position(|&b| b == b'"') {
            Some(end) => (&q[..end], &q[end + 1..]),
            None => return Item::Reject(Reject::Unrecognised),
        }
    } else {
        let end = rest
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len());
        (&rest[..end], &rest[end..])
    };
    let ztype = tokens(after).next().unwrap_or_default();
    const BLOCK: &[&str] = &[
        "deny",
        "refuse",
        "static",
        "redirect",
        "always_refuse",
        "always_nxdomain",
        "always_nodata",
        "always_null",
        "always_deny",
        "inform_deny",
        "inform_redirect",
    ];
    const PASS: &[&str] = &[
        "transparent",
        "typetransparent",
        "always_transparent",
        "inform",
    ];
    if eq_any(ztype, BLOCK) {
        Item::Name {
            raw: name,
            allow: false,
        }
    } else if eq_any(ztype, PASS) {
        Item::Name {
            raw: name,
            allow: true,
        }
    } else {
        Item::Reject(Reject::NotBlocking)
    }
}

/// A validated entry: lower-case presentation text (appended to `out`), its
/// suffix hash and label count.
pub struct Normalized {
    pub hash: u64,
    pub labels: u8,
}

/// Validate a raw name and append its stored form to `out` (left untouched
/// on error). A leading `*.` is dropped (suffix matching already covers
/// subdomains), as is one trailing dot. Allowed bytes: ASCII letters,
/// digits, `-`, `_`; punycode labels pass through as they are.
pub fn normalize(raw: &[u8], out: &mut String) -> Result<Normalized, Reject> {
    let raw = raw.strip_suffix(b".").unwrap_or(raw);
    let raw = raw.strip_prefix(b"*.").unwrap_or(raw);
    if raw.is_empty() {
        return Err(Reject::Empty);
    }
    if raw.len() > MAX_TEXT_LEN {
        return Err(Reject::NameTooLong);
    }
    let mut buf = [0u8; MAX_TEXT_LEN];
    for (i, &b) in raw.iter().enumerate() {
        buf[i] = match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => b,
            b'A'..=b'Z' => b.to_ascii_lowercase(),
            b'*' => return Err(Reject::Wildcard),
            b'/' | b'?' => return Err(Reject::UrlPath),
            b':' if parse_ip(raw).is_some() => return Err(Reject::IpAddress),
            0x80.. => return Err(Reject::NonAscii),
            _ => return Err(Reject::BadChar(b)),
        };
    }
    let text = &buf[..raw.len()];
    if text.ends_with(b".") {
        return Err(Reject::EmptyLabel); // "a.." (one trailing dot already dropped)
    }
    // Only ASCII was copied.
    let text = std::str::from_utf8(text).map_err(|_| Reject::NonAscii)?;
    let tld = text.rsplit('.').next().unwrap_or(text);
    if !tld.is_empty() && tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(if text.parse::<std::net::Ipv4Addr>().is_ok() {
            Reject::IpAddress
        } else {
            Reject::NumericTld
        });
    }
    let name = QName::from_text(text).map_err(|e| match e {
        NameError::EmptyLabel => Reject::EmptyLabel,
        NameError::LabelTooLong => Reject::LabelTooLong,
        NameError::NameTooLong => Reject::NameTooLong,
    })?;
    if name.is_root() {
        return Err(Reject::Empty);
    }
    out.push_str(text);
    Ok(Normalized {
        hash: name.hash(),
        labels: name.label_count() as u8,
    })
}
