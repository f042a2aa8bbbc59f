#!/usr/bin/env bash
# Build the Debian package: release binary, man pages and completions
# generated from the CLI (`dnsmonitor assets`), then `cargo deb` with the
# [package.metadata.deb] of Cargo.toml. Prints the .deb's path.
#
#   scripts/package.sh            build target/debian/dnsmonitor_*.deb
#   scripts/package.sh --install  also install it (dpkg -i) and run `dnsmonitor --version`
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
# The asset paths in Cargo.toml are under target/.
unset CARGO_TARGET_DIR
cargo build --release --locked
rm -rf target/assets
target/release/dnsmonitor assets target/assets
deb=$(cargo deb --no-build --locked | tail -1)
echo "$deb"
if [ "${1:-}" = --install ]; then
    dpkg -i "$deb"
    dnsmonitor --version
fi
