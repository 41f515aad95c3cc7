#!/usr/bin/env bash
# Builds the test image keel/busybox:latest (or $1) with `docker import` from
# Debian's busybox-static, since no image can be pulled on these machines.
# The rootfs holds /bin/busybox, the links `busybox --install -s` would make
# (bin/sh, bin/echo, ...), /tmp and minimal /etc/passwd and /etc/group.
# Idempotent: exits 0 without work when the image exists already.
set -euo pipefail
image=${1:-keel/busybox:latest}
busybox=${BUSYBOX:-/bin/busybox}

if ! docker info >/dev/null 2>&1; then
	echo "busybox-image: no Docker engine answers (docker info failed)" >&2
	exit 1
fi
if docker image inspect "$image" >/dev/null 2>&1; then
	echo "busybox-image: $image exists already"
	exit 0
fi
if ! [ -x "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
	# Without `file`, trust that the busybox-static package put it there.
	if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
		echo "busybox-image: $busybox is not a static busybox (install busybox-static)" >&2
		exit 1
	fi
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,tmp,etc,root,proc,sys,dev}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
# `busybox --list-full` names each applet with the directory --install -s
# would link it in (bin/sh, sbin/ifconfig, usr/bin/env, ...).
n=0
while read -r applet; do
	[ "$applet" = "bin/busybox" ] && continue
	ln -s /bin/busybox "$root/$applet"
	n=$((n + 1))
done < <("$root/bin/busybox" --list-full)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar -C "$root" -c . | docker import \
	-c 'CMD ["/bin/sh"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
	-m "keel test image from $(dpkg-query -W -f='${Package} ${Version}' busybox-static 2>/dev/null || echo busybox)" \
	- "$image" >/dev/null
echo "busybox-image: built $image from $busybox with $n applet links ($(docker image inspect -f '{{.Size}}' "$image") bytes)"
