#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (fuzz/fuzz_targets), made at run time
from the real captures and blocklists in ../shared/data and the repo's own
captures and pipelines: nothing is copied into the repository.

usage: fuzz-seeds.py OUT_DIR   (writes OUT_DIR/<target>/<name>)
"""

import hashlib
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
FRAMES_PER_SEED = 24
MAX_SEEDS_PER_FILE = 6


def pcap_records(path):
    """(linktype, [(ts_us, bytes)]) of a classic pcap or a pcapng file."""
    data = path.read_bytes()
    if len(data) < 24:
        return None, []
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0x0A0D0D0A:
        return pcapng_records(data)
    for endian in "<>":
        m = struct.unpack(endian + "I", data[:4])[0]
        if m in (0xA1B2C3D4, 0xA1B23C4D):
            nanos = m == 0xA1B23C4D
            break
    else:
        return None, []
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0xFFFF
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        if incl > 262144 or off + 16 + incl > len(data):
            break
        us = sec * 1_000_000 + (frac // 1000 if nanos else frac)
        out.append((us, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return linktype, out


def pcapng_records(data):
    """Enhanced packet blocks of the first interface's link type."""
    off, linktype, out, endian = 0, None, [], "<"
    while off + 12 <= len(data):
        btype = struct.unpack(endian + "I", data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            endian = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        blen = struct.unpack(endian + "I", data[off + 4:off + 8])[0]
        if blen < 12 or off + blen > len(data):
            break
        body = data[off + 8:off + blen - 4]
        if btype == 1 and linktype is None:
            linktype = struct.unpack(endian + "H", body[:2])[0]
        elif btype == 6 and len(body) >= 20:
            _if, hi, lo, cap, _orig = struct.unpack(endian + "IIIII", body[:20])
            out.append((((hi << 32) | lo), body[20:20 + cap]))
        off += blen
    return linktype, out


def udp_dns_payload(linktype, frame):
    """The UDP payload of a port-53 datagram (the easy link types only)."""
    if linktype == 1:
        if len(frame) < 14:
            return None
        etype, ip = struct.unpack(">H", frame[12:14])[0], frame[14:]
        if etype == 0x8100 and len(frame) >= 18:
            etype, ip = struct.unpack(">H", frame[16:18])[0], frame[18:]
    elif linktype == 113:
        etype, ip = struct.unpack(">H", frame[14:16])[0] if len(frame) >= 16 else 0, frame[16:]
    elif linktype in (101, 12, 14, 228, 229):
        etype, ip = 0, frame
    elif linktype == 0:
        etype, ip = 0, frame[4:]
    else:
        return None
    if not ip:
        return None
    ver = ip[0] >> 4
    if ver == 4 and len(ip) >= 20 and ip[9] == 17:
        udp = ip[(ip[0] & 15) * 4:]
    elif ver == 6 and len(ip) >= 40 and ip[6] == 17:
        udp = ip[40:]
    else:
        return None
    if len(udp) < 8:
        return None
    sport, dport = struct.unpack(">HH", udp[:4])
    if 53 not in (sport, dport) and 5353 not in (sport, dport):
        return None
    return udp[8:]


def write(out, target, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def frames_seed(linktype, recs, knobs):
    b = bytearray(struct.pack("<HB", linktype, knobs))
    prev = recs[0][0]
    for ts, frame in recs:
        step = max(0, min(249, (ts - prev) // 1000))
        prev = ts
        frame = frame[:65535]
        b += struct.pack("<BH", step, len(frame)) + frame
    return bytes(b)


def batch_seed(linktype, recs):
    b = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    for ts, frame in recs:
        b += struct.pack("<IIII", (ts // 1_000_000) & 0xFFFFFFFF, ts % 1_000_000, len(frame), len(frame)) + frame
    return bytes(b)


def varint(n):
    b = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            b.append(byte | 0x80)
        else:
            b.append(byte)
            return bytes(b)


def pb(field, value):
    """One protobuf field: an int (varint) or bytes (length-delimited)."""
    if isinstance(value, int):
        return varint(field << 3) + varint(value)
    return varint(field << 3 | 2) + varint(len(value)) + value


def dnstap_record(ts_us, dns, i):
    """A dnstap Dnstap{type MESSAGE, message} carrying `dns` (dnstap.proto
    field numbers), alternating client query and response, IPv4 and IPv6."""
    response = bool(len(dns) > 2 and dns[2] & 0x80)
    v6 = i % 3 == 2
    addr_q = bytes(15) + b"\x01" if v6 else bytes([127, 0, 0, 1 + i % 200])
    addr_r = bytes(15) + b"\x02" if v6 else bytes([127, 0, 0, 53])
    m = pb(1, 6 if response else 5) + pb(2, 2 if v6 else 1) + pb(3, 1)
    m += pb(4, addr_q) + pb(5, addr_r) + pb(6, 40000 + i) + pb(7, 53)
    if response:
        m += pb(12, ts_us // 1_000_000) + pb(13, ts_us % 1_000_000 * 1000) + pb(14, dns)
    else:
        m += pb(8, ts_us // 1_000_000) + pb(9, ts_us % 1_000_000 * 1000) + pb(10, dns)
    return pb(1, b"fuzz-seeds") + pb(15, 1) + pb(14, m)


def dnstap_seed(records):
    """A Frame Streams stream: START control frame, one data frame each."""
    ctype = b"protobuf:dnstap.Dnstap"
    ctl = struct.pack(">I", 2) + struct.pack(">II", 1, len(ctype)) + ctype
    b = bytearray(struct.pack(">II", 0, len(ctl)) + ctl)
    for r in records:
        b += struct.pack(">I", len(r)) + r
    return bytes(b)


def main():
    out = Path(sys.argv[1])
    captures = sorted((SHARED / "captures").rglob("*.pcap*")) + sorted((ROOT / "captures").glob("*.pcap"))
    for path in captures:
        try:
            linktype, recs = pcap_records(path)
        except (struct.error, OSError):
            continue
        if not recs or linktype is None:
            continue
        step = max(FRAMES_PER_SEED, len(recs) // MAX_SEEDS_PER_FILE)
        for i, start in enumerate(range(0, len(recs), step)):
            chunk = recs[start:start + FRAMES_PER_SEED]
            write(out, "packet_frames", frames_seed(linktype, chunk, i & 3))
            write(out, "pcap_batch", batch_seed(linktype, chunk[:8]))
        timed = [(ts, p) for ts, p in ((ts, udp_dns_payload(linktype, f)) for ts, f in recs) if p]
        payloads = [p for _, p in timed]
        for p in payloads[:: max(1, len(payloads) // 16)][:16]:
            write(out, "dns_decode", p)
        for start in range(0, min(len(timed), 8 * 6), 8):
            chunk = timed[start:start + 8]
            write(out, "dnstap", dnstap_seed([dnstap_record(ts, p, i) for i, (ts, p) in enumerate(chunk)]))
    lists = sorted(p for p in (SHARED / "blocklists").rglob("*") if p.is_file())
    lists += sorted((ROOT / "blocklists").rglob("*"))
    for path in lists:
        if path.is_file():
            data = path.read_bytes()
            # A few KB from the start and the middle (headers, then entries).
            write(out, "blocklist", data[:4096])
            if len(data) > 8192:
                mid = data.find(b"\n", len(data) // 2) + 1
                write(out, "blocklist", data[mid:mid + 4096])
    for path in sorted((ROOT / "pipelines").glob("*.toml")):
        text = path.read_bytes()
        # The target skips inputs naming paths: keep the rest of the file.
        text = b"\n".join(l for l in text.split(b"\n") if b"/" not in l and b"\\" not in l)
        write(out, "pipeline", text)
    for t in sorted(os.listdir(out)):
        print(f"{t}: {len(os.listdir(out / t))} seeds")


if __name__ == "__main__":
    main()
