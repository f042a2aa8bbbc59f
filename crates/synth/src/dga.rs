//! Domain generation algorithms of ten public malware families, written
//! from the published reverse-engineered descriptions (Johannes Bader's
//! collection, github.com/baderj/domain_generation_algorithms, and the
//! write-ups it cites), for labelled test traffic of the `dga` detector.
//! Each takes a seed (standing in for the family's date or configuration
//! seed) and returns registered domains. Fixed arithmetic, no wall clock:
//! the same seed gives the same names.
//!
//! | family | names |
//! |---|---|
//! | banjori | 4 leading letters of a long base name mutated in turn |
//! | corebot | 12-23 of a-y and 0-8 (LCG), under ddns.net |
//! | dircrypt | 8-20 letters (Park-Miller), .com |
//! | kraken | 6-11 letters (LCG), under dynamic-DNS zones |
//! | necurs | 7-21 letters (shift/xor mixing), 43 TLDs |
//! | ramnit | 8-19 letters (Park-Miller, reseeded per name), .com |
//! | simda | 7 letters, consonant/vowel alternating (pronounceable) |
//! | suppobox | two dictionary words joined, .net (word lists) |
//! | symmi | 8-15 letters, vowel/consonant alternating, under ddns.net |
//! | tinba | 12 letters chained from the previous name, .com |
//!
//! simda, symmi and suppobox make pronounceable or dictionary names on
//! purpose: lexical detection is weakest there, and the evaluation says so.

/// The families, by name.
pub const FAMILIES: [&str; 10] = [
    "banjori", "corebot", "dircrypt", "kraken", "necurs", "ramnit", "simda", "suppobox", "symmi",
    "tinba",
];

/// `n` registered domains of `family` for `seed` (empty for an unknown
/// family).
pub fn generate(family: &str, seed: u64, n: usize) -> Vec<String> {
    let s = seed as u32;
    match family {
        "banjori" => banjori(s, n),
        "corebot" => corebot(s, n),
        "dircrypt" => park_miller_names(s.wrapping_mul(2_654_435_761) | 1, n, 13, 26, false),
        "kraken" => kraken(s, n),
        "necurs" => necurs(seed, n),
        "ramnit" => park_miller_names(s.wrapping_mul(2_246_822_519) | 1, n, 12, 25, true),
        "simda" => simda(s, n),
        "suppobox" => suppobox(s, n),
        "symmi" => symmi(s, n),
        "tinba" => tinba(s, n),
        _ => Vec::new(),
    }
}

fn park_miller(v: &mut u32, modulus: u32) -> u32 {
    let ix = *v as i64;
    let ix = (16807 * (ix % 127_773) - 2836 * (ix / 127_773)) as u32;
    *v = ix;
    ix % modulus
}

/// Dircrypt (len 8 + r%13, letters r%26) and Ramnit (len 8 + r%12, letters
/// r%25, reseeded from the product of two states after each name).
fn park_miller_names(seed: u32, n: usize, len_mod: u32, alpha: u32, ramnit: bool) -> Vec<String> {
    let mut v = seed;
    (0..n)
        .map(|_| {
            let seed_a = v;
            let len = park_miller(&mut v, len_mod) + 8;
            let seed_b = v;
            let name: String = (0..len)
                .map(|_| (b'a' + park_miller(&mut v, alpha) as u8) as char)
                .collect();
            if ramnit {
                let m = seed_a as u64 * seed_b as u64;
                v = ((m + (m >> 32)) & 0xffff_ffff) as u32;
            }
            format!("{name}.com")
        })
        .collect()
}

fn banjori(seed: u32, n: usize) -> Vec<String> {
    let bases = [
        "earnestnessbiophysicalohax",
        "andersonmilligansoftware",
        "bigbrotherkaiserhofwien",
    ];
    let mut d: Vec<u8> = bases[seed as usize % bases.len()].bytes().collect();
    let map = |s: u32| b'a' + ((s as i64 - b'a' as i64).rem_euclid(26)) as u8;
    // Skip ahead by the seed so seeds differ.
    let mut out = Vec::with_capacity(n);
    for i in 0..(n + (seed % 97) as usize) {
        d[0] = map(d[0] as u32 + d[3] as u32);
        d[1] = map(d[0] as u32 + 2 * d[1] as u32);
        d[2] = map(d[0] as u32 + d[2] as u32 - 1);
        d[3] = map(d[1] as u32 + d[2] as u32 + d[3] as u32);
        if i >= (seed % 97) as usize {
            out.push(format!("{}.com", String::from_utf8_lossy(&d)));
        }
    }
    out
}

fn corebot(seed: u32, n: usize) -> Vec<String> {
    // As published: a..y and 0..8 (the family's ranges exclude their ends).
    #[allow(clippy::almost_complete_range)]
    let charset: Vec<u8> = (b'a'..b'z').chain(b'0'..b'9').collect();
    let mut r: u32 = 0x1DBA_8930u32.wrapping_add(seed);
    let mut next = || {
        r = r.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        r
    };
    (0..n)
        .map(|_| {
            let len = 12 + next() % 12;
            let name: String = (0..len)
                .map(|_| charset[(next() % charset.len() as u32) as usize] as char)
                .collect();
            format!("{name}.ddns.net")
        })
        .collect()
}

fn kraken(seed: u32, n: usize) -> Vec<String> {
    let zones = ["dyndns.org", "yi.org", "dynserv.com", "mooo.com"];
    let rand = |r: i32| 1_103_515_245i32.wrapping_mul(r).wrapping_add(12_435);
    let crop = |r: i32| (r / 256).rem_euclid(32_768);
    (0..n)
        .map(|i| {
            let nr = (i as i64 + 1_000_015) as i32;
            let x = nr
                .wrapping_mul(nr.wrapping_add(7))
                .wrapping_mul(nr.wrapping_add(12))
                / 9;
            let y = nr.wrapping_mul(nr.wrapping_add(1));
            let mut r = x.wrapping_add(y).wrapping_add(seed as i32 ^ -0x0FCF_BF88);
            let mut rands = [0i32; 3];
            for v in &mut rands {
                r = rand(r);
                *v = crop(r);
            }
            let len = (rands[0].wrapping_mul(rands[1]).wrapping_sub(rands[2])).rem_euclid(6) + 6;
            let name: String = (0..len)
                .map(|_| {
                    r = rand(r);
                    (b'a' + (crop(r) % 26) as u8) as char
                })
                .collect();
            format!("{name}.{}", zones[nr as usize % 4])
        })
        .collect()
}

fn necurs(seed: u64, n: usize) -> Vec<String> {
    fn pr(mut v: u64) -> u64 {
        let loops = (v & 0x7f) + 21;
        for i in 0..loops {
            v = v.wrapping_add(
                (v.wrapping_mul(7) ^ (v << 15))
                    .wrapping_add(8 * i)
                    .wrapping_sub(v >> 5),
            );
        }
        v
    }
    let tlds = [
        "tj", "in", "jp", "tw", "ac", "cm", "la", "mn", "so", "sh", "sc", "nu", "nf", "mu", "ms",
        "mx", "ki", "im", "cx", "cc", "tv", "bz", "me", "eu", "de", "ru", "co", "su", "pw", "kz",
        "sx", "us", "ug", "ir", "to", "ga", "com", "net", "org", "biz", "xxx", "pro", "bit",
    ];
    let base = pr(pr(2024u64.wrapping_add(seed)) + 43690 + 11);
    (0..n as u64)
        .map(|seq| {
            let mut v = pr(pr(base.wrapping_add(seq)).wrapping_add(9));
            let len = v % 15 + 7;
            let mut name = String::new();
            for i in 0..len {
                v = pr(v.wrapping_add(i));
                name.push((b'a' + (v % 25) as u8) as char);
                v = pr(v.wrapping_add(0xAB_BEDF));
            }
            format!("{name}.{}", tlds[(v % 43) as usize])
        })
        .collect()
}

fn simda(seed: u32, n: usize) -> Vec<String> {
    let consonants = b"qwrtpsdfghjklzxcvbnmv";
    let vowels = b"eyuioa";
    let step: u32 = b"1676d5775e05c50b46baa5579d4fc7"
        .iter()
        .map(|&b| b as u32)
        .sum();
    let mut base: u32 = 0x45AE_94B2u32.wrapping_add(seed.wrapping_mul(7919));
    (0..n)
        .map(|_| {
            base = base.wrapping_add(step);
            let name: String = (0..7u32)
                .map(|i| {
                    let idx = base / (3 + 2 * i);
                    if i % 2 == 0 {
                        consonants[(idx % 20) as usize] as char
                    } else {
                        vowels[(idx % 6) as usize] as char
                    }
                })
                .collect();
            format!("{name}.com")
        })
        .collect()
}

fn suppobox(seed: u32, n: usize) -> Vec<String> {
    // Stand-in word list (the family's own lists ship with its samples):
    // common English words, as the originals are.
    const WORDS: [&str; 64] = [
        "able", "about", "above", "action", "after", "again", "almost", "along", "answer",
        "around", "battle", "beauty", "became", "before", "behind", "below", "better", "black",
        "bright", "broken", "brother", "called", "center", "change", "circle", "class", "clear",
        "common", "country", "course", "danger", "decide", "degree", "differ", "direct", "doctor",
        "double", "during", "early", "earth", "either", "enemy", "energy", "engine", "enough",
        "equal", "evening", "event", "every", "except", "family", "father", "figure", "finger",
        "flower", "follow", "forest", "friend", "garden", "gather", "general", "govern", "ground",
        "group",
    ];
    let mut x = seed.wrapping_mul(2_654_435_761) >> 9;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(1);
            let h = x.wrapping_mul(0x9E37_79B9);
            let a = WORDS[(h >> 7) as usize % WORDS.len()];
            let b = WORDS[(h >> 17) as usize % WORDS.len()];
            format!("{a}{b}.net")
        })
        .collect()
}

fn symmi(seed: u32, n: usize) -> Vec<String> {
    let letters: [&[u8]; 2] = [b"aeiouy", b"bcdfghklmnpqrstvwxz"];
    let mut r = seed.wrapping_mul(10_000).wrapping_add(2024 + 42);
    let mut rand = move || {
        r = r.wrapping_mul(214_013).wrapping_add(2_531_011);
        (r >> 16) & 0x7fff
    };
    (0..n)
        .map(|_| {
            let len = 8 + rand() % 8;
            let mut name = String::new();
            let mut off1 = 0;
            for i in 0..len {
                if i % 2 == 0 {
                    off1 = if rand() & 0x100 == 0 { 0 } else { 1 };
                }
                let s = rand();
                let set = letters[((off1 + i) % 2) as usize];
                name.push(set[(s as usize) % (set.len() - 1)] as char);
            }
            format!("{name}.ddns.net")
        })
        .collect()
}

fn tinba(seed: u32, n: usize) -> Vec<String> {
    let key = b"oGkS3w3sGGOGG7oc";
    let mut seed_sum: u32 = key.iter().map(|&b| b as u32).sum::<u32>() + seed;
    let mut domain: Vec<u8> = b"ssrgwnrmgrxe".to_vec();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut tmp: u32 = key[15] as u32;
        let mut next = Vec::with_capacity(12);
        for i in 0..12 {
            let after = domain.get(i + 1).copied().unwrap_or(b'.') as u32;
            loop {
                tmp = tmp.wrapping_add(domain[i] as u32);
                tmp ^= seed_sum & 0xff;
                tmp = tmp.wrapping_add(after) & 0xff;
                if tmp > 0x61 && tmp < 0x7a {
                    next.push(tmp as u8);
                    break;
                }
                seed_sum = seed_sum.wrapping_add(1);
            }
        }
        domain = next;
        out.push(format!("{}.com", String::from_utf8_lossy(&domain)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_makes_distinct_valid_names() {
        for f in FAMILIES {
            let a = generate(f, 1, 50);
            assert_eq!(a.len(), 50, "{f}");
            assert_eq!(a, generate(f, 1, 50), "{f}: deterministic");
            assert_ne!(a, generate(f, 2, 50), "{f}: seeds differ");
            let distinct: std::collections::HashSet<_> = a.iter().collect();
            assert!(distinct.len() >= 40, "{f}: {} distinct", distinct.len());
            for n in &a {
                let label = n.split('.').next().unwrap();
                assert!(
                    (3..=63).contains(&label.len())
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                    "{f}: {n}"
                );
            }
        }
        assert!(generate("nope", 1, 5).is_empty());
        // The published first Ramnit-style arithmetic: lengths 8..=19.
        assert!(
            generate("ramnit", 7, 100)
                .iter()
                .all(|n| (12..=23).contains(&n.len()))
        );
    }
}
