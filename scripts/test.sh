#!/usr/bin/env bash
# The project's test command (README): installs what it needs, then runs every test.
# Tests that need root, BPF or a kernel feature this machine lacks print SKIPPED with the
# reason instead of passing silently.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
scripts/setup.sh
cargo build --workspace --all-targets --release
cargo build --release --examples -p bpf-features-cli
# The libraries' API docs: every public item documented, no broken link (warnings denied).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features \
  -p bpf-features-probe -p bpf-features -p bpf-features-ebpf
# A crate outside the workspace that depends only on the library: no clang, no clap.
scripts/lean-check.sh
skips=target/skipped-tests.txt
rm -f "$skips"
# `cargo test` as a Rust developer types it: the debug profile (debug assertions on, e.g.
# clap's checks of the command line) over the default members (unit, CLI, fuzz tests).
cargo test
# Probe tests share the kernel: one test thread keeps fd/id leak checks exact. The parser
# fuzzers run longer here than in a developer's `cargo test`.
PROPTEST_CASES=${PROPTEST_CASES:-4096} cargo test --workspace --release -- --test-threads=1
# The kernel matrix: Debian 5.10, 6.1 and 6.12 booted under qemu, every answer checked
# there (integration/matrix/run.sh; MATRIX=0 skips it, and says so).
matrix_rc=0
if [ "${MATRIX:-1}" = 0 ]; then
  echo "SKIPPED kernel matrix: MATRIX=0" >> "$skips"
else
  integration/matrix/run.sh || matrix_rc=$?
fi
echo
if [ -s "$skips" ]; then
  echo "Tests skipped on this machine, and why:"
  sed 's/^/  /' "$skips"
else
  echo "No test was skipped."
fi
[ $matrix_rc -eq 0 ] || { echo "the kernel matrix FAILED" >&2; exit $matrix_rc; }
