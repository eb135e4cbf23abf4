#!/usr/bin/env bash
# Cluster add-ons on the real node: CoreDNS (cluster DNS at 10.96.0.10) and metrics-server
# (metrics.k8s.io for `kubectl top` and CPU HPAs), as pods in kube-system from locally built images.
#   stack/addons.sh build    build the binaries (cached by version) and their images (cached by
#                            content hash of binary + recipe) into oci-archives
#   stack/addons.sh import   build if needed, import the images into containerd (k8s.io namespace)
#   stack/addons.sh apply [--no-wait]
#                            import if needed, apply the manifests, wait until both are Ready and
#                            the metrics API is Available (needs the node tp-node Ready); with
#                            --no-wait return right after applying (then `wait` later)
#   stack/addons.sh wait     wait until CoreDNS, metrics-server and the metrics API are Ready
#   stack/addons.sh status   one line per add-on
#   stack/addons.sh delete   remove the add-ons' objects from the cluster
#   stack/addons.sh images   print the image archives (path per line)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$STACK_DIR/addons/lib-addons.sh"

CONTAINERD_SOCK="${CONTAINERD_SOCK:-/run/containerd/containerd.sock}"
KUBECONFIG_ADMIN="$TP_RUN_DIR/controlplane/kubeconfig"
NODE_NAME="${TP_NODE_NAME:-tp-node}"
IMAGES_CACHE="$TP_CACHE_DIR/images"
WAIT_SECONDS="${ADDONS_WAIT_SECONDS:-180}"

kubectl_admin() { "$CP_BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
ctr_k8s() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# name binary image uid: one line per add-on image.
addon_images() {
  echo "coredns $(addon_bin_dir coredns "$COREDNS_VERSION")/coredns $COREDNS_IMAGE 65532"
  echo "metrics-server $(addon_bin_dir metrics-server "$METRICS_SERVER_VERSION")/metrics-server $METRICS_SERVER_IMAGE 1000"
}

# The archive's path is keyed by what goes into the image, so a new binary or recipe makes a new
# archive and an unchanged one is reused.
archive_path() { # archive_path NAME BINARY IMAGE UID
  local key
  key=$( { sha256sum "$2" | cut -d' ' -f1; sha256sum "$ADDONS_DIR/build-image.sh" | cut -d' ' -f1; echo "$3 $4"; } \
    | sha256sum | cut -c1-16)
  echo "$IMAGES_CACHE/$1-$key.oci.tar"
}

# The manifest digest inside an oci-archive: what containerd records as the image's target.
archive_digest() {
  tar -xOf "$1" index.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])'
}

cmd_build() {
  # umoci and skopeo come with the `images` group.
  bash "$STACK_DIR/system-packages.sh" images
  bash "$STACK_DIR/build-addons.sh"
  mkdir -p "$IMAGES_CACHE"
  local name bin image uid archive started
  while read -r name bin image uid; do
    archive=$(archive_path "$name" "$bin" "$image" "$uid")
    if [[ -f "$archive" ]]; then
      say "image $image: cached ($archive)"
      continue
    fi
    started=$SECONDS
    say "image $image: packaging $bin from scratch"
    bash "$ADDONS_DIR/build-image.sh" "$bin" "$image" "$uid" "$archive"
    say "image $image: built in $((SECONDS - started))s ($(du -h "$archive" | cut -f1), $archive)"
  done < <(addon_images)
}

# Present in containerd with exactly this archive's manifest? Then the import is skipped.
image_current() { # image_current IMAGE DIGEST
  ctr_k8s images ls -q "name==$1" 2>/dev/null | grep -qx "$1" || return 1
  [[ "$(ctr_k8s images ls "name==$1" | awk 'NR==2 {print $3}')" == "$2" ]]
}

cmd_import() {
  cmd_build
  [[ -S "$CONTAINERD_SOCK" ]] || { say "addons: containerd is not running ($CONTAINERD_SOCK missing); start the node first"; exit 1; }
  local name bin image uid archive digest started
  while read -r name bin image uid; do
    archive=$(archive_path "$name" "$bin" "$image" "$uid")
    digest=$(archive_digest "$archive")
    if image_current "$image" "$digest"; then
      say "image $image: already in containerd ($digest)"
      continue
    fi
    started=$SECONDS
    say "image $image: importing into containerd (k8s.io)"
    ctr_k8s images import "$archive" >/dev/null
    image_current "$image" "$digest" || { say "image $image: not found in containerd after import"; exit 1; }
    say "image $image: imported in $((SECONDS - started))s ($digest)"
  done < <(addon_images)
}

render() { # render FILE: the manifest with this checkout's image names filled in
  sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" -e "s|@METRICS_SERVER_IMAGE@|$METRICS_SERVER_IMAGE|g" "$1"
}

node_ready() {
  [[ "$(kubectl_admin get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

cmd_apply() {
  node_ready || { say "addons: node $NODE_NAME is not Ready; start the node first (stack/node.sh)"; exit 1; }
  cmd_import
  local f
  for f in coredns metrics-server; do
    say "addons: applying $f"
    render "$ADDONS_DIR/$f.yaml" | kubectl_admin apply -f - >/dev/null
  done
  [[ "${1:-}" == --no-wait ]] || cmd_wait
}

cmd_wait() {
  local started=$SECONDS f
  for f in coredns metrics-server; do
    if ! kubectl_admin -n kube-system rollout status "deployment/$f" --timeout="${WAIT_SECONDS}s" >/dev/null; then
      say "addons: $f not Ready after ${WAIT_SECONDS}s"
      kubectl_admin -n kube-system get pods -l "k8s-app=$( [[ $f == coredns ]] && echo kube-dns || echo "$f")" -o wide >&2 || true
      kubectl_admin -n kube-system describe "deployment/$f" | tail -n 20 >&2 || true
      exit 1
    fi
    say "addons: $f Ready"
  done
  # The aggregation layer marks the APIService Available once it can reach metrics-server.
  if ! kubectl_admin wait apiservice/v1beta1.metrics.k8s.io --for=condition=Available --timeout="${WAIT_SECONDS}s" >/dev/null; then
    say "addons: metrics API not Available after ${WAIT_SECONDS}s"
    kubectl_admin get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions}' >&2 || true
    exit 1
  fi
  say "addons: CoreDNS and metrics-server Ready, metrics API Available (waited $((SECONDS - started))s)"
}

cmd_status() {
  local f label ready
  for f in coredns metrics-server; do
    ready=$(kubectl_admin -n kube-system get deployment "$f" \
      -o jsonpath='{.status.readyReplicas}/{.spec.replicas}' 2>/dev/null) || ready=""
    if [[ -z "$ready" ]]; then echo "$f: not installed"; continue; fi
    label=$( [[ $f == coredns ]] && echo kube-dns || echo "$f")
    [[ $ready != /* ]] || ready="0$ready"  # readyReplicas is absent while none is ready
    echo "$f: ready $ready ($(kubectl_admin -n kube-system get pods -l "k8s-app=$label" \
      -o jsonpath='{range .items[*]}{.metadata.name} on {.spec.nodeName} {.status.phase}{" "}{end}' 2>/dev/null))"
  done
  echo "metrics API: $(kubectl_admin get apiservice v1beta1.metrics.k8s.io \
    -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null || echo 'not installed')"
}

cmd_delete() {
  local f
  for f in metrics-server coredns; do
    say "addons: deleting $f"
    render "$ADDONS_DIR/$f.yaml" | kubectl_admin delete --ignore-not-found -f - >/dev/null
  done
}

cmd_images() {
  local name bin image uid
  while read -r name bin image uid; do archive_path "$name" "$bin" "$image" "$uid"; done < <(addon_images)
}

case "${1:-}" in
  build) cmd_build ;;
  import) cmd_import ;;
  apply) cmd_apply "${2:-}" ;;
  wait) cmd_wait ;;
  status) cmd_status ;;
  delete) cmd_delete ;;
  images) cmd_images ;;
  *) echo "usage: $0 build|import|apply [--no-wait]|wait|status|delete|images" >&2; exit 2 ;;
esac
