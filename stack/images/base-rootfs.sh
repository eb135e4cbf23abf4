#!/usr/bin/env bash
# The root filesystem of the local base image: Debian bookworm (minbase) with Python 3.11 in a venv at
# /opt/venv, so `python` and `pip` work as in python:3.11-slim-bookworm (the registry base the
# Dockerfiles name by default), plus ca-certificates, netbase, tzdata and passwd (`useradd`).
#
#   stack/images/base-rootfs.sh ROOTFS MIRROR SECURITY_MIRROR
#
# Writes ROOTFS (a new, empty or missing folder). stack/images.sh caches the result keyed by a hash of
# this file and the mirrors, and turns it into an image. Nothing from the host's TLS set-up gets in:
# packages come over plain http from the Debian mirror (signed by Debian's archive key), every chroot
# command runs with a clean environment, and the files debootstrap copies from the host
# (resolv.conf, hostname) are emptied.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

ROOTFS=$1 MIRROR=$2 SECURITY_MIRROR=$3
SUITE=bookworm
PACKAGES="python3 python3-venv ca-certificates netbase tzdata passwd"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# The chroot sees only this environment (not the host's SSL_CERT_FILE, PIP_*, proxies, ...).
in_root() {
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive chroot "$ROOTFS" "$@"
}

cleanup_mounts() {
  local m
  for m in "$ROOTFS/proc" "$ROOTFS/dev/pts" "$ROOTFS/dev"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
  done
}
trap cleanup_mounts EXIT

mkdir -p "$ROOTFS"
[[ -z "$(ls -A "$ROOTFS")" ]] || { say "base: $ROOTFS is not empty"; exit 1; }

started=$SECONDS
say "base: debootstrap --variant=minbase $SUITE from $MIRROR"
debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.debootstrap.log" 2>&1 || {
  say "base: debootstrap failed; last lines of $ROOTFS.debootstrap.log:"
  tail -n 30 "$ROOTFS.debootstrap.log" >&2
  exit 1
}
say "base: debootstrap done after $((SECONDS - started))s"

# The same sources a python:3.11-slim-bookworm image has (main, updates, security).
rm -f "$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: $KEYRING

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: $KEYRING
EOF
# Like the Debian images on Docker Hub: no docs, man pages or translations in this or later layers
# (a Dockerfile that installs a JRE creates /usr/share/man/man1 first, as it must on python:slim too).
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/excludes" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT::Install-Recommends "false";
EOF

mount -t proc proc "$ROOTFS/proc"
say "base: apt-get install $PACKAGES (and security updates)"
apt_log="$ROOTFS.apt.log"
if ! in_root sh -c "apt-get -q update && apt-get -q -y upgrade && apt-get -q -y install --no-install-recommends $PACKAGES" >"$apt_log" 2>&1; then
  say "base: apt-get failed; last lines of $apt_log:"
  tail -n 30 "$apt_log" >&2
  exit 1
fi

# python / pip as on python:slim: a venv first on PATH (Debian's own python3 stays untouched).
in_root python3 -m venv /opt/venv
in_root /opt/venv/bin/python -c 'import ssl, sqlite3, venv; print("python ok")' >/dev/null
cleanup_mounts

# Lean and host-free: package lists, caches, logs, docs, and what debootstrap copied from the host.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
  "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* "$ROOTFS"/root/.cache "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/*
find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
find "$ROOTFS/var/log" -type f -delete
: >"$ROOTFS/etc/resolv.conf"
rm -f "$ROOTFS/etc/hostname"
# Nothing of this machine's TLS interception may be in the base.
if [[ -n "$(ls -A "$ROOTFS/usr/local/share/ca-certificates" 2>/dev/null)" ]]; then
  say "base: unexpected local CA certificates in the rootfs"; exit 1
fi
say "base: rootfs ready ($(du -sh "$ROOTFS" | cut -f1)) after $((SECONDS - started))s"
