#!/usr/bin/env bash
# Regenerates the sample captures in captures/ from real tools on loopback:
# dnsmasq answers a fixed set of local names (no upstream, nothing leaves
# 127.0.0.0/8), tcpdump records port 53 on lo, dig (clients 127.0.0.2..9)
# and dnsperf (flooder 127.0.0.66) send the queries.
#
#   scripts/make-captures.sh [dig|flood|all]     (default: all; needs root)
#
# Timings are real, so the contents differ slightly from run to run;
# captures/README.md records what the committed files contain.
set -euo pipefail
cd "$(dirname "$0")/.."

WHAT=${1:-all}
OUT=captures
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/make-captures.XXXXXX)
DNSMASQ_PID=
TCPDUMP_PID=
NORMAL_PID=

cleanup() {
    for pid in $NORMAL_PID $TCPDUMP_PID $DNSMASQ_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in dnsmasq tcpdump dig dnsperf; do
    command -v "$tool" >/dev/null || {
        echo "make-captures: $tool missing (scripts/install-deps.sh)" >&2
        exit 1
    }
done

# ------------------------------------------------------------- dnsmasq ----
# Authoritative-style answers for a few local zones, NXDOMAIN for any other
# name in them (--local), NXDOMAIN for everything under nx.test, and fixed
# addresses for the blocklisted domains. TTL 300 for local data.
start_dnsmasq() {
    if (exec 3<>/dev/tcp/127.0.0.1/53) 2>/dev/null; then
        echo "make-captures: 127.0.0.1:53 is already in use" >&2
        exit 1
    fi
    dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
        --listen-address=127.0.0.1 --bind-interfaces --port=53 \
        --pid-file="$WORK/dnsmasq.pid" --user=root --group=root \
        --local-ttl=300 --neg-ttl=60 \
        --local=/corp.test/ --local=/shop.test/ --local=/example/ \
        --local=/test/ --local=/invalid/ \
        --host-record=www.corp.test,10.1.0.10,fd00:1::10 \
        --host-record=mail.corp.test,10.1.0.25,fd00:1::25 \
        --host-record=intranet.corp.test,10.1.0.80 \
        --host-record=vpn.corp.test,10.1.0.44,fd00:1::44 \
        --host-record=api.shop.test,10.2.0.5,fd00:2::5 \
        --host-record=cdn.shop.test,10.2.0.6 \
        --host-record=news.example,10.3.0.1,fd00:3::1 \
        --host-record=www.example,10.3.0.2,fd00:3::2 \
        --mx-host=corp.test,mail.corp.test,10 \
        --mx-host=shop.test,mail.corp.test,20 \
        --txt-record=corp.test,"v=spf1 mx -all" \
        --txt-record=_dmarc.corp.test,"v=DMARC1; p=reject; rua=mailto:dmarc@corp.test" \
        --address=/nx.test/ \
        --address=/malware.example/10.66.0.1 \
        --address=/phish.test/10.66.0.2 \
        --address=/c2.invalid/10.66.0.3 \
        2>"$WORK/dnsmasq.log" &
    DNSMASQ_PID=$!
    for _ in $(seq 1 50); do # ready when it answers (at most ~10 s)
        if [[ $(dig +short +tries=1 +time=1 @127.0.0.1 www.corp.test A 2>/dev/null) == 10.1.0.10 ]]; then
            echo "make-captures: dnsmasq ready (pid $DNSMASQ_PID)"
            return
        fi
        kill -0 "$DNSMASQ_PID" 2>/dev/null || break
        sleep 0.2
    done
    echo "make-captures: dnsmasq did not come up:" >&2
    cat "$WORK/dnsmasq.log" >&2
    exit 1
}

# ------------------------------------------------------------- tcpdump ----
start_capture() { # file
    : >"$WORK/tcpdump.err"
    tcpdump -i lo -n -U --immediate-mode -w "$1" 'port 53' 2>"$WORK/tcpdump.err" &
    TCPDUMP_PID=$!
    for _ in $(seq 1 100); do # at most ~10 s
        if grep -q "listening on" "$WORK/tcpdump.err"; then
            echo "make-captures: tcpdump recording $1"
            return
        fi
        kill -0 "$TCPDUMP_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "make-captures: tcpdump did not start:" >&2
    cat "$WORK/tcpdump.err" >&2
    exit 1
}

stop_capture() { # file
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=
    chown --reference="$OUT" "$1" # tcpdump created it as user tcpdump
    grep -E "captured|dropped" "$WORK/tcpdump.err" | sed 's/^/make-captures:   /'
}

# one lookup: client name type [dig options...]
lookup() {
    local client=$1 name=$2 type=$3
    shift 3
    dig -b "$client" @127.0.0.1 +tries=1 +time=2 "$@" "$name" "$type" >/dev/null ||
        echo "make-captures: warning: no answer for $client $name $type $*" >&2
}

# ------------------------------------------------- a) loopback-dig.pcap ----
# 8 clients, 15 rounds; in each round every client makes one lookup from its
# own list (cycling). Client 127.0.0.7 looks up the three blocklisted names
# in rounds 3, 7 and 11. About 0.15 s between lookups: ~20 s in all.
make_dig() {
    local file=$OUT/loopback-dig.pcap
    local -A list
    list[2]="www.corp.test:A www.corp.test:AAAA mail.corp.test:A corp.test:MX vpn.corp.test:A"
    list[3]="api.shop.test:A api.shop.test:AAAA cdn.shop.test:A missing.shop.test:A shop.test:MX"
    list[4]="news.example:A corp.test:TXT _dmarc.corp.test:TXT www.example:AAAA news.example:AAAA"
    list[5]="intranet.corp.test:A:+tcp www.corp.test:A:+dnssec mail.corp.test:AAAA www.example:A cdn.shop.test:A"
    list[6]="typo.nx.test:A printer.corp.test:A www.corp.test:A old.shop.test:AAAA api.shop.test:A"
    list[7]="www.corp.test:A news.example:A api.shop.test:A"
    list[8]="corp.test:MX corp.test:TXT:+tcp mail.corp.test:A www.example:A vpn.corp.test:AAAA"
    list[9]="www.example:AAAA www.example:A news.example:A wiki.corp.test:A intranet.corp.test:A"
    local -A bad=([3]="www.malware.example:A" [7]="login.phish.test:A" [11]="beacon.c2.invalid:A")
    start_capture "$file"
    local round c entries entry name type opt
    for round in $(seq 0 14); do
        for c in 2 3 4 5 6 7 8 9; do
            if [[ $c == 7 && -n ${bad[$round]:-} ]]; then
                entry=${bad[$round]}
            else
                read -ra entries <<<"${list[$c]}"
                entry=${entries[$((round % ${#entries[@]}))]}
            fi
            IFS=: read -r name type opt <<<"$entry"
            # shellcheck disable=SC2086
            lookup "127.0.0.$c" "$name" "$type" ${opt:-}
            sleep 0.15
        done
    done
    stop_capture "$file"
}

# ----------------------------------------------- b) loopback-flood.pcap ----
# Normal lookups from 127.0.0.2..5 (one every ~0.25 s, round robin) for the
# whole capture; dnsperf floods from 127.0.0.66 at 600 q/s for 15 s starting
# 10 s in; the normal lookups go on for 45 s after the flood. The sleeps
# below pace the timeline; they synchronise nothing.
normal_traffic() { # stop-file
    local names=(www.corp.test:A mail.corp.test:A api.shop.test:AAAA news.example:A
        corp.test:MX cdn.shop.test:A www.example:AAAA corp.test:TXT
        intranet.corp.test:A missing.shop.test:A vpn.corp.test:A www.corp.test:AAAA)
    local i=0 entry name type
    while [[ ! -e $1 ]]; do
        entry=${names[$((i % ${#names[@]}))]}
        IFS=: read -r name type <<<"$entry"
        lookup "127.0.0.$((2 + i % 4))" "$name" "$type"
        i=$((i + 1))
        sleep 0.25
    done
}

make_flood() {
    local file=$OUT/loopback-flood.pcap
    printf '%s\n' "www.corp.test A" "mail.corp.test A" "api.shop.test AAAA" \
        "news.example A" "corp.test MX" "cdn.shop.test A" "www.example AAAA" \
        "corp.test TXT" "intranet.corp.test A" "vpn.corp.test A" >"$WORK/queries.txt"
    start_capture "$file"
    normal_traffic "$WORK/stop" &
    NORMAL_PID=$!
    sleep 10
    echo "make-captures: flood from 127.0.0.66 (dnsperf -Q 600 -l 15)"
    dnsperf -s 127.0.0.1 -a 127.0.0.66 -d "$WORK/queries.txt" -Q 600 -l 15 \
        >"$WORK/dnsperf.out" 2>&1
    grep -E "Queries sent|Queries completed|Queries lost|Queries per second|Run time" \
        "$WORK/dnsperf.out" | sed 's/^/make-captures:   /'
    sleep 45
    touch "$WORK/stop"
    wait "$NORMAL_PID"
    NORMAL_PID=
    stop_capture "$file"
}

start_dnsmasq
case $WHAT in
dig) make_dig ;;
flood) make_flood ;;
all)
    make_dig
    make_flood
    ;;
*)
    echo "usage: $0 [dig|flood|all]" >&2
    exit 2
    ;;
esac
echo "make-captures: done"
