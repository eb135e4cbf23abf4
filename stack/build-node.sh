#!/usr/bin/env bash
# Builds what the real node needs and caches it:
#   kubelet, kube-proxy   from k8s.io/kubernetes $K8S_VERSION (stack/lib-k8sbuild.sh, as for the
#                         control plane) into $NODE_BIN_DIR
#   the pause image       a static C program packaged with umoci as an OCI archive
#                         ($NODE_PAUSE_ARCHIVE), keyed by the hash of its inputs
#   a busybox image       for the node's tests ($NODE_BUSYBOX_ARCHIVE)
# A cached build is reused as is; a second run prints one line per part.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$STACK_DIR/node/lib-node.sh"
. "$STACK_DIR/lib-k8sbuild.sh"

# ---------------------------------------------------------------------- kubelet, kube-proxy ----
build_binaries() {
  local missing=() b
  for b in kubelet kube-proxy; do [[ -x "$NODE_BIN_DIR/$b" ]] || missing+=("$b"); done
  if [[ ${#missing[@]} -eq 0 ]]; then
    say "node binaries cached in $NODE_BIN_DIR"
    return 0
  fi
  local started=$SECONDS
  say "building ${missing[*]} $K8S_VERSION into $NODE_BIN_DIR (cold build: a few minutes on 2 cores)"
  build_k8s_commands "$TP_CACHE_DIR/node/src/k8s-$K8S_VERSION" "$NODE_BIN_DIR" "${missing[@]}"
  say "node binaries built in $((SECONDS - started))s"
}

# ------------------------------------------------------------------------------ pause image ----
# The sandbox ("pause") container of every pod. No registry is reachable, so it is built here: a
# static binary that sleeps and reaps zombies, in an image of one layer, user 65535.
build_pause() {
  if [[ -f "$NODE_PAUSE_ARCHIVE" ]]; then
    say "pause image cached: $NODE_PAUSE_ARCHIVE"
    return 0
  fi
  command -v umoci >/dev/null || { say "umoci missing: run stack/system-packages.sh"; exit 1; }
  local started=$SECONDS tmp="$NODE_PAUSE_ARCHIVE.tmp.$$"
  say "pause image: gcc -static $STACK_DIR/node/pause.c, umoci -> $NODE_PAUSE_ARCHIVE"
  rm -rf "$tmp"; mkdir -p "$tmp"
  gcc -Os -static -s -o "$tmp/pause" "$STACK_DIR/node/pause.c"
  local layout="$tmp/layout" tag="${PAUSE_IMAGE##*:}"
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci unpack --image "$layout:$tag" "$tmp/bundle" >/dev/null
  install -m 0755 "$tmp/pause" "$tmp/bundle/rootfs/pause"
  umoci repack --image "$layout:$tag" "$tmp/bundle"
  umoci config --image "$layout:$tag" --os linux --architecture amd64 \
    --config.entrypoint /pause --config.user 65535:65535 --clear=config.env
  umoci gc --layout "$layout"
  # An OCI layout in a tar is what `ctr images import` reads; the tag becomes the image name's
  # tag, the name is given at import (--base-name).
  tar -C "$layout" -cf "$tmp/pause.tar" oci-layout index.json blobs
  mkdir -p "$(dirname "$NODE_PAUSE_ARCHIVE")"
  mv "$tmp/pause.tar" "$NODE_PAUSE_ARCHIVE"
  rm -rf "$tmp"
  say "pause image built in $((SECONDS - started))s ($(du -h "$NODE_PAUSE_ARCHIVE" | cut -f1))"
}

# ---------------------------------------------------------------------------- busybox image ----
# A small image for the node's tests (tests/test_node.py): Debian's static busybox (sh, httpd, id,
# wget, ...), nothing else. Keyed by the busybox package version.
build_busybox() {
  if [[ -f "$NODE_BUSYBOX_ARCHIVE" ]]; then
    say "busybox image cached: $NODE_BUSYBOX_ARCHIVE"
    return 0
  fi
  [[ -x /bin/busybox ]] || { say "busybox-static missing: run stack/system-packages.sh"; exit 1; }
  local tmp="$NODE_BUSYBOX_ARCHIVE.tmp.$$" tag="${BUSYBOX_IMAGE##*:}" layout a
  layout="$tmp/layout"
  say "busybox image: /bin/busybox ($(busybox_version)), umoci -> $NODE_BUSYBOX_ARCHIVE"
  rm -rf "$tmp"; mkdir -p "$tmp"
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci unpack --image "$layout:$tag" "$tmp/bundle" >/dev/null
  mkdir -p "$tmp/bundle/rootfs/bin" "$tmp/bundle/rootfs/tmp"
  chmod 1777 "$tmp/bundle/rootfs/tmp"
  install -m 0755 /bin/busybox "$tmp/bundle/rootfs/bin/busybox"
  for a in sh httpd id cat echo sleep touch wget ls hostname nc printf; do ln -s busybox "$tmp/bundle/rootfs/bin/$a"; done
  umoci repack --image "$layout:$tag" "$tmp/bundle"
  umoci config --image "$layout:$tag" --os linux --architecture amd64 \
    --config.entrypoint /bin/sh --config.user 65534:65534 --config.env PATH=/bin
  umoci gc --layout "$layout"
  tar -C "$layout" -cf "$tmp/image.tar" oci-layout index.json blobs
  mkdir -p "$(dirname "$NODE_BUSYBOX_ARCHIVE")"
  mv "$tmp/image.tar" "$NODE_BUSYBOX_ARCHIVE"
  rm -rf "$tmp"
  say "busybox image built ($(du -h "$NODE_BUSYBOX_ARCHIVE" | cut -f1))"
}

case "${1:-all}" in
  all) build_binaries; build_pause; build_busybox ;;
  busybox) build_busybox ;;
  binaries) build_binaries ;;
  pause) build_pause ;;
  *) echo "usage: $0 [all|binaries|pause|busybox]" >&2; exit 2 ;;
esac
