#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd and kwok from their
# Go modules and caches them under $CP_BIN_DIR. A cached build is reused as is.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)
missing=()
for b in "${BINARIES[@]}"; do [[ -x "$CP_BIN_DIR/$b" ]] || missing+=("$b"); done
if [[ ${#missing[@]} -eq 0 ]]; then
  say "control plane binaries cached in $CP_BIN_DIR"
  exit 0
fi
say "building ${missing[*]} into $CP_BIN_DIR (cold build: several minutes on 2 cores)"
mkdir -p "$CP_BIN_DIR"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
work="$TP_CACHE_DIR/controlplane/src"
mkdir -p "$work"

needs() { printf '%s\n' "${missing[@]}" | grep -qx "$1"; }

# k8s.io/kubernetes points its staging modules at ./staging with version v0.0.0, so it cannot be
# built with `go install`. A wrapper module requires it and replaces each staging module with the
# published v0.X.Y; the list is read from upstream's own go.mod so it follows the minor version.
if needs kube-apiserver || needs kube-controller-manager || needs kube-scheduler || needs kubectl; then
  mod="$work/k8s-$K8S_VERSION"
  rm -rf "$mod"; mkdir -p "$mod"; cd "$mod"
  staging_version="v0.${K8S_VERSION#v1.}"
  say "k8s: resolving k8s.io/kubernetes@$K8S_VERSION"
  upstream_gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  go_directive=$(awk '/^go /{print $2; exit}' "$upstream_gomod")
  cat > go.mod <<GOMOD
module ticketplatform.local/k8sbuild

go $go_directive

require k8s.io/kubernetes $K8S_VERSION
GOMOD
  replaces=$(grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$upstream_gomod" | awk '{print $1}')
  say "k8s: replacing $(echo "$replaces" | wc -l) staging modules with $staging_version"
  for m in $replaces; do go mod edit -replace "$m=$m@$staging_version"; done
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    go mod edit -tool "k8s.io/kubernetes/cmd/$c"
  done
  say "k8s: go mod tidy (downloads modules)"
  go mod tidy
  ldflags="-s -w"
  for kv in "gitVersion=$K8S_VERSION" "gitMajor=1" "gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
            "gitTreeState=clean" "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
    ldflags="$ldflags -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
  done
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    needs "$c" || continue
    say "k8s: building $c $K8S_VERSION"
    go build -trimpath -ldflags "$ldflags" -o "$CP_BIN_DIR/$c" "k8s.io/kubernetes/cmd/$c"
  done
fi

if needs etcd; then
  mod="$work/etcd-$ETCD_VERSION"
  rm -rf "$mod"; mkdir -p "$mod"; cd "$mod"
  say "etcd: building go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  cat > go.mod <<GOMOD
module ticketplatform.local/etcdbuild

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

tool go.etcd.io/etcd/server/v3
GOMOD
  go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$CP_BIN_DIR/etcd" go.etcd.io/etcd/server/v3
fi

if needs kwok; then
  say "kwok: building sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  GOFLAGS= GOBIN="$CP_BIN_DIR" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi

for b in "${BINARIES[@]}"; do [[ -x "$CP_BIN_DIR/$b" ]] || { say "missing $b after build"; exit 1; }; done
say "control plane binaries ready in $CP_BIN_DIR"
