#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd and kwok from their
# Go modules and caches them under $CP_BIN_DIR. A cached build is reused as is.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$STACK_DIR/lib-k8sbuild.sh"

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

k8s_missing=()
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  if needs "$c"; then k8s_missing+=("$c"); fi
done
if [[ ${#k8s_missing[@]} -gt 0 ]]; then
  build_k8s_commands "$work/k8s-$K8S_VERSION" "$CP_BIN_DIR" "${k8s_missing[@]}"
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
