#!/usr/bin/env bash
# run.sh: the kernel matrix. Installs what it needs, fetches the kernels of kernels.conf
# and qemu 10 (cached in target/matrix), boots each kernel under vmtest, runs
# bpf-features, --verify and the integration tests inside, and writes target/matrix/
# matrix.json and matrix.md. A guest that fails or hangs is retried once, then fails the
# run with its console log shown. Needs root.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/integration/matrix
cache=$root/target/matrix
results=$cache/results
guest_timeout=${MATRIX_GUEST_TIMEOUT:-600}
mkdir -p "$cache"
started=$(date +%s)

need=()
for p in qemu-guest-agent busybox-static cpio kmod xz-utils zstd file; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "matrix: installing ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
vmtest=$cache/vmtest/bin/vmtest
if [ ! -x "$vmtest" ]; then
  echo "matrix: installing vmtest (cargo install vmtest --locked)"
  cargo install vmtest --locked --version 0.18.0 --root "$cache/vmtest" >"$cache/vmtest-install.log" 2>&1 \
    || { cat "$cache/vmtest-install.log"; exit 1; }
fi
"$here/fetch.sh" "$cache"

while read -r series kver dir; do
  d=$cache/by-series/$series
  mkdir -p "$d"
  if [ ! -s "$d/shim.cpio.gz" ] || [ "$(cat "$d/kver" 2>/dev/null)" != "$kver" ]; then
    "$here/mkshim.sh" "$dir" "$kver" "$d/shim.cpio.gz"
    echo "$kver" > "$d/kver"
  fi
  ln -sfn "$dir/boot/vmlinuz-$kver" "$d/vmlinuz"
done < "$cache/kernels.list"

cargo build --release -q --bin bpf-features
cargo build --release -q --examples -p bpf-features
cargo build --release -q -p bpf-features-integration --bin matrix-report
cargo test --release --no-run -q -p bpf-features-integration --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])' > "$cache/tests.list"
[ -s "$cache/tests.list" ] || { echo "matrix: no integration test binaries were built" >&2; exit 1; }

rm -rf "$results" && mkdir -p "$results/host"
cp "$cache/tests.list" "$results/tests.list"
"$root/target/release/bpf-features" --json > "$results/host/report.json"
uname -r > "$results/host/release"

failed=()
while read -r series kver _; do
  for attempt in 1 2; do
    rm -rf "${results:?}/$series"
    t0=$(date +%s.%N)
    rc=0
    (cd "$root/integration" && MATRIX_OUT=$results MATRIX_BIN=$root/target/release \
      timeout "$guest_timeout" "$vmtest" -c "$root/integration/vmtest.toml" -f "^debian-$series\$") \
      > "$cache/console-$series.log" 2>&1 || rc=$?
    wall=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.1f", a - b}')
    if [ $rc -eq 0 ] && [ -s "$results/$series/tests.status" ]; then
      echo "$wall" > "$results/$series/wall_seconds"
      printf 'matrix: %-5s %-24s ok in %5.1f s (boot %s s, run %s s)\n' "$series" "$kver" "$wall" \
        "$(cat "$results/$series/uptime_start")" \
        "$(awk -v a="$(cat "$results/$series/uptime_end")" -v b="$(cat "$results/$series/uptime_start")" 'BEGIN {printf "%.1f", a - b}')"
      break
    fi
    echo "matrix: $series attempt $attempt failed (vmtest rc=$rc, ${wall}s); console log:"
    tail -40 "$cache/console-$series.log" | sed 's/^/    /'
    [ $attempt -eq 2 ] && failed+=("$series")
  done
done < "$cache/kernels.list"

report_rc=0
"$root/target/release/matrix-report" "$results" "$cache" || report_rc=$?
# MATRIX_RECORD_PROFILES=1: keep each kernel's report as a replayable profile for the
# strategy tests (integration/profiles/<series>.json.gz).
if [ "${MATRIX_RECORD_PROFILES:-0}" = 1 ] && [ $report_rc -eq 0 ]; then
  mkdir -p "$root/integration/profiles"
  while read -r series _ _; do
    gzip -9n < "$results/$series/report.json" > "$root/integration/profiles/$series.json.gz"
  done < "$cache/kernels.list"
  echo "matrix: recorded profiles in integration/profiles/"
fi
echo "matrix: $(($(date +%s) - started)) s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "matrix: FAILED: could not boot or finish: ${failed[*]}" >&2
  exit 1
fi
exit $report_rc
