#!/usr/bin/env bash
# How fast can `dnsmonitor live` take a capture off `lo` without kernel drops?
# Replays a capture onto loopback with tcpreplay at fixed packet rates and
# reads the monitor's own capture counters. See usage() below.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/live-rate.sh [OPTIONS] [CAPTURE]

Replays CAPTURE onto the loopback interface with tcpreplay at one or more
packet rates while `dnsmonitor live -i lo` captures it, and prints one line
per rate: the rate asked for, what tcpreplay achieved, what the monitor read
and what the kernel dropped (libpcap's ps_drop / ps_ifdrop, from the
monitor's summary on SIGTERM), and the monitor's CPU.

CAPTURE defaults to the replay bench's bad-day capture,
target/bench-data/bad-day-seed7.pcap (see benches/common/mod.rs); when it is
missing it is generated with `dnsmonitor synth` and the bench's options (the
same file the bench would write: 7.68 M packets, 1.03 GB with today's
generator, 464 of them IPv6; under a minute).
The hostile 100 s alone (target/bench-data/bad-day-seed7-hostile.pcap,
written by `cargo bench --bench amqp`) is a harder choice.

Before replaying, the first --count packets are prepared once (cached in
--work): IPv4 only (`tcpdump ip`: IPv6 packets are left out, they have no
pnat target on loopback here), every address mapped into 127.0.0.0/8 with
`tcprewrite --pnat=0.0.0.0/0:127.0.0.0/8` (host bits kept), checksums fixed,
and both Ethernet addresses set to MARK_MAC. lo takes Ethernet frames
(DLT_EN10MB); a capture of another link type gets an Ethernet header
(`tcprewrite --dlt=enet`). The marker MAC does two things: the monitor's
filter keeps only frames from it, so other loopback DNS traffic on the
machine is not counted, and the kernel discards the frames after the capture
taps (not addressed to lo's 00:00:00:00:00:00), so no local resolver on
127.0.0.0/8 ever receives a replayed query. Nothing leaves loopback.

Options:
  --count N          packets replayed per rate: the first N IPv4 packets of
                     CAPTURE (default 600000; 0 = all of them). The kernel
                     ring hides a monitor that is slightly too slow for
                     (ring slots / run length): a 128 MiB ring at snaplen
                     1500 has about 80 000 slots, two per packet on lo, so a
                     2 s run cannot see a deficit below ~20 k packets/s.
                     The `behind` column
                     (packets still unread when tcpreplay finished) shows it;
                     for a verdict use a long run (--count 0: the whole
                     capture, about 26 s at 300 k/s).
  --rates LIST       comma-separated packet rates, `k`/`M` allowed, `top` for
                     tcpreplay --topspeed (default 50k,100k,200k,300k; none
                     with --search)
  --search           after --rates, find the highest rate with 0 kernel
                     drops (kdrop + ifdrop): --search-max first, then halving the bracket
                     [0, rate that dropped] until it is --tolerance wide
  --search-max PPS   (default 300k)
  --prepare-only     prepare the loopback capture (and generate the bench
                     capture if needed), replay nothing
  --tolerance PPS    (default 10k)
  --workers N        monitor workers (default 1)
  --buffer-size B    monitor kernel ring in bytes (default 134217728)
  --snaplen N        monitor snaplen (default 1500)
  --pipeline FILE    monitor pipeline (default: the built-in one, every
                     detector on)
  --monitor-arg ARG  one more argument for `dnsmonitor live` (repeatable)
  --replay-arg ARG   one more argument for tcpreplay (repeatable), e.g.
                     --replay-arg=--pps-multi=10 (packets per timing step)
  --bin PATH         dnsmonitor binary (default: $DNSMONITOR_BIN, else
                     ${CARGO_TARGET_DIR:-target}/release/dnsmonitor)
  --work DIR         prepared captures and per-run logs (default
                     target/live-rate)
  -h, --help         this text

Columns: asked (pps asked of tcpreplay, or top), sent (packets tcpreplay
sent), achieved (tcpreplay's own pps), failed (sends that failed), read
(packets the monitor read), lost (sent - read: replayed packets the monitor
never saw), recv (ps_recv: packets the filter matched; on lo the kernel
counts every frame twice, leaving and arriving, and both copies take a ring
slot), kdrop (ps_drop: matched but the ring was full; on lo both copies of
a frame are dropped, so kdrop has been twice lost in every run here),
ifdrop (ps_ifdrop), behind (packets the
monitor read after tcpreplay had finished: the ring's backlog), cpu_s
(monitor CPU seconds from the start of the replay until it had read
everything), cores (monitor CPU while tcpreplay ran, over that wall time) and
us/pkt (cpu_s per packet read, in microseconds: 1e6 / us/pkt is what one
core of the monitor could take). "short of the rate asked" marks a run where
tcpreplay reached less than 97 % of the rate. Logs of each run (tcpreplay
output, monitor stderr, alerts) are kept in --work/runs/.

Needs root (or CAP_NET_RAW + CAP_NET_ADMIN for both dnsmonitor and
tcpreplay): capturing on and injecting into lo. The project's machines run
as root. Needs tcpreplay, tcpdump and curl (scripts/install-deps.sh).
Use a release build: a debug build measures the debug build.

The rate that counts is the achieved one: tcpreplay pays in its own
sendto() for the delivery on lo, the capture taps included (every frame
passes the monitor's filter twice, leaving and arriving), so with a capture
open it may not reach the rate asked for, on a busy machine even less.

Examples:
  scripts/live-rate.sh --rates 100k,200k        # a quick look, 600 k packets each
  scripts/live-rate.sh --count 0 --search       # the verdict: the whole capture at
                                                # 300 k/s, then halving until 0 drops
EOF
}

die() {
    echo "live-rate: $*" >&2
    exit 2
}

cd "$(dirname "$0")/.."

MARK_MAC=02:dd:00:00:00:01
COUNT=600000
RATES=default
SEARCH=0
PREP_ONLY=0
SEARCH_MAX=300k
TOLERANCE=10k
WORKERS=1
BUFFER=134217728
SNAPLEN=1500
PIPELINE=
MONITOR_ARGS=()
REPLAY_ARGS=()
BIN=${DNSMONITOR_BIN:-${CARGO_TARGET_DIR:-target}/release/dnsmonitor}
WORK=target/live-rate
CAPTURE=

while (($#)); do
    case $1 in
    -h | --help) usage; exit 0 ;;
    --count) COUNT=${2:?--count needs a value}; shift ;;
    --rates) RATES=${2:?--rates needs a value}; shift ;;
    --search) SEARCH=1 ;;
    --prepare-only) PREP_ONLY=1 ;;
    --search-max) SEARCH_MAX=${2:?}; shift ;;
    --tolerance) TOLERANCE=${2:?}; shift ;;
    --workers) WORKERS=${2:?}; shift ;;
    --buffer-size) BUFFER=${2:?}; shift ;;
    --snaplen) SNAPLEN=${2:?}; shift ;;
    --pipeline) PIPELINE=${2:?}; shift ;;
    --monitor-arg) MONITOR_ARGS+=("${2?}"); shift ;;
    --monitor-arg=*) MONITOR_ARGS+=("${1#*=}") ;;
    --replay-arg) REPLAY_ARGS+=("${2?}"); shift ;;
    --replay-arg=*) REPLAY_ARGS+=("${1#*=}") ;;
    --bin) BIN=${2:?}; shift ;;
    --work) WORK=${2:?}; shift ;;
    -*) die "unknown option $1 (--help lists them)" ;;
    *)
        [[ -z $CAPTURE ]] || die "one capture only"
        CAPTURE=$1
        ;;
    esac
    shift
done

# 50k -> 50000, 1.5M -> 1500000, top stays top
pps() {
    local v=$1
    case $v in
    top) echo top ;;
    *[kK]) awk -v x="${v%[kK]}" 'BEGIN { printf "%d\n", x * 1000 }' ;;
    *M) awk -v x="${v%M}" 'BEGIN { printf "%d\n", x * 1000000 }' ;;
    *) echo "$v" ;;
    esac
}

[[ $COUNT =~ ^[0-9]+$ ]] || die "--count: not a number: $COUNT"
SEARCH_MAX=$(pps "$SEARCH_MAX")
TOLERANCE=$(pps "$TOLERANCE")
if [[ $RATES == default ]]; then
    RATES=50k,100k,200k,300k
    ((SEARCH == 0)) || RATES=
fi
RATE_LIST=()
if [[ -n $RATES ]]; then
    IFS=, read -ra raw <<<"$RATES"
    for r in "${raw[@]}"; do
        r=$(pps "$r")
        [[ $r == top || $r =~ ^[1-9][0-9]*$ ]] || die "--rates: not a rate: $r"
        RATE_LIST+=("$r")
    done
fi
for n in "$SEARCH_MAX" "$TOLERANCE"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "--search-max/--tolerance: not a rate: $n"
done

for tool in tcpreplay tcprewrite tcpdump curl; do
    command -v "$tool" >/dev/null || die "$tool missing (scripts/install-deps.sh installs it)"
done
[[ -x $BIN ]] || die "no dnsmonitor binary at $BIN (cargo build --release, or --bin / DNSMONITOR_BIN)"
if [[ $(id -u) != 0 ]]; then
    echo "live-rate: not root: capturing on and injecting into lo need CAP_NET_RAW (and CAP_NET_ADMIN)" >&2
fi
mkdir -p "$WORK/runs"

# --- the capture -----------------------------------------------------------

if [[ -z $CAPTURE ]]; then
    CAPTURE=target/bench-data/bad-day-seed7.pcap
    if [[ ! -e $CAPTURE ]]; then
        # The options of benches/common/mod.rs::bad_day_capture, in its order:
        # the same SynthOptions, so the same bytes the bench would write.
        echo "live-rate: generating $CAPTURE with dnsmonitor synth (the replay bench's bad-day capture, about a minute)" >&2
        mkdir -p target/bench-data
        "$BIN" synth --scenario mixed --seed 7 --duration 300 --clients 20000 \
            --rate-scale 8 --attack-secs 30 \
            --intensity spoofed_flood=12 --intensity random_subdomain=20 \
            --intensity client_flood=4 --intensity subnet_flood=2 \
            --intensity rate_anomaly=4 --intensity amplification=4 \
            --out "$CAPTURE.live-rate-tmp" --truth "$WORK/bad-day-seed7.truth.json"
        mv "$CAPTURE.live-rate-tmp" "$CAPTURE"
    fi
fi
[[ -r $CAPTURE ]] || die "cannot read $CAPTURE"

base=$(basename "$CAPTURE")
base=${base%.*}
if ((COUNT == 0)); then
    LO="$WORK/$base-all-v4-lo.pcap"
else
    LO="$WORK/$base-first$COUNT-v4-lo.pcap"
fi

# Prepared once per capture and count; redone when the capture is newer.
if [[ ! -s $LO || $CAPTURE -nt $LO ]]; then
    echo "live-rate: preparing $LO (IPv4 only, addresses into 127.0.0.0/8, MACs $MARK_MAC)" >&2
    cut=()
    ((COUNT == 0)) || cut=(-c "$COUNT")
    tcpdump -n -r "$CAPTURE" -w "$LO.v4" "${cut[@]}" ip 2>"$LO.log"
    linktype=$(sed -n 's/.*link-type \([A-Z0-9_]*\).*/\1/p' "$LO.log" | head -n1)
    dlt=()
    if [[ $linktype != EN10MB ]]; then
        echo "live-rate: $CAPTURE is $linktype: giving it an Ethernet header for lo" >&2
        dlt=(--dlt=enet)
    fi
    tcprewrite --pnat=0.0.0.0/0:127.0.0.0/8 "${dlt[@]}" \
        --enet-smac="$MARK_MAC" --enet-dmac="$MARK_MAC" --fixcsum \
        --infile="$LO.v4" --outfile="$LO.tmp" >>"$LO.log" 2>&1
    rm -f "$LO.v4"
    # Not one address outside 127.0.0.0/8, no IPv6, no frame without the marker.
    stray=$(tcpdump -n -r "$LO.tmp" -c 1 \
        "not (ip and src net 127.0.0.0/8 and dst net 127.0.0.0/8 and ether src $MARK_MAC)" 2>/dev/null || true)
    [[ -z $stray ]] || die "$LO.tmp has a frame off loopback or without the marker MAC: $stray"
    mv "$LO.tmp" "$LO"
fi
if ((PREP_ONLY)); then
    echo "live-rate: prepared $LO (from $CAPTURE)" >&2
    exit 0
fi
echo "live-rate: replaying $LO (from $CAPTURE)" >&2

# --- one run ---------------------------------------------------------------

FILTER="ether src $MARK_MAC and (udp port 53 or tcp port 53 or (ip[6:2] & 0x1fff != 0))"
TCK=$(getconf CLK_TCK)
MON_PID=
REPLAY_PID=
cleanup() {
    [[ -z $REPLAY_PID ]] || kill "$REPLAY_PID" 2>/dev/null || true
    [[ -z $MON_PID ]] || kill -KILL "$MON_PID" 2>/dev/null || true
}
trap cleanup EXIT

cpu_ticks() { # utime + stime of a process and its threads
    awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
now() { date +%s.%N; }
metric() { # metric NAME: its value on the monitor's endpoint (0 when absent)
    curl -s --max-time 2 "$METRICS/metrics" |
        awk -v n="$1" '$1 == n { v = $2 } END { printf "%d\n", v + 0 }'
}

printf '%-8s %9s %10s %7s %9s %8s %9s %8s %7s %8s %7s %6s %7s\n' \
    asked sent achieved failed read lost recv kdrop ifdrop behind cpu_s cores us/pkt
LAST_KDROP=
LAST_ACHIEVED=
run() { # run RATE|top: one replay, one line
    local rate=$1 tag log err
    tag="$WORK/runs/$(date +%H%M%S)-$rate"
    log="$tag.tcpreplay.txt"
    err="$tag.monitor.txt"
    local mon=("$BIN" live -i lo --filter "$FILTER" --snaplen "$SNAPLEN"
        --buffer-size "$BUFFER" --workers "$WORKERS" --alerts "$tag.alerts.jsonl"
        --format json --metrics-listen 127.0.0.1:0)
    [[ -z $PIPELINE ]] || mon+=(--pipeline "$PIPELINE")
    mon+=("${MONITOR_ARGS[@]}")
    : >"$err" # exists before the monitor starts writing it, for the grep below
    "${mon[@]}" >/dev/null 2>>"$err" &
    MON_PID=$!
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q '^live: capturing on' "$err" && break
        kill -0 "$MON_PID" 2>/dev/null || { cat "$err" >&2; die "dnsmonitor live exited"; }
        sleep 0.1
    done
    grep -q '^live: capturing on' "$err" || die "dnsmonitor live did not start capturing (see $err)"
    METRICS=$(sed -n 's|^metrics: serving on \(http://[^/]*\)/metrics.*|\1|p' "$err" | head -n1)
    [[ -n $METRICS ]] || die "no metrics address in $err"

    local pace=(--pps="$rate")
    [[ $rate != top ]] || pace=(--topspeed)
    local limit=()
    ((COUNT == 0)) || limit=(--limit="$COUNT")
    local c0 t0 cr tr c1 read_end
    c0=$(cpu_ticks "$MON_PID")
    t0=$(now)
    # -K: packets preloaded into memory, so the disk does not pace the replay
    tcpreplay -i lo -K "${pace[@]}" "${limit[@]}" "${REPLAY_ARGS[@]}" "$LO" >"$log" 2>&1 &
    REPLAY_PID=$!
    wait "$REPLAY_PID" || { REPLAY_PID=; cat "$log" >&2; die "tcpreplay failed (see $log)"; }
    REPLAY_PID=
    cr=$(cpu_ticks "$MON_PID")
    tr=$(now)
    read_end=$(metric dnsmonitor_packets_total)
    # Let the monitor empty the ring: until its packet count stands still.
    local prev=-1 cur
    cur=$(metric dnsmonitor_packets_total)
    for ((i = 0; i < 300 && cur != prev; i++)); do
        prev=$cur
        sleep 0.3
        cur=$(metric dnsmonitor_packets_total)
    done
    c1=$(cpu_ticks "$MON_PID")
    kill -TERM "$MON_PID"
    wait "$MON_PID" || true
    MON_PID=

    local sent achieved failed nread recv kdrop ifdrop cpu cores per note=
    sent=$(sed -n 's/^Actual: \([0-9]*\) packets.*/\1/p' "$log")
    achieved=$(sed -n 's/^Rated: .* \([0-9.]*\) pps.*/\1/p' "$log")
    failed=$(sed -n 's/.*Failed packets: *\([0-9]*\).*/\1/p' "$log")
    # capture: R received by the filter, K dropped by the kernel, I dropped by the interface
    # packets: N read in S s (...)
    read -r nread recv kdrop ifdrop < <(awk '
        /^capture: / { r = $2; k = $7; i = $12 }
        /^packets: / { n = $2 }
        END { print n + 0, r + 0, k + 0, i + 0 }' "$err")
    achieved=$(awk -v a="${achieved:-0}" 'BEGIN { printf "%.0f", a }')
    # CPU until the ring was empty, per packet read, and as cores while the
    # replay ran (the wait for the ring to drain is partly idle).
    cpu=$(awk -v a="$c0" -v b="$c1" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
    cores=$(awk -v a="$c0" -v b="$cr" -v t="$TCK" -v s="$t0" -v e="$tr" \
        'BEGIN { printf "%.2f", (b - a) / t / (e - s) }')
    per=$(awk -v c="$cpu" -v n="$nread" 'BEGIN { printf "%.1f", n ? c * 1e6 / n : 0 }')
    # tcpreplay fell short of the rate asked (the sender is the limit)
    [[ $rate == top ]] || ((achieved * 100 >= rate * 97)) || note=" (short of the rate asked)"
    printf '%-8s %9s %10s %7s %9s %8s %9s %8s %7s %8s %7s %6s %7s%s\n' \
        "$rate" "${sent:-?}" "$achieved" "${failed:-?}" "$nread" "$((${sent:-0} - nread))" "$recv" \
        "$kdrop" "$ifdrop" "$((nread - read_end))" "$cpu" "$cores" "$per" "$note"
    LAST_KDROP=$((kdrop + ifdrop))
    LAST_ACHIEVED=$achieved
}

for r in "${RATE_LIST[@]}"; do
    run "$r"
done

if ((SEARCH)); then
    # Bracket [lo, hi]: lo had no drops (0 is assumed), hi dropped.
    run "$SEARCH_MAX"
    if ((LAST_KDROP == 0)); then
        echo "highest rate with 0 drops: $SEARCH_MAX pps or more (the top of the search; tcpreplay achieved $LAST_ACHIEVED)"
    else
        lo=0 lo_achieved=0 hi=$SEARCH_MAX
        while ((hi - lo > TOLERANCE)); do
            mid=$(((lo + hi) / 2))
            run "$mid"
            if ((LAST_KDROP == 0)); then
                lo=$mid lo_achieved=$LAST_ACHIEVED
            else
                hi=$mid
            fi
        done
        if ((lo == 0)); then
            echo "highest rate with 0 drops: below $hi pps (every rate tried dropped)"
        else
            echo "highest rate with 0 drops: $lo pps (tcpreplay achieved $lo_achieved; drops at $hi)"
        fi
    fi
fi
