#!/bin/bash
# Follow docs/部署.md on a fresh Debian 12 and check what each step promises: a minimal Debian made
# by debootstrap, entered with chroot (no container engine needed), the guide's own blocks run in it
# by deploy/rehearse-inside.sh, from apt-get to a rollback and a second upgrade.
#
# Usage, as root on Debian or Ubuntu:  deploy/rehearse.sh [folder]     (about 10 minutes)
# The newest release tag is installed and the one before it is the rollback's target. Only
# systemd is played (deploy/systemctl-shim.py): a chroot has no init.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/var/tmp/wxbot-rehearsal}
ROOTFS=$DIR/root
[ "$(id -u)" = 0 ] || { echo "需要 root（debootstrap、chroot、mount）" >&2; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap

NEW_TAG=$(git -C "$REPO" tag -l 'v*' --sort=v:refname | tail -1)
OLD_TAG=$(git -C "$REPO" tag -l 'v*' --sort=v:refname | tail -2 | head -1)
echo "部署 $NEW_TAG，回滚到 $OLD_TAG 再升级回来。"

inside_processes() {  # every process whose root is the chroot (services the rehearsal started)
    for pid in /proc/[0-9]*; do
        [ "$(readlink "$pid/root" 2>/dev/null)" = "$ROOTFS" ] && echo "${pid#/proc/}"
    done
    return 0
}
cleanup() {
    for pid in $(inside_processes); do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 2
    for pid in $(inside_processes); do kill -KILL "$pid" 2>/dev/null || true; done
    for mount in $(grep " $ROOTFS/" /proc/mounts | awk '{print $2}' | sort -r); do umount -l "$mount" || true; done
}
trap cleanup EXIT
cleanup
rm -rf "$ROOTFS"
mkdir -p "$DIR"
echo "debootstrap（最小安装的 Debian 12）……"
debootstrap --variant=minbase bookworm "$ROOTFS" http://deb.debian.org/debian > "$DIR/debootstrap.log"

mount -t proc proc "$ROOTFS/proc"
mount --rbind /sys "$ROOTFS/sys"
mount --rbind /dev "$ROOTFS/dev"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.1.1 %s\n' "$(hostname)" > "$ROOTFS/etc/hosts"
# The repository the guide clones ("<仓库地址>"), read-only.
mkdir -p "$ROOTFS/srv/wxbot.git"
mount --bind "$REPO" "$ROOTFS/srv/wxbot.git"
mount -o remount,ro,bind "$ROOTFS/srv/wxbot.git"
# This machine's Python package mirror, as the guide's "用镜像" line would give a campus.
for mirror in /opt/pypi /opt/pypi-more /opt/wheels; do
    if [ -d "$mirror" ]; then mkdir -p "$ROOTFS$mirror" && mount --bind "$mirror" "$ROOTFS$mirror"; fi
done
# The certificates this machine trusts (a proxy that inspects HTTPS brings its own), for pip only.
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/rehearsal-ca.crt"
printf '[global]\ncert = /etc/rehearsal-ca.crt\n' > "$ROOTFS/etc/pip.conf"
if [ -f /etc/pip.conf ]; then grep -v '^\[global\]\|^cert' /etc/pip.conf >> "$ROOTFS/etc/pip.conf" || true; fi
if [ -d /etc/xdg/pip ]; then mkdir -p "$ROOTFS/etc/xdg" && cp -r /etc/xdg/pip "$ROOTFS/etc/xdg/"; fi
# Packages install without starting their daemons (the systemctl stand-in starts what the guide enables).
printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d" && chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
install -m 644 "$REPO/deploy/systemctl-shim.py" "$ROOTFS/usr/local/lib/systemctl-shim.py"
install -m 644 "$REPO/wxbot/envfile.py" "$ROOTFS/usr/local/lib/wxbot-envfile.py"
printf '#!/bin/sh\nexec python3.11 /usr/local/lib/systemctl-shim.py "$@"\n' > "$ROOTFS/usr/local/sbin/systemctl"
chmod 755 "$ROOTFS/usr/local/sbin/systemctl"
python3 "$REPO/deploy/guide_blocks.py" "$REPO/docs/部署.md" "$ROOTFS/root/guide"
install -m 755 "$REPO/deploy/rehearse-inside.sh" "$ROOTFS/root/rehearse-inside.sh"

ENTER=(chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
       LANG=C.UTF-8 TERM=dumb NEW_TAG="$NEW_TAG" OLD_TAG="$OLD_TAG" /bin/bash /root/rehearse-inside.sh)
# Installing needs the network; running gets a network of its own (only lo), so that this machine's
# PostgreSQL, Redis, nginx or port 8000 neither answer in place of the rehearsal's nor block them.
"${ENTER[@]}" install 2>&1 | tee "$DIR/rehearsal.log"
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
unshare --net --fork /bin/sh -c 'ip link set lo up && exec "$@"' sh "${ENTER[@]}" run 2>&1 | tee -a "$DIR/rehearsal.log"
exit "${PIPESTATUS[0]}"
