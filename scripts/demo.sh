#!/usr/bin/env bash
# THE run command of the README: replay a sample capture made by the project
# (captures/loopback-flood.pcap: dnsperf flooding dnsmasq on loopback amid
# normal dig traffic) through the default pipeline, alerts on stdout and the
# summary on stderr. Installs the build dependencies first when missing.
# Extra arguments are passed to `dnsmonitor replay` (e.g. --workers 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build-only >&2
cargo build --release --quiet
exec target/release/dnsmonitor replay captures/loopback-flood.pcap "$@"
