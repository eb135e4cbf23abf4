#!/usr/bin/env bash
# Builds what the real node needs and caches it:
#   kubelet, kube-proxy   from k8s.io/kubernetes $K8S_VERSION (same wrapper module as the control
#                         plane) into $NODE_BIN_DIR
#   the pause image       a static C program packaged with umoci as an OCI archive
#                         ($NODE_PAUSE_ARCHIVE), keyed by the hash of its inputs
#   a busybox image       for the node's tests ($NODE_BUSYBOX_ARCHIVE)
# A cached build is reused as is; a second run prints one line per part.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$STACK_DIR/node/lib-node.sh"

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
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
  local mod="$TP_CACHE_DIR/node/src/k8s-$K8S_VERSION"
  rm -rf "$mod"; mkdir -p "$mod"
  (
    cd "$mod"
    # k8s.io/kubernetes points its staging modules at ./staging (v0.0.0): a wrapper module requires
    # it and replaces each with the published v0.X.Y, read from upstream's go.mod (as in
    # stack/build-controlplane.sh).
    local staging_version="v0.${K8S_VERSION#v1.}" upstream_gomod go_directive replaces m c kv ldflags
    say "node: resolving k8s.io/kubernetes@$K8S_VERSION"
    upstream_gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    go_directive=$(awk '/^go /{print $2; exit}' "$upstream_gomod")
    cat > go.mod <<GOMOD
module ticketplatform.local/k8snodebuild

go $go_directive

require k8s.io/kubernetes $K8S_VERSION
GOMOD
    replaces=$(grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$upstream_gomod" | awk '{print $1}')
    for m in $replaces; do go mod edit -replace "$m=$m@$staging_version"; done
    for c in kubelet kube-proxy; do go mod edit -tool "k8s.io/kubernetes/cmd/$c"; done
    say "node: go mod tidy (downloads modules)"
    go mod tidy
    ldflags="-s -w"
    for kv in "gitVersion=$K8S_VERSION" "gitMajor=1" "gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
              "gitTreeState=clean" "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
      ldflags="$ldflags -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
    done
    mkdir -p "$NODE_BIN_DIR"
    for c in "${missing[@]}"; do
      say "node: building $c $K8S_VERSION"
      # Into a temp name, then rename: an interrupted build never leaves a half binary cached.
      go build -trimpath -ldflags "$ldflags" -o "$NODE_BIN_DIR/$c.tmp" "k8s.io/kubernetes/cmd/$c"
      mv "$NODE_BIN_DIR/$c.tmp" "$NODE_BIN_DIR/$c"
    done
  )
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
