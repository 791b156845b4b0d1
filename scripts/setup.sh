#!/usr/bin/env bash
# Installs what building and testing bpf-features needs on a fresh Debian 12 machine:
# clang (the BPF-side C programs), libbpf headers, and Debian's bpftool (the independent
# implementation the tests compare with). Idempotent; needs root (it runs apt-get).
set -euo pipefail
need=()
command -v clang >/dev/null || need+=(clang llvm)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
command -v bpftool >/dev/null || [ -x /usr/sbin/bpftool ] || need+=(bpftool)
[ -e /usr/include/linux/bpf.h ] || need+=(linux-libc-dev)
command -v cc >/dev/null || need+=(build-essential)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
echo "setup: clang $(clang --version | head -1 | grep -o '[0-9][0-9.]*' | head -1), bpftool $(PATH=$PATH:/usr/sbin bpftool version 2>/dev/null | head -1 | awk '{print $2}')"
