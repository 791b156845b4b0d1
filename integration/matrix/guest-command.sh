#!/usr/bin/env bash
# guest-command.sh <series>: what runs inside each VM for `run.sh --command` (as root, on
# the host's files shared over 9p). Prepares the guest as guest.sh does (bpffs, tracefs,
# lo up), then runs $MATRIX_COMMAND with bash in $MATRIX_WORKDIR. Its output goes to
# $MATRIX_OUT/<series>/output.txt (the host streams it), its exit code to .../status.
set -u
export PATH="$PATH:/usr/sbin:/sbin"
out=$MATRIX_OUT/$1
mkdir -p "$out"
uname -r > "$out/release"
: > "$out/started"
mountpoint -q /sys/fs/bpf || mount -t bpf bpffs /sys/fs/bpf 2>/dev/null
ip link set lo up 2>/dev/null
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
rc=0
if cd "$MATRIX_WORKDIR" 2>"$out/output.txt"; then
  bash -c "$MATRIX_COMMAND" > "$out/output.txt" 2>&1 < /dev/null || rc=$?
else
  rc=125
fi
echo "$rc" > "$out/status"
exit "$rc"
