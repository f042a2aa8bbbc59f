#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need. Idempotent: a
# prepared machine does nothing (no apt-get update, no install).
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo not found. Install Rust with rustup (https://rustup.rs):" >&2
    echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
    exit 1
fi

# package -> command that proves it is usable ('-' = check dpkg only)
PKGS=(
    "build-essential:-"
    "pkg-config:pkg-config"
    "libpcap-dev:-"
    "tshark:tshark"
    "tcpdump:tcpdump"
    "dnsmasq-base:dnsmasq"
    "dnsutils:dig"
    "dnsperf:dnsperf"
    "netcat-openbsd:nc"
    "rabbitmq-server:rabbitmq-server"
    "zookeeper:-"
    "prometheus:promtool"
    "tmux:tmux"
    # dnstap tests: resolvers that emit dnstap, and tools that read it
    "unbound:unbound"
    "dnsdist:dnsdist"
    "fstrm-bin:fstrm_capture"
    "dnstap-ldns:dnstap-ldns"
    "golang-github-dnstap-golang-dnstap-cli:dnstap"
    # scripts/live-rate.sh: replays a capture onto lo (tcpreplay, tcprewrite)
    "tcpreplay:tcpreplay"
    "systemd:systemd-analyze"
    "adduser:adduser"
)

# `--build-only`: just what building and running dnsmonitor needs.
if [[ ${1:-} == --build-only ]]; then
    PKGS=("${PKGS[@]:0:3}")
fi

missing=()
for entry in "${PKGS[@]}"; do
    pkg=${entry%%:*}
    cmd=${entry#*:}
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        continue
    fi
    # the command may come from another package (dig from bind9-dnsutils)
    if [[ $cmd != - ]] && command -v "$cmd" >/dev/null 2>&1; then
        continue
    fi
    missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all packages present"
    exit 0
fi

SUDO=
if [[ $(id -u) != 0 ]]; then
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
# tshark asks whether non-root users may capture: answer no, silently.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
