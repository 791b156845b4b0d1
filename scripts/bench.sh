#!/usr/bin/env bash
# The benchmark (README): probing and resolution speed against bpftool and the kernel's
# floor, memory, and the persisted cache. Installs what it needs; needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
scripts/setup.sh
cargo build --release -q --bin bpf-features
cargo build --release -q -p bpf-features-integration --bin bench
exec target/release/bench "$@"
