#!/usr/bin/env bash
# mkshim.sh <extracted-kernel-dir> <kernel-release> <out.cpio.gz>
# A tiny initramfs for vmtest on Debian's generic kernels, which build virtio and 9p as
# modules: it loads virtio_pci, virtio_console (vmtest's guest agent port), 9pnet_virtio
# and 9p with their dependencies in modules.dep order (decompressing .ko.xz/.ko.zst),
# mounts vmtest's 9p root (tag /dev/root) and switch_roots to vmtest's init=.
set -euo pipefail
kdir=$1 kver=$2 out=$3
mods=$( { ls -d "$kdir/lib/modules/$kver" "$kdir/usr/lib/modules/$kver" 2>/dev/null || true; } | head -1)
[ -n "$mods" ] || { echo "mkshim: no modules for $kver in $kdir" >&2; exit 1; }
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q static || busybox=/bin/busybox
[ -x "$busybox" ] || { echo "mkshim: needs busybox-static" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/lib/modules" "$root/proc" "$root/dev" "$root/newroot"
cp "$busybox" "$root/bin/busybox"

declare -A dep_of loaded
while IFS=: read -r mod deps; do
  name=$(basename "$mod"); name=${name%%.ko*}; name=${name//-/_}
  dep_of[$name]="$mod:$deps"
done < "$mods/modules.dep"
builtin=$(sed 's|.*/||; s|\.ko.*||; s|-|_|g' "$mods/modules.builtin" 2>/dev/null || true)
n=0
add() { # load order: dependencies first
  local name=${1//-/_} entry path deps d
  [ -n "${loaded[$name]:-}" ] && return 0
  loaded[$name]=1
  entry=${dep_of[$name]:-}
  if [ -z "$entry" ]; then
    grep -qx "$name" <<<"$builtin" && return 0
    echo "mkshim: module $name not found for $kver" >&2; exit 1
  fi
  path=${entry%%:*}; deps=${entry#*:}
  for d in $deps; do d=$(basename "$d"); add "${d%%.ko*}"; done
  n=$((n + 1))
  dst=$root/lib/modules/$(printf %02d $n)-$name.ko
  case $path in
    *.xz) xz -dc "$mods/$path" > "$dst" ;;
    *.zst) zstd -dcq "$mods/$path" > "$dst" ;;
    *) cp "$mods/$path" "$dst" ;;
  esac
}
for m in virtio_pci virtio_console 9pnet_virtio 9p; do add "$m"; done

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do /bin/busybox insmod "$m" || echo "shim: insmod $m failed"; done
init=/sbin/init flags=trans=virtio
for w in $(/bin/busybox cat /proc/cmdline); do
  case $w in init=*) init=${w#init=} ;; rootflags=*) flags=${w#rootflags=} ;; esac
done
/bin/busybox mount -t 9p -o "$flags" /dev/root /newroot || { echo "shim: 9p root mount failed"; /bin/busybox poweroff -f; }
/bin/busybox umount /dev
/bin/busybox umount /proc
exec /bin/busybox switch_root /newroot "$init"
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
