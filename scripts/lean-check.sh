#!/usr/bin/env bash
# A tracer crate outside the workspace that depends only on the library must build without
# clang (the bundled BPF programs are behind the `bundled` feature) and without clap.
# BPF_CLANG points at nothing: if the ebpf crate's build script ran, the build would fail.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/target/lean-check"
rm -rf "$dir/crate"
mkdir -p "$dir/crate/src"
cat > "$dir/crate/Cargo.toml" <<TOML
[package]
name = "outside-tracer"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
bpf-features = { path = "$root/fallback" }

[workspace]
TOML
cat > "$dir/crate/src/main.rs" <<'RS'
use bpf_features::{probe::{FeatureSource, Features, Helper, AttachContext}, trace::TraceSpec};

fn main() {
    let spec = TraceSpec::new(&[], &["on_entry"]);
    let a = Features::get().helper(AttachContext::FentryBpfProg, Helper::GET_FUNC_IP);
    let _maps: Option<bpf_features::aya::maps::Map> = None;
    println!("{} programs; bpf_get_func_ip: {a}", spec.programs.len());
}
RS
# The workspace's lock pins the same versions (no download when they are cached).
cp "$root/Cargo.lock" "$dir/crate/Cargo.lock"
cd "$dir/crate"
export CARGO_TARGET_DIR="$dir/target"
tree="$(cargo tree -e normal --prefix none)"
for unwanted in clap bpf-features-ebpf; do
  if grep -q "^$unwanted v" <<<"$tree"; then
    echo "lean-check: a crate depending on bpf-features pulls in $unwanted" >&2
    exit 1
  fi
done
start=$(date +%s)
BPF_CLANG=/nonexistent/clang cargo build -q
echo "lean-check: an outside crate on bpf-features built without clang or clap in $(( $(date +%s) - start )) s"
