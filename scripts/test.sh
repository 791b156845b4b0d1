#!/usr/bin/env bash
# The project's test command (README): installs what it needs, then runs every test.
# Tests that need root, BPF or a kernel feature this machine lacks print SKIPPED with the
# reason instead of passing silently.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
scripts/setup.sh
cargo build --workspace --all-targets --release
skips=target/skipped-tests.txt
rm -f "$skips"
# Probe tests share the kernel: one test thread keeps fd/id leak checks exact.
cargo test --workspace --release -- --test-threads=1
echo
if [ -s "$skips" ]; then
  echo "Tests skipped on this machine, and why:"
  sed 's/^/  /' "$skips"
else
  echo "No test was skipped."
fi
