#!/usr/bin/env python3
"""Build the lexical model of the `dga` detector (crates/core/src/detect/dga_model.txt).

Usage: scripts/build-dga-model.py [POPULAR_LIST] [DGA_LIST] > crates/core/src/detect/dga_model.txt

POPULAR_LIST is a public list of popular (benign) registered domains, one per
line; the default is the shared data set's
blocklists/labeled/ndpi-test_non_dga.txt (nDPI's benign DGA-test names, from
chrmor/DGA_domains_dataset, Alexa-derived). It is referenced by path and never
copied into the repository. DGA_LIST (optional, default the same set's
ndpi-test_dga.txt) is only used to print the held-out detection rate on
stderr: nothing in the model is fitted on it.

The model: of each name's registered label (the part before the first dot),
- a character bigram model (37 symbols a-z 0-9 '-' plus a boundary '^'),
  add-one smoothed, as log2 P(next | previous), built from the even lines;
- the distribution over the odd lines (held out) of four features: mean
  bigram log2-likelihood, Shannon entropy (bits/char), longest digit run,
  longest consonant run, each as QUANTILES evenly spaced quantiles;
- a name's score is the sum over the features of -log10(tail), tail = the
  share of held-out popular names at least as unusual (floored at 1 /
  QUANTILES); `threshold` is the score that THRESHOLD_SHARE of the held-out
  popular names reach.

Reproducible: same input, same bytes out (no randomness, fixed formatting).
The Rust side (crates/core/src/detect/dga.rs) computes features and tails the same way.
"""
import math
import os
import sys
import hashlib

ALPHABET = "^abcdefghijklmnopqrstuvwxyz0123456789-"
QUANTILES = 501
THRESHOLD_SHARE = 0.01
VOWELS = set("aeiou")
SHARED = os.environ.get("SHARED_DATA", "/work/shared/data")


def label_of(line):
    d = line.strip().lower().rstrip(".")
    if not d or d.startswith("#"):
        return None
    lab = d.split(".")[0]
    if not lab or any(c not in ALPHABET[1:] for c in lab):
        return None
    return lab


def bigram_table(labels):
    n = len(ALPHABET)
    counts = [[1] * n for _ in range(n)]  # add-one
    for lab in labels:
        s = "^" + lab + "^"
        for a, b in zip(s, s[1:]):
            counts[ALPHABET.index(a)][ALPHABET.index(b)] += 1
    table = []
    for row in counts:
        tot = sum(row)
        table.append([round(math.log2(c / tot), 4) for c in row])
    return table


def features(lab, table):
    s = "^" + lab + "^"
    ll = sum(table[ALPHABET.index(a)][ALPHABET.index(b)] for a, b in zip(s, s[1:]))
    ll /= len(s) - 1
    counts = {}
    for c in lab:
        counts[c] = counts.get(c, 0) + 1
    ent = -sum(v / len(lab) * math.log2(v / len(lab)) for v in counts.values())
    digit = cons = best_d = best_c = 0
    for c in lab:
        digit = digit + 1 if c.isdigit() else 0
        cons = cons + 1 if (c.isalpha() and c not in VOWELS) else 0
        best_d = max(best_d, digit)
        best_c = max(best_c, cons)
    return (round(ll, 4), round(ent, 4), best_d, best_c)


def quantiles(values):
    v = sorted(values)
    out = []
    for i in range(QUANTILES):
        idx = round(i * (len(v) - 1) / (QUANTILES - 1))
        out.append(v[idx])
    return out


def tail(q, x, low):
    """Share of quantile points at least as unusual as x (low: <= x)."""
    if low:
        k = sum(1 for v in q if v <= x)
    else:
        k = sum(1 for v in q if v >= x)
    return max(k, 1) / len(q)


def score(f, qs):
    lows = (True, False, False, False)
    return sum(-math.log10(tail(q, x, low)) for q, x, low in zip(qs, f, lows))


def main():
    popular = sys.argv[1] if len(sys.argv) > 1 else f"{SHARED}/blocklists/labeled/ndpi-test_non_dga.txt"
    dga = sys.argv[2] if len(sys.argv) > 2 else f"{SHARED}/blocklists/labeled/ndpi-test_dga.txt"
    raw = open(popular, "rb").read()
    labels = [l for l in (label_of(x) for x in raw.decode("utf-8", "replace").splitlines()) if l]
    train, held = labels[0::2], labels[1::2]
    table = bigram_table(train)
    feats = [features(l, table) for l in held]
    qs = [quantiles([f[i] for f in feats]) for i in range(4)]
    scores = sorted(score(f, qs) for f in feats)
    threshold = round(scores[int(math.ceil((1 - THRESHOLD_SHARE) * len(scores))) - 1], 4)
    out = sys.stdout
    out.write("# dnsmonitor dga lexical model v1 - built by scripts/build-dga-model.py; do not edit\n")
    out.write(f"# source {os.path.basename(popular)} sha256 {hashlib.sha256(raw).hexdigest()} "
              f"labels {len(labels)} (train {len(train)}, held out {len(held)})\n")
    out.write(f"alphabet {ALPHABET}\n")
    for row in table:
        out.write("bigram " + " ".join(f"{v:.4f}" for v in row) + "\n")
    for name, q in zip(("ll", "entropy", "digit_run", "consonant_run"), qs):
        out.write(f"q_{name} " + " ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in q) + "\n")
    out.write(f"threshold {threshold:.4f}\n")
    if os.path.exists(dga):
        d = [l for l in (label_of(x) for x in open(dga, encoding="utf-8", errors="replace")) if l]
        hit = sum(1 for l in d if score(features(l, table), qs) >= threshold)
        sys.stderr.write(f"held-out popular names at or above threshold {threshold}: "
                         f"{sum(1 for s in scores if s >= threshold) / len(scores):.4f}; "
                         f"{os.path.basename(dga)}: {hit / len(d):.4f} of {len(d)} names\n")


if __name__ == "__main__":
    main()
