#!/usr/bin/env bash
# fetch.sh <cache-dir>: downloads what the VM matrix needs into <cache-dir>, once:
#  - the newest Debian kernel image of each series in kernels.conf, extracted, with depmod;
#  - qemu 10 from bookworm-backports (bookworm's qemu 7.2 crashed the 6.12 guest in ~5% of
#    boots; qemu 10 in none of 90), extracted, not installed.
# It uses a private apt state: the system's sources are not touched. Every index is
# verified against Debian's archive keyring (Signed-By), and apt checks each .deb against
# the verified index, so nothing unsigned is trusted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=$(realpath -m "$1")
apt_dir=$cache/apt
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mirror=${DEBIAN_MIRROR:-http://deb.debian.org}
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/debs" "$cache/kernels" "$cache/qemu"

suites=$(awk '!/^#/ && NF {print $2}' "$here/kernels.conf" | tr ',' '\n'; echo bookworm-backports)
{
  for s in $(echo "$suites" | sort -u); do
    case $s in
      *-security) base=$mirror/debian-security ;;
      *) base=$mirror/debian ;;
    esac
    # sid's Release on the mirror may be past its Valid-Until between publishes: its
    # signature is still checked, only the freshness date is not (for sid alone).
    fresh=""; [ "$s" = sid ] && fresh='Check-Valid-Until: no\n'
    printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n$fresh\n" "$base" "$s" "$keyring"
  done
} > "$apt_dir/sources.sources"
apt_opts=(-o "Dir::Etc::sourcelist=-" -o "Dir::Etc::sourceparts=$apt_dir/parts"
  -o "Dir::State::lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::State::status=$apt_dir/status" -o "Acquire::Languages=none"
  -o "APT::Sandbox::User=root" -o "APT::Get::AllowUnauthenticated=false" -o "Acquire::AllowInsecureRepositories=false")
mkdir -p "$apt_dir/parts" && cp "$apt_dir/sources.sources" "$apt_dir/parts/matrix.sources"
touch "$apt_dir/status"
# Refresh the indexes at most daily, or when the suites changed; packages themselves are
# cached by name.
if [ -z "$(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ] \
  || ! cmp -s "$apt_dir/sources.sources" "$apt_dir/sources.updated"; then
  apt-get "${apt_opts[@]}" -q update >"$cache/apt-update.log" 2>&1 || { cat "$cache/apt-update.log"; exit 1; }
  cp "$apt_dir/sources.sources" "$apt_dir/sources.updated"
fi

download() { # package [version] -> path of its .deb in the cache
  local pkg=$1 ver=${2:-} f
  f=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
  if [ -z "$f" ]; then
    (cd "$cache/debs" && apt-get "${apt_opts[@]}" -q download "$pkg${ver:+=$ver}" >/dev/null)
    f=$(ls "$cache/debs/${pkg}_"*.deb | head -1)
  fi
  echo "$f"
}

: > "$cache/kernels.list"
while read -r series _suites pattern; do
  case $series in ''|\#*) continue ;; esac
  pkg=$(apt-cache "${apt_opts[@]}" pkgnames linux-image- | { grep -E "$pattern" || true; } | sort -V | tail -1)
  [ -n "$pkg" ] || { echo "fetch: no package matches $pattern for $series" >&2; exit 1; }
  kver=${pkg#linux-image-}
  dir=$cache/kernels/$kver
  if [ ! -e "$dir/.done" ]; then
    deb=$(download "$pkg")
    rm -rf "$dir" && mkdir -p "$dir"
    dpkg-deb -x "$deb" "$dir"
    # From 7.x, linux-image-* is a metapackage: the kernel is in linux-binary-* (under
    # /usr/lib/modules/<version>/vmlinuz), the modules in linux-modules-*, and
    # modules.builtin and the config in linux-base-*.
    for part in linux-base linux-binary linux-modules; do
      if dpkg-deb -f "$deb" Depends | grep -q "$part-$kver "; then
        dpkg-deb -x "$(download "$part-$kver")" "$dir"
      fi
    done
    base=$dir; [ -d "$dir/usr/lib/modules" ] && base=$dir/usr
    depmod -b "$base" "$kver"
    touch "$dir/.done"
  fi
  echo "$series $kver $dir" >> "$cache/kernels.list"
  echo "fetch: $series -> $pkg"
done < "$here/kernels.conf"

if [ ! -e "$cache/qemu/.done" ]; then
  rm -rf "$cache/qemu" && mkdir -p "$cache/qemu"
  # qemu from bookworm-backports; its firmware (seabios, ipxe) from there or bookworm.
  for p in qemu-system-x86 qemu-system-data qemu-system-common seabios ipxe-qemu; do
    v=$(apt-cache "${apt_opts[@]}" madison "$p" | awk '$6 ~ /^bookworm-backports\// {print $3; exit}')
    case $p in seabios|ipxe-qemu) [ -n "$v" ] || v=$(apt-cache "${apt_opts[@]}" madison "$p" | awk '$6 ~ /^bookworm\// {print $3; exit}') ;; esac
    [ -n "$v" ] || { echo "fetch: $p not in bookworm(-backports)" >&2; exit 1; }
    deb=$(download "$p" "$v")
    dpkg-deb -x "$deb" "$cache/qemu"
  done
  # Its libraries that the host lacks, from bookworm(-backports) only (trixie's need a newer
  # glibc), transitively: extracted beside it (qemu-tcg sets LD_LIBRARY_PATH).
  queue=$(for p in qemu-system-x86 qemu-system-common; do dpkg-deb -f "$(download "$p")" Depends; done)
  seen=" "
  while [ -n "$queue" ]; do
    next=""
    for dep in $(echo "$queue" | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//' | awk 'NF {print $1}'); do
      case $dep in lib*) ;; *) continue ;; esac
      case $seen in *" $dep "*) continue ;; esac
      seen="$seen$dep "
      dpkg -s "$dep" >/dev/null 2>&1 && continue
      v=$(apt-cache "${apt_opts[@]}" madison "$dep" | awk '$6 ~ /^bookworm(-backports)?\// {print $3; exit}')
      [ -n "$v" ] || { echo "fetch: $dep (needed by qemu) is not in bookworm" >&2; exit 1; }
      deb=$(download "$dep" "$v")
      dpkg-deb -x "$deb" "$cache/qemu"
      next="$next,$(dpkg-deb -f "$deb" Depends)"
    done
    queue=$next
  done
  touch "$cache/qemu/.done"
fi
qv=$("$here/qemu-tcg" --version) || { echo "fetch: the extracted qemu does not run: $qv" >&2; exit 1; }
echo "fetch: ${qv%%$'\n'*}"
