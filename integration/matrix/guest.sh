#!/usr/bin/env bash
# guest.sh <series>: what runs inside each VM of the matrix (as root, on the host's files
# shared over 9p). Writes the report and the test output to $MATRIX_OUT/<series>/.
set -u
export PATH="$PATH:/usr/sbin:/sbin"
series=$1
out=$MATRIX_OUT/$series
mkdir -p "$out"
mount -t bpf bpffs /sys/fs/bpf 2>/dev/null
ip link set lo up 2>/dev/null
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
uname -r > "$out/release"
cut -d' ' -f1 /proc/uptime > "$out/uptime_start"
"$MATRIX_BIN/bpf-features" --json --kfuncs --attach-points > "$out/report.json" 2> "$out/report.err"
echo $? > "$out/report.status"
# The pwru-style example: traces skb functions by their planned mechanisms and must see a
# marked packet sent over loopback; then again with kprobes forced.
skb_prefixes=ip_rcv,ip_local,ip_output,ip_finish,__ip_local_out,ip_send_skb,udp_,__udp,skb_,__netif,netif_,__dev_queue_xmit,dev_hard_start_xmit,loopback_xmit,consume_skb,kfree_skb
"$MATRIX_BIN/examples/skb_tracer" --max 40 --prefix "$skb_prefixes" > "$out/skb_tracer.txt" 2>&1
s1=$?
"$MATRIX_BIN/examples/skb_tracer" --max 20 --prefix "$skb_prefixes" --strategy kprobe \
  >> "$out/skb_tracer.txt" 2>&1
s2=$?
echo $(( s1 > s2 ? s1 : s2 )) > "$out/skb_tracer.status"
"$MATRIX_BIN/bpf-features" --verify --json > "$out/verify.json" 2>&1
echo $? > "$out/verify.status"
: > "$out/tests.txt"
status=0
while read -r t; do
  [ -n "$t" ] || continue
  echo "=== $t" >> "$out/tests.txt"
  MATRIX_SERIES_OUT=$out CARGO_TARGET_DIR=$out/target "$t" --test-threads=1 >> "$out/tests.txt" 2>&1 || status=1
done < "$MATRIX_OUT/tests.list"
echo $status > "$out/tests.status"

# Hostile conditions, several per boot: each sysctl is set, the report and --verify run,
# and it is restored; then the unprivileged run; lockdown last, because it can only be
# raised (integrity, then confidentiality). Each run records the kernel log lines it added.
cond() {
  local name=$1; shift
  local d=$out/conditions/$name
  mkdir -p "$d"
  local before
  before=$(dmesg | wc -l)
  "$@" "$MATRIX_BIN/bpf-features" --json --kfuncs > "$d/report.json" 2> "$d/report.err"
  echo $? > "$d/report.status"
  dmesg | tail -n +"$((before + 1))" > "$d/dmesg.txt"
  "$@" "$MATRIX_BIN/bpf-features" --verify --json > "$d/verify.json" 2> "$d/verify.err"
  echo $? > "$d/verify.status"
}
sysctl_cond() {
  local key=$1 value=$2 old
  old=$(sysctl -n "$key")
  sysctl -qw "$key=$value" && cond "$key=$value" && sysctl -qw "$key=$old"
}
sysctl_cond kernel.kptr_restrict 2
sysctl_cond net.core.bpf_jit_harden 2
sysctl_cond net.core.bpf_jit_kallsyms 0
cond unprivileged setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all
# Unprivileged BPF allowed (0; Debian's default is 2, which root may change, unlike 1):
# what an unprivileged caller may load is probed for real.
old_unpriv=$(sysctl -n kernel.unprivileged_bpf_disabled)
if [ "$old_unpriv" != 1 ] && sysctl -qw kernel.unprivileged_bpf_disabled=0; then
  cond unprivileged_bpf_allowed setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all
  sysctl -qw kernel.unprivileged_bpf_disabled="$old_unpriv"
fi
# A BPF token (6.9+): the report from an unprivileged user namespace, through a bpffs the
# initial namespace delegated to it (token-sandbox), as a tracer in a container runs.
read -r major minor _ <<<"$(uname -r | tr '.-' '  ')"
if [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 9 ]; }; then
  cond token "$MATRIX_BIN/token-sandbox" --
fi
# Raise lockdown through securityfs, then unmount it again: the report finds the mode
# itself (it mounts securityfs for the read when it is not mounted).
for mode in integrity confidentiality; do
  mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
  echo "$mode" > /sys/kernel/security/lockdown 2> "$out/lockdown-$mode.err"
  umount /sys/kernel/security 2>/dev/null
  cond "lockdown=$mode"
done
cut -d' ' -f1 /proc/uptime > "$out/uptime_end"
echo "guest $series: report $(cat "$out/report.status"), verify $(cat "$out/verify.status"), tests $status"
