//! `QName`: a query name copied out of a message into a fixed-size inline
//! buffer (no heap), with the operations the hot path needs: per-suffix
//! case-insensitive hashes (for blocklist and per-domain keys) and RFC 1035
//! presentation output with escapes (for anything printed or serialised).
//! Owns the wire bounds on names; must not know where the name came from.

use std::fmt;

/// Longest name on the wire, including length octets and the root label.
pub const MAX_NAME_LEN: usize = 255;
/// Longest single label.
pub const MAX_LABEL_LEN: usize = 63;
/// Most labels a name of `MAX_NAME_LEN` can hold (excluding the root).
pub const MAX_LABELS: usize = 127;

/// A domain name, labels stored length-prefixed as on the wire (without the
/// terminating root label), original case preserved.
#[derive(Clone)]
pub struct QName {
    buf: [u8; MAX_NAME_LEN],
    len: u8,
    starts: [u8; MAX_LABELS],
    count: u8,
    /// `hash()`, once `seal` computed it (cleared by `push_label`): the
    /// decoder seals every question name, and each detector asks for it.
    hash: Option<u64>,
}

/// Error pushing a label that would break a wire bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    LabelTooLong,
    NameTooLong,
    EmptyLabel,
}

impl Default for QName {
    fn default() -> Self {
        Self::new()
    }
}

impl QName {
    pub const fn new() -> Self {
        QName {
            buf: [0; MAX_NAME_LEN],
            len: 0,
            starts: [0; MAX_LABELS],
            count: 0,
            hash: None,
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.count = 0;
    }

    /// Append a label (left to right, as on the wire).
    pub fn push_label(&mut self, label: &[u8]) -> Result<(), NameError> {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong);
        }
        let start = self.len as usize;
        // +1 for this label's length octet, +1 for the root octet still to come.
        if start + 1 + label.len() + 1 > MAX_NAME_LEN || self.count as usize >= MAX_LABELS {
            return Err(NameError::NameTooLong);
        }
        self.hash = None;
        self.buf[start] = label.len() as u8;
        self.buf[start + 1..start + 1 + label.len()].copy_from_slice(label);
        self.starts[self.count as usize] = start as u8;
        self.count += 1;
        self.len = (start + 1 + label.len()) as u8;
        Ok(())
    }

    /// Parse a presentation-format name ("www.Example.com", trailing dot
    /// optional, "." is the root). Supports `\.`, `\\` and `\DDD` escapes.
    pub fn from_text(text: &str) -> Result<QName, NameError> {
        let mut name = QName::new();
        let bytes = text.as_bytes();
        if bytes == b"." || bytes.is_empty() {
            return Ok(name);
        }
        let mut label = [0u8; MAX_LABEL_LEN + 1];
        let mut n = 0usize;
        let mut i = 0usize;
        while i < bytes.len() {
            let b = bytes[i];
            let (byte, step) = match b {
                b'.' => {
                    name.push_label(&label[..n])?;
                    n = 0;
                    i += 1;
                    continue;
                }
                b'\\' => match bytes.get(i + 1..i + 4) {
                    Some(d) if d.iter().all(u8::is_ascii_digit) => {
                        let v = (d[0] - b'0') as u32 * 100
                            + (d[1] - b'0') as u32 * 10
                            + (d[2] - b'0') as u32;
                        if v > 255 {
                            return Err(NameError::EmptyLabel);
                        }
                        (v as u8, 4)
                    }
                    _ => match bytes.get(i + 1) {
                        Some(&c) => (c, 2),
                        None => return Err(NameError::EmptyLabel),
                    },
                },
                _ => (b, 1),
            };
            if n >= MAX_LABEL_LEN {
                return Err(NameError::LabelTooLong);
            }
            label[n] = byte;
            n += 1;
            i += step;
        }
        if n > 0 {
            name.push_label(&label[..n])?;
        }
        Ok(name)
    }

    pub fn label_count(&self) -> usize {
        self.count as usize
    }

    pub fn is_root(&self) -> bool {
        self.count == 0
    }

    /// The labels as on the wire (length-prefixed, without the root
    /// octet), case kept: exactly identifies the name (`from_wire` gives it
    /// back).
    pub fn wire(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The name whose `wire()` is `wire`. Bytes that do not make a valid
    /// name (a label cut short, past a bound) end it there.
    pub fn from_wire(wire: &[u8]) -> QName {
        let mut name = QName::new();
        let mut rest = wire;
        while let Some((&n, tail)) = rest.split_first() {
            let n = usize::from(n);
            if n > tail.len() || name.push_label(&tail[..n]).is_err() {
                break;
            }
            rest = &tail[n..];
        }
        name
    }

    /// Wire length including the root octet.
    pub fn wire_len(&self) -> usize {
        self.len as usize + 1
    }

    /// Label `i` counted from the left (0 = leftmost).
    pub fn label(&self, i: usize) -> &[u8] {
        let start = self.starts[i] as usize;
        let len = self.buf[start] as usize;
        &self.buf[start + 1..start + 1 + len]
    }

    /// Labels left to right.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator + '_ {
        (0..self.label_count()).map(move |i| self.label(i))
    }

    /// Case-insensitive hash of the whole name.
    pub fn hash(&self) -> u64 {
        self.hash.unwrap_or_else(|| self.compute_hash())
    }

    /// Compute `hash()` once for the name as it is now.
    pub fn seal(&mut self) {
        self.hash = Some(self.compute_hash());
    }

    fn compute_hash(&self) -> u64 {
        self.labels().rev().fold(SUFFIX_SEED, suffix_hash_step)
    }

    /// Case-insensitive hashes of every suffix, shortest first:
    /// `(labels_in_suffix, hash)`, e.g. for `a.b.c`: `(1,h(c)), (2,h(b.c)), (3,h(a.b.c))`.
    /// The hash of a suffix equals `QName::from_text(suffix).hash()`.
    pub fn suffix_hashes(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let mut h = SUFFIX_SEED;
        self.labels().rev().enumerate().map(move |(i, label)| {
            h = suffix_hash_step(h, label);
            (i + 1, h)
        })
    }

    /// The suffix made of the last `n` labels, as a new name.
    pub fn suffix(&self, n: usize) -> QName {
        let mut out = QName::new();
        let count = self.label_count();
        for i in count.saturating_sub(n)..count {
            // Cannot fail: a suffix of a valid name is valid.
            let _ = out.push_label(self.label(i));
        }
        out
    }

    /// True when the last `n` labels of `self` equal `other` ignoring ASCII case.
    pub fn suffix_eq(&self, n: usize, other: &QName) -> bool {
        if other.label_count() != n || n > self.label_count() {
            return false;
        }
        let skip = self.label_count() - n;
        self.labels()
            .skip(skip)
            .zip(other.labels())
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// Lower-cased presentation form.
    pub fn to_lowercase_string(&self) -> String {
        let mut s = self.to_presentation();
        s.make_ascii_lowercase();
        s
    }

    /// The lower-case presentation form of the last `n` labels (the root
    /// when `n` is 0), held inline when it fits, rendered from the name in
    /// place (the registered domain of every query is rendered so).
    pub fn suffix_lowercase_presentation(&self, n: usize) -> ShortStr {
        let first = self.label_count().saturating_sub(n);
        self.with_presentation_from(first, |p| {
            p.make_ascii_lowercase();
            ShortStr::new(ascii_str(p))
        })
    }

    /// The presentation form (as `Display` writes it), built in one
    /// allocation: labels of plain characters are copied whole, only the
    /// rest goes through the escaping writer.
    pub fn to_presentation(&self) -> String {
        // One exact allocation; the presentation form is ASCII.
        self.with_presentation_from(0, |p| ascii_str(p).to_owned())
    }

    /// Run `f` on the presentation form of the labels from `first` on,
    /// rendered into a per-thread buffer (no allocation, no zeroing per name).
    fn with_presentation_from<R>(&self, first: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> =
                std::cell::RefCell::new(Vec::with_capacity(1024));
        }
        BUF.with_borrow_mut(|buf| {
            buf.clear();
            let mut w = PresBuf(buf);
            // Writing to a Vec cannot fail.
            let _ = self.write_presentation_from(first, &mut w);
            f(buf)
        })
    }

    /// The presentation form (as `Display` writes it) of the labels from
    /// `first` on (the suffix of `label_count() - first` labels; the root
    /// when none are left) to `w`: plain labels are copied as bytes, only
    /// the rest goes through the escaping writer.
    fn write_presentation_from(&self, first: usize, w: &mut PresBuf<'_>) -> fmt::Result {
        if first >= self.label_count() {
            return w.push(b".");
        }
        for (i, label) in self.labels().skip(first).enumerate() {
            if i > 0 {
                w.push(b".")?;
            }
            if label.iter().all(|&b| is_plain(b)) {
                w.push(label)?;
            } else {
                write_label_escaped(w, label)?;
            }
        }
        Ok(())
    }

    /// The labels, dot-separated and escaped: plain labels are written
    /// whole, only the rest byte by byte.
    fn write_labels<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                w.write_str(".")?;
            }
            match std::str::from_utf8(label) {
                Ok(plain) if label.iter().all(|&b| is_plain(b)) => w.write_str(plain)?,
                _ => write_label_escaped(w, label)?,
            }
        }
        Ok(())
    }
}

/// Seed of the suffix hash; fixed so every worker and process agrees.
pub const SUFFIX_SEED: u64 = 0x6a09_e667_f3bc_c908;

/// One step of the right-to-left name hash: fold a label (lower-cased) in.
#[inline]
pub fn suffix_hash_step(h: u64, label: &[u8]) -> u64 {
    let mut h = (h ^ label.len() as u64).wrapping_mul(0x100_0000_01b3);
    for &b in label {
        h = (h ^ b.to_ascii_lowercase() as u64).wrapping_mul(0x100_0000_01b3);
    }
    // Mix between labels so "ab.c" and "a.bc" differ beyond the length byte.
    h ^= h >> 29;
    h.wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// A presentation form rendered by `write_presentation_from`, as `str`. Every
/// byte it writes is printable ASCII (`is_plain` bytes, `.`, `\` and the
/// digits of `\DDD`), so the bytes need no UTF-8 validation: validating
/// every sample and registered-domain name cost about 4 % of a replay's
/// instructions under water torture (callgrind).
fn ascii_str(p: &[u8]) -> &str {
    debug_assert!(p.is_ascii(), "presentation form is ASCII");
    // SAFETY: `p` is the output of `write_presentation_from` (only ASCII, see
    // above and `write_label_escaped`), and ASCII is valid UTF-8.
    unsafe { trusted_str(p) }
}

/// `b` as `str` without validating it, for bytes UTF-8 by construction on
/// the hot path. Debug builds (tests, fuzzing) still validate.
///
/// # Safety
/// `b` must be valid UTF-8.
unsafe fn trusted_str(b: &[u8]) -> &str {
    if cfg!(debug_assertions) {
        return std::str::from_utf8(b).expect("bytes known to be UTF-8");
    }
    // SAFETY: the caller's promise.
    unsafe { std::str::from_utf8_unchecked(b) }
}

/// Where a presentation form is rendered: a reused buffer.
struct PresBuf<'a>(&'a mut Vec<u8>);

impl PresBuf<'_> {
    fn push(&mut self, b: &[u8]) -> fmt::Result {
        self.0.extend_from_slice(b);
        Ok(())
    }
}

impl fmt::Write for PresBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes())
    }
}

/// A byte written as itself in presentation form.
#[inline]
fn is_plain(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'.' | b'\\' | b'"')
}

/// Write one label in RFC 1035 presentation form: `.` and `\` escaped with a
/// backslash, bytes outside printable ASCII (and space, `"`) as `\DDD`.
pub fn write_label_escaped<W: fmt::Write>(out: &mut W, label: &[u8]) -> fmt::Result {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                out.write_char('\\')?;
                out.write_char(b as char)?;
            }
            _ if is_plain(b) => out.write_char(b as char)?,
            _ => write!(out, "\\{:03}", b)?,
        }
    }
    Ok(())
}

impl fmt::Display for QName {
    /// Presentation form without the trailing dot; the root is `.`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        self.write_labels(f)
    }
}

impl fmt::Debug for QName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QName({self})")
    }
}

impl PartialEq for QName {
    /// Case-insensitive, as DNS compares names.
    fn eq(&self, other: &Self) -> bool {
        self.label_count() == other.label_count()
            && self
                .labels()
                .zip(other.labels())
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

impl Eq for QName {}

/// Labels of `name`'s registered domain by the public suffix list (the `psl`
/// crate): `www.example.co.uk` -> 3 (`example.co.uk`). `None` when the name
/// is a public suffix itself (never key on one), the root, or too odd to
/// look up. No allocation: the lower-cased dotted form is built on the stack.
pub fn registered_labels(name: &QName) -> Option<usize> {
    if name.is_root() {
        return None;
    }
    // The list is walked from the right, label by label, and stops after
    // the few labels a rule can reach: only those are lower-cased (into
    // `buf`), and the rest of the name (under water torture, a long random
    // label) is never copied.
    let mut buf = [0u8; MAX_NAME_LEN];
    let mut labels = LowerLabels {
        name,
        next: name.label_count(),
        rest: &mut buf[..],
        odd: false,
    };
    let info = psl::Psl::find(&psl::List, &mut labels);
    if labels.odd {
        // A label holding a `.`: the dotted form splits it (as before).
        return registered_labels_dotted(name);
    }
    if info.len == 0 {
        return None;
    }
    // The suffix's labels: `info.len` bytes of them, dots included.
    let (mut len, mut suffix) = (0usize, 0usize);
    for label in name.labels().rev() {
        len += label.len() + usize::from(suffix > 0);
        suffix += 1;
        if len >= info.len {
            break;
        }
    }
    if len != info.len {
        return registered_labels_dotted(name);
    }
    // The registered domain is one label more than its public suffix.
    (suffix < name.label_count()).then_some(suffix + 1)
}

/// The labels of a name right to left, lower-cased where they hold
/// capitals (each into its own part of a buffer), for `psl`'s lookup;
/// `odd` is set when a label it was given holds a `.`.
struct LowerLabels<'a, 'n> {
    name: &'a QName,
    next: usize,
    rest: &'n mut [u8],
    odd: bool,
}

impl<'a, 'n: 'a> Iterator for LowerLabels<'a, 'n> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.next = self.next.checked_sub(1)?;
        let label: &'a [u8] = self.name.label(self.next);
        if label.contains(&b'.') {
            self.odd = true;
        }
        if !label.iter().any(u8::is_ascii_uppercase) {
            return Some(label);
        }
        let (lower, rest) = std::mem::take(&mut self.rest).split_at_mut(label.len());
        self.rest = rest;
        lower.copy_from_slice(label);
        lower.make_ascii_lowercase();
        Some(lower)
    }
}

/// `registered_labels` by the dotted, lower-cased form of the whole name
/// (where a label holds a `.`, the list sees it as two).
fn registered_labels_dotted(name: &QName) -> Option<usize> {
    let mut buf = [0u8; MAX_NAME_LEN];
    let mut len = 0usize;
    for (i, label) in name.labels().enumerate() {
        if i > 0 {
            *buf.get_mut(len)? = b'.';
            len += 1;
        }
        buf.get_mut(len..len + label.len())?.copy_from_slice(label);
        len += label.len();
    }
    let dotted = buf.get_mut(..len)?;
    dotted.make_ascii_lowercase();
    let dom = psl::domain(dotted)?;
    let labels = dom.as_bytes().iter().filter(|&&b| b == b'.').count() + 1;
    (labels <= name.label_count()).then_some(labels)
}

/// A short string held inline (no allocation), on the heap when longer.
/// Lives on the stack for one message; the size is the point.
pub struct ShortStr(Short);

/// Private, so that only `ShortStr::new` writes the bytes (`as_str` relies
/// on it).
#[allow(clippy::large_enum_variant)]
enum Short {
    Inline { len: u8, buf: [u8; 255] },
    Heap(Box<str>),
}

impl ShortStr {
    pub fn new(s: &str) -> ShortStr {
        if s.len() <= 255 {
            let mut buf = [0u8; 255];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            ShortStr(Short::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            ShortStr(Short::Heap(s.into()))
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: `new` copied these bytes from a `&str` whole and
            // nothing else writes them: valid UTF-8. Asked by every detector
            // of every message (the registered domain).
            Short::Inline { len, buf } => unsafe { trusted_str(&buf[..*len as usize]) },
            Short::Heap(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The label-wise lookup gives what the dotted form of the whole name
    /// gives: capitals, wildcard and exception rules, private suffixes,
    /// public suffixes alone, odd bytes and labels holding a dot.
    #[test]
    fn registered_labels_label_wise_equals_the_dotted_form() {
        let mut names: Vec<QName> = [
            "www.example.com",
            "WWW.Example.COM",
            "a.b.example.co.uk",
            "Example.Co.Uk",
            "co.uk",
            "uk",
            "com",
            "example",
            "x.y.www.ck",
            "www.ck",
            "a.b.ck",
            "b.ck",
            "city.kawasaki.jp",
            "x.city.kawasaki.jp",
            "x.y.kawasaki.jp",
            "bucket.s3.amazonaws.com",
            "a.b.github.io",
            "GitHub.IO",
            "qjh5jkecfyhvktr3dacbx7pdbxskoym7i3dzxnll6i7butdtywxd5b.19bb.t.tunnel-domain.example",
            "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.blogspot.com",
            "xn--80ak6aa92e.xn--p1ai",
            "a.xn--p1ai",
            "_dmarc.example.org",
        ]
        .iter()
        .map(|t| QName::from_text(t).unwrap())
        .collect();
        let mut odd = QName::new();
        for label in [&b"a.b"[..], b"Ex\\ample", b"co", b"uk"] {
            odd.push_label(label).unwrap();
        }
        names.push(odd);
        let mut dotted = QName::new();
        for label in [&b"www"[..], b"example.co", b"uk"] {
            dotted.push_label(label).unwrap();
        }
        names.push(dotted);
        let mut bytes = QName::new();
        for label in [&b"\x00\xff"[..], b"\xc3\xa9t\xc3\xa9", b"fr"] {
            bytes.push_label(label).unwrap();
        }
        names.push(bytes);
        names.push(QName::new());
        for name in &names {
            assert_eq!(
                registered_labels(name),
                registered_labels_dotted(name),
                "{name}"
            );
        }
        // Not vacuous: the cases differ among themselves.
        let found: std::collections::BTreeSet<_> = names.iter().map(registered_labels).collect();
        assert!(found.contains(&None) && found.contains(&Some(2)) && found.contains(&Some(3)));
    }

    #[test]
    fn presentation_equals_display() {
        let wire: &[&[u8]] = &[
            b"\x03www\x07Example\x03com\x00",
            b"\x00",
            b"\x04a.b\\\x03c\"d\x00",
            b"\x05\x00\xff \x7f~\x02xn\x00",
        ];
        for w in wire {
            let mut q = QName::default();
            let mut n = 0;
            let mut i = 0;
            while w[i] != 0 {
                let l = w[i] as usize;
                q.push_label(&w[i + 1..i + 1 + l]).unwrap();
                n += 1;
                i += 1 + l;
            }
            assert_eq!(q.label_count(), n);
            assert_eq!(q.to_presentation(), q.to_string());
            // The wire form gives the same name back, case and all.
            let back = QName::from_wire(q.wire());
            assert_eq!(back.wire(), q.wire());
            assert_eq!(back.to_presentation(), q.to_string());
        }
    }

    /// `from_wire` reads back what `wire` gave, and stops at bytes that do
    /// not make a name (sample names are read back from packed tallies).
    #[test]
    fn wire_form_reads_back_and_stops_at_junk() {
        for text in [
            ".",
            "a.example",
            "A.Example",
            "b\\.c.example",
            "ab.c",
            "a.bc",
        ] {
            let q = QName::from_text(text).unwrap();
            assert_eq!(QName::from_wire(q.wire()).to_presentation(), text);
        }
        // A label cut short ends the name before it; an empty label is
        // not pushed.
        assert_eq!(QName::from_wire(b"\x01a\x05ab").to_presentation(), "a");
        assert_eq!(QName::from_wire(b"\x01a\x00\x01b").to_presentation(), "a");
        assert_eq!(QName::from_wire(b"").to_presentation(), ".");
    }

    /// The registered domain is rendered from the name in place; it must
    /// read as the suffix built and displayed would (`Display`, a separate
    /// writer), lower-cased, escapes and all.
    #[test]
    fn suffix_presentation_in_place_matches_the_built_suffix() {
        let mut odd = QName::new();
        for label in [
            &b"A.b"[..],
            b"\\x",
            b"Caf\xc3\xa9",
            b"EXAMPLE",
            b"co",
            b"UK",
        ] {
            odd.push_label(label).unwrap();
        }
        for name in [
            QName::from_text("Www.Example.CO.uk").unwrap(),
            QName::new(),
            odd,
        ] {
            for n in 0..=name.label_count() + 1 {
                assert_eq!(
                    name.suffix_lowercase_presentation(n).as_str(),
                    name.suffix(n).to_string().to_ascii_lowercase(),
                    "{name} {n}"
                );
            }
        }
    }

    #[test]
    fn suffix_hashes_match_parsed_suffixes() {
        let n = QName::from_text("WWW.Example.COM").unwrap();
        let hs: Vec<_> = n.suffix_hashes().collect();
        assert_eq!(hs.len(), 3);
        assert_eq!(hs[0].1, QName::from_text("com").unwrap().hash());
        assert_eq!(hs[1].1, QName::from_text("example.com.").unwrap().hash());
        assert_eq!(hs[2].1, n.hash());
        assert_ne!(
            QName::from_text("ab.c").unwrap().hash(),
            QName::from_text("a.bc").unwrap().hash()
        );
    }

    #[test]
    fn presentation_escapes_hostile_bytes() {
        let mut n = QName::new();
        n.push_label(b"a.b").unwrap();
        n.push_label(b"x\\\"\n\x1b[31m").unwrap();
        n.push_label(b"com").unwrap();
        assert_eq!(n.to_string(), "a\\.b.x\\\\\\034\\010\\027[31m.com");
        assert_eq!(QName::from_text(&n.to_string()).unwrap(), n);
        assert_eq!(QName::new().to_string(), ".");
    }

    #[test]
    fn bounds_are_enforced() {
        let mut n = QName::new();
        assert_eq!(n.push_label(&[b'a'; 64]), Err(NameError::LabelTooLong));
        for _ in 0..3 {
            n.push_label(&[b'a'; 63]).unwrap();
        }
        // 3*64 = 192 octets used; a 62-octet label still fits (192+63+1 = 256 > 255 fails).
        assert_eq!(n.push_label(&[b'a'; 62]), Err(NameError::NameTooLong));
        n.push_label(&[b'a'; 61]).unwrap();
        assert_eq!(n.wire_len(), 255);
    }
}
