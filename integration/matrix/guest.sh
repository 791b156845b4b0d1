#!/usr/bin/env bash
# guest.sh <series>: what runs inside each VM of the matrix (as root, on the host's files
# shared over 9p). Writes the report and the test output to $MATRIX_OUT/<series>/.
set -u
series=$1
out=$MATRIX_OUT/$series
mkdir -p "$out"
mount -t bpf bpffs /sys/fs/bpf 2>/dev/null
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
uname -r > "$out/release"
cut -d' ' -f1 /proc/uptime > "$out/uptime_start"
"$MATRIX_BIN/bpf-features" --json > "$out/report.json" 2> "$out/report.err"
echo $? > "$out/report.status"
"$MATRIX_BIN/bpf-features" --verify --json > "$out/verify.json" 2>&1
echo $? > "$out/verify.status"
: > "$out/tests.txt"
status=0
while read -r t; do
  [ -n "$t" ] || continue
  echo "=== $t" >> "$out/tests.txt"
  CARGO_TARGET_DIR=$out/target "$t" --test-threads=1 >> "$out/tests.txt" 2>&1 || status=1
done < "$MATRIX_OUT/tests.list"
echo $status > "$out/tests.status"
cut -d' ' -f1 /proc/uptime > "$out/uptime_end"
echo "guest $series: report $(cat "$out/report.status"), verify $(cat "$out/verify.status"), tests $status"
