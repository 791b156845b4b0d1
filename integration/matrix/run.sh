#!/usr/bin/env bash
# run.sh: the kernel matrix. Installs what it needs, fetches the kernels of kernels.conf
# and qemu 10 (cached in target/matrix), boots each kernel under vmtest, runs
# bpf-features, --verify and the integration tests inside, and writes target/matrix/
# matrix.json and matrix.md. A guest that fails or hangs is retried once, then fails the
# run with its console log shown. Needs root.
#
# With --command it runs the caller's command instead, on the same cached kernels: see
# usage() below and integration/matrix/README.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/integration/matrix
cache=$root/target/matrix
results=$cache/results
guest_timeout=${MATRIX_GUEST_TIMEOUT:-600}

series_list() { awk '!/^#/ && NF {print $1}' "$here/kernels.conf" | paste -sd' '; }
usage() {
  cat <<EOF
usage: $0
       $0 --command CMD [--kernel SERIES]... [--workdir DIR] [--timeout SECS]

Without arguments: the bpf-features kernel matrix (what CI runs).

With --command: sets up the Debian kernels, qemu and vmtest as the matrix does (cached in
$cache), then boots each selected kernel under qemu and runs
CMD in it with bash -c, as root, in DIR. Prints CMD's output and one PASS/FAIL line with
its exit code per kernel; exits 1 if any failed, 2 on a usage error.

  --command CMD     the bash command line to run in each guest
  --kernel SERIES   a kernel to boot, one of: $(series_list)
                    (repeatable or comma-separated; default: all)
  --workdir DIR     the guest's working directory (default: the current directory);
                    the guest sees the host's files at the same paths
  --timeout SECS    limit per kernel, boot included (default: MATRIX_GUEST_TIMEOUT or 600)
  -h, --help        this text

Example: $0 --command 'cargo test --release' --kernel 5.10 --workdir ~/my-tracer
More: $here/README.md
EOF
}
usage_error() { echo "run.sh: $*" >&2; echo "run.sh: see $0 --help" >&2; exit 2; }

command_mode=0 command="" workdir="" kernels=() selected=() with_command=""
while [ $# -gt 0 ]; do
  opt=$1 val="" has_val=0
  case $opt in --*=*) val=${opt#*=}; opt=${opt%%=*}; has_val=1 ;; esac
  case $opt in
    -h|--help) usage; exit 0 ;;
    --command|--kernel|--workdir|--timeout)
      if [ $has_val -eq 0 ]; then
        [ $# -ge 2 ] || usage_error "$opt needs a value"
        val=$2; shift
      fi
      [ -n "$val" ] || usage_error "$opt needs a non-empty value"
      case $opt in
        --command) command_mode=1; command=$val ;;
        --kernel) IFS=, read -r -a ks <<< "$val"; kernels+=("${ks[@]}") ;;
        --workdir) workdir=$val ;;
        --timeout) guest_timeout=$val ;;
      esac
      [ "$opt" = --command ] || with_command=$opt ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done
if [ $command_mode -eq 0 ]; then
  [ -z "$with_command" ] || usage_error "$with_command goes with --command"
else
  [[ $guest_timeout =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout needs a number of seconds, not '$guest_timeout'"
  [ ${#kernels[@]} -gt 0 ] || read -r -a kernels <<< "$(series_list)"
  declare -A seen=()
  for k in "${kernels[@]}"; do
    [[ " $(series_list) " == *" $k "* ]] || usage_error "unknown kernel '$k' (known: $(series_list))"
    [ -n "${seen[$k]:-}" ] || selected+=("$k")
    seen[$k]=1
  done
  kernels=("${selected[@]}")
  dir=${workdir:-$PWD}
  workdir=$(cd -- "$dir" 2>/dev/null && pwd -P) || usage_error "--workdir: not a directory: $dir"
  case $workdir/ in
    /proc/*|/sys/*|/dev/*|/run/*|/mnt/*)
      usage_error "--workdir $workdir: the guest has its own /proc, /sys, /dev, /run and /mnt" ;;
  esac
fi

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
  vmlinuz=$dir/boot/vmlinuz-$kver
  [ -e "$vmlinuz" ] || vmlinuz=$dir/usr/lib/modules/$kver/vmlinuz
  ln -sfn "$vmlinuz" "$d/vmlinuz"
done < "$cache/kernels.list"

# --command: boot each selected kernel and run the caller's command in it (guest-command.sh),
# from a vmtest config generated here with absolute paths, so it works from any directory.
# A guest that does not boot is retried once; the command itself is not retried.
toml_str() { local v=${1//\\/\\\\}; printf '"%s"' "${v//\"/\\\"}"; }
if [ $command_mode -eq 1 ]; then
  run=$(mktemp -d "$cache/command.XXXXXX")
  for series in "${kernels[@]}"; do
    d=$cache/by-series/$series
    printf '[[target]]\nname = %s\nkernel = %s\nqemu_command = %s\ncommand = %s\n' \
      "$(toml_str "debian-$series")" "$(toml_str "$d/vmlinuz")" "$(toml_str "$here/qemu-tcg")" \
      "$(toml_str "$(printf '%q %q' "$here/guest-command.sh" "$series")")"
    printf 'vm = { num_cpus = 2, memory = "1G", extra_args = ["-initrd", %s] }\n\n' \
      "$(toml_str "$d/shim.cpio.gz")"
  done > "$run/vmtest.toml"
  # vmtest passes its environment on to the guest's command.
  export MATRIX_OUT=$run MATRIX_WORKDIR=$workdir MATRIX_COMMAND=$command MATRIX_CACHE=$cache
  # timeout runs vmtest and qemu in a process group of their own, and takes them all down
  # when it is signalled: do that if we are interrupted.
  vm=""
  trap '[ -z "$vm" ] || kill -TERM "$vm" 2>/dev/null' EXIT
  trap 'exit 130' INT TERM
  failed=()
  for series in "${kernels[@]}"; do
    kver=$(cat "$cache/by-series/$series/kver")
    out=$run/$series
    echo "matrix: $series ($kver): in $workdir: $command"
    for attempt in 1 2; do
      rm -rf "$out" && mkdir -p "$out" && : > "$out/output.txt"
      t0=$(date +%s.%N)
      rc=0
      (cd "$run" && exec timeout "$guest_timeout" "$vmtest" -c "$run/vmtest.toml" -f "^debian-$series\$") \
        > "$run/console-$series.log" 2>&1 &
      vm=$!
      tail -n +1 -F --pid="$vm" "$out/output.txt" 2>/dev/null || true
      wait "$vm" || rc=$?
      vm=""
      wall=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.1f", a - b}')
      if [ -s "$out/status" ]; then
        status=$(cat "$out/status")
        result=PASS
        [ "$status" = 0 ] || { result=FAIL; failed+=("$series"); }
        printf 'matrix: %-5s %-24s %s (exit %s) in %s s\n' "$series" "$kver" "$result" "$status" "$wall"
        break
      elif [ -e "$out/started" ]; then
        why="vmtest rc=$rc"
        [ $rc -eq 124 ] && why="timed out after $guest_timeout s"
        printf 'matrix: %-5s %-24s FAIL (did not finish: %s) in %s s\n' "$series" "$kver" "$why" "$wall"
        failed+=("$series")
        break
      fi
      echo "matrix: $series attempt $attempt did not boot (vmtest rc=$rc, ${wall}s); console log:"
      tail -40 "$run/console-$series.log" | sed 's/^/    /'
      if [ $attempt -eq 2 ]; then
        printf 'matrix: %-5s %-24s FAIL (did not boot)\n' "$series" "$kver"
        failed+=("$series")
      fi
    done
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "matrix: FAILED on ${failed[*]} (output and console logs in $run)" >&2
    exit 1
  fi
  rm -rf "$run"
  echo "matrix: passed on ${kernels[*]} in $(($(date +%s) - started)) s"
  exit 0
fi

cargo build --release -q --bin bpf-features
cargo build --release -q --examples -p bpf-features-cli
cargo build --release -q -p bpf-features-integration --bin matrix-report --bin token-sandbox
cargo test --release --no-run -q -p bpf-features-integration --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])' > "$cache/tests.list"
[ -s "$cache/tests.list" ] || { echo "matrix: no integration test binaries were built" >&2; exit 1; }

rm -rf "$results" && mkdir -p "$results/host"
cp "$cache/tests.list" "$results/tests.list"
"$root/target/release/bpf-features" --json --kfuncs > "$results/host/report.json"
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
