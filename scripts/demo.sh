#!/usr/bin/env bash
# THE run command of the README: replay a sample capture made by the project
# (captures/loopback-flood.pcap: dnsperf flooding dnsmasq on loopback amid
# normal dig traffic) through the default pipeline, alerts on stdout and the
# summary on stderr. Installs the build dependencies first when missing.
# Extra arguments are passed to `dnsmonitor replay` (e.g. --workers 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build-only >&2
BIN=${CARGO_TARGET_DIR:-target}/release/dnsmonitor
if [[ -x $BIN ]]; then
    echo "demo: building dnsmonitor (release) if the sources changed..." >&2
else
    # A cold release build takes minutes: say so, and let cargo show its
    # progress (on stderr, so stdout stays the alerts).
    echo "demo: building dnsmonitor (release) for the first time: this takes about 6 to 7 minutes on 2 cores; cargo's progress follows" >&2
fi
cargo build --release >&2
echo "demo: replaying captures/loopback-flood.pcap" >&2
exec "$BIN" replay captures/loopback-flood.pcap "$@"
