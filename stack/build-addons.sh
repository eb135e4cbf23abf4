#!/usr/bin/env bash
# Builds the cluster add-ons CoreDNS and metrics-server from their Go modules (static binaries) and
# caches each under its own version: $ADDONS_CACHE/<name>-<version>/<name>. A cached binary is
# reused as is, so bumping one version in versions.env rebuilds only that add-on.
#   stack/build-addons.sh          build what is missing (cold: ~4 min CoreDNS, ~2 min metrics-server)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$STACK_DIR/addons/lib-addons.sh"

build_one() {
  local name=$1 version=$2 pkg=$3 ldflags=$4 dir
  dir=$(addon_bin_dir "$name" "$version")
  if [[ -x "$dir/$name" ]]; then
    say "$name $version: cached in $dir"
    return
  fi
  local tmp="$dir.tmp.$$" started=$SECONDS
  rm -rf "$tmp"; mkdir -p "$tmp"
  say "$name $version: go install $pkg@$version (cold: several minutes on 2 cores)"
  # GOBIN into a temp dir, then rename: an interrupted build never leaves a half binary cached.
  CGO_ENABLED=0 GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "$pkg@$version"
  [[ -x "$tmp/$name" ]] || { say "$name: go install produced no $name"; exit 1; }
  rm -rf "$dir"; mv "$tmp" "$dir"
  say "$name $version: built in $((SECONDS - started))s ($(du -h "$dir/$name" | cut -f1))"
}

# metrics-server's go.mod has no replace lines, so a plain `go install module@version` builds it.
# Version stamping as its Makefile does (client-go's version package).
ms_ldflags="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
build_one coredns "$COREDNS_VERSION" github.com/coredns/coredns "-s -w"
build_one metrics-server "$METRICS_SERVER_VERSION" sigs.k8s.io/metrics-server/cmd/metrics-server "$ms_ldflags"
say "add-on binaries ready: $(addon_bin_dir coredns "$COREDNS_VERSION")/coredns, $(addon_bin_dir metrics-server "$METRICS_SERVER_VERSION")/metrics-server"
