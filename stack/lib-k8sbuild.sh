# build_k8s_commands MODULE_DIR BIN_DIR COMMAND...: builds k8s.io/kubernetes/cmd/<COMMAND> at
# $K8S_VERSION into BIN_DIR. Source it (needs stack/lib.sh).
#
# k8s.io/kubernetes points its staging modules (k8s.io/api, client-go, ...) at ./staging with
# version v0.0.0, so it cannot be built with `go install`. A wrapper module requires it and replaces
# each staging module with the published v0.X.Y; the list is read from upstream's own go.mod, so it
# follows the minor version. Go's `tool` directive lets `go build` build the upstream mains as they
# are. Each binary is written under a temporary name and renamed, so an interrupted build never
# leaves half a binary in the cache.
build_k8s_commands() {
  local mod=$1 bin_dir=$2
  shift 2
  local staging_version="v0.${K8S_VERSION#v1.}" upstream_gomod go_directive replaces m c kv ldflags
  rm -rf "$mod"; mkdir -p "$mod" "$bin_dir"
  (
    cd "$mod"
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
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
    for c in "$@"; do go mod edit -tool "k8s.io/kubernetes/cmd/$c"; done
    say "k8s: go mod tidy (downloads modules)"
    go mod tidy
    ldflags="-s -w"
    for kv in "gitVersion=$K8S_VERSION" "gitMajor=1" "gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
              "gitTreeState=clean" "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
      ldflags="$ldflags -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
    done
    for c in "$@"; do
      say "k8s: building $c $K8S_VERSION"
      go build -trimpath -ldflags "$ldflags" -o "$bin_dir/$c.tmp" "k8s.io/kubernetes/cmd/$c"
      mv "$bin_dir/$c.tmp" "$bin_dir/$c"
    done
  )
}
