#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain: libFuzzer (libfuzzer-sys)
# with LLVM's sanitizer-coverage pass switched on by -C flags (no nightly,
# no cargo-fuzz needed). Targets are in fuzz/fuzz_targets/.
#
#   scripts/fuzz.sh build                  build every target (release + debug assertions)
#   scripts/fuzz.sh seeds                  (re)make seed corpora from ../shared/data and the repo
#   scripts/fuzz.sh run TARGET [SECS] [-- LIBFUZZER-ARGS]   fuzz one target (default 60 s)
#                                          with the last build (run `build` after code changes)
#   scripts/fuzz.sh smoke [SECS]           every target SECS seconds (default 5), then the crash regressions
#   scripts/fuzz.sh list                   the targets
#
# Corpora grow in fuzz/corpus/TARGET (not in git); crashes land in
# fuzz/artifacts/TARGET and fail the run. A crash is kept as a regression
# input under fuzz/regressions/TARGET/ (in git): `smoke` and
# tests/fuzz_regressions.rs replay those.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ=$ROOT/fuzz
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$FUZZ/target}
TARGETS=(packet_frames dns_decode pcap_batch blocklist pipeline dnstap)
# Stable rustc: the sancov pass and libFuzzer's counters/compare hooks.
FLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-trace-compares -Cforce-frame-pointers=yes"

bin() { echo "$CARGO_TARGET_DIR/$TRIPLE/release/$1"; }

build() {
    [ -f "$FUZZ/Cargo.lock" ] || cp "$ROOT/Cargo.lock" "$FUZZ/Cargo.lock"
    # --target: the flags reach the fuzzed code only, not build scripts.
    RUSTFLAGS="$FLAGS" cargo build --manifest-path "$FUZZ/Cargo.toml" --release \
        --target "$TRIPLE" --bins
}

seeds() {
    python3 "$ROOT/scripts/fuzz-seeds.py" "$FUZZ/seeds"
}

run() {
    local t=$1 secs=${2:-60}
    shift 2 || shift $#
    [ "${1:-}" = "--" ] && shift
    [ -d "$FUZZ/seeds/$t" ] || seeds
    mkdir -p "$FUZZ/corpus/$t" "$FUZZ/artifacts/$t"
    local dict=()
    [ -f "$FUZZ/dict/$t.dict" ] && dict=(-dict="$FUZZ/dict/$t.dict")
    "$(bin "$t")" "$FUZZ/corpus/$t" "$FUZZ/seeds/$t" "${dict[@]}" \
        -artifact_prefix="$FUZZ/artifacts/$t/" -max_total_time="$secs" \
        -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$@"
}

regressions() {
    local t n=0
    for t in "${TARGETS[@]}"; do
        [ -d "$FUZZ/regressions/$t" ] || continue
        local files=("$FUZZ/regressions/$t"/*)
        [ -e "${files[0]}" ] || continue
        "$(bin "$t")" "${files[@]}" >/dev/null 2>&1 || { echo "fuzz regression fails: $t" >&2; exit 1; }
        n=$((n + ${#files[@]}))
    done
    echo "fuzz regressions: $n inputs pass"
}

case "${1:-}" in
    build) build ;;
    seeds) seeds ;;
    list) printf '%s\n' "${TARGETS[@]}" ;;
    # The last build's binaries (`build` first after changing the code).
    run) shift; [ -x "$(bin "$1")" ] || build; run "$@" ;;
    smoke)
        secs=${2:-5}
        build
        for t in "${TARGETS[@]}"; do
            run "$t" "$secs" -- -print_final_stats=0 2>&1 | grep -E '^(Done|#[0-9]+ *DONE|==|SUMMARY)' || true
            # libFuzzer exits non-zero on a crash; re-check so set -e sees it.
            if compgen -G "$FUZZ/artifacts/$t/crash-*" >/dev/null; then
                echo "fuzz smoke: $t crashed: $(ls "$FUZZ/artifacts/$t"/crash-*)" >&2
                exit 1
            fi
        done
        regressions
        ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
esac
