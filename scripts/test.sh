#!/usr/bin/env bash
# THE test command: dependencies, services, build, tests, lints, format.
# Works from any directory; exits non-zero as soon as a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

step() {
    echo
    echo "==> $*"
    "$@"
}

step scripts/install-deps.sh
step scripts/services.sh
step cargo build --all-targets
# benches are compiled by --all-targets, not run
step cargo test --all-targets
step cargo clippy --all-targets -- -D warnings
step cargo fmt --check
echo
echo "==> all steps passed"
