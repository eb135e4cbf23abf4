#!/usr/bin/env bash
# The platform's container images, built on this machine from the repository's own Dockerfiles with
# buildah (no Docker, no registry), on a base built locally from Debian packages.
#
#   stack/images.sh build [NAME...]    build what changed (default: all six), print per-image progress
#   stack/images.sh import [NAME...]   build (cached), then import into containerd's k8s.io namespace
#   stack/images.sh list               the images, their archives, sizes and whether containerd has them
#   stack/images.sh archive NAME       print the path of NAME's OCI archive (after build)
#   stack/images.sh prune              drop buildah's leftover containers and untagged build-cache layers
#
# Names: frontend user-service event-catalog booking-service operator analytics-job, tagged
# $IMAGE_PREFIX/<name>:$IMAGE_TAG (default ghcr.io/ticketplatform/<name>:<pyproject version>), the
# names the TicketPlatform uses by default.
#
# * Base: stack/images/base-rootfs.sh (debootstrap --variant=minbase bookworm from the Debian mirror
#   apt uses here, Python 3.11 in a venv first on PATH), cached under $TP_CACHE_DIR/images/base/ keyed
#   by a hash of its recipe. The Dockerfiles take it as `--build-arg BASE_IMAGE` (their default,
#   python:3.11.11-slim-bookworm, is what a build with a registry uses).
# * Build: `buildah build --isolation chroot` on a context holding only what each Dockerfile COPYs;
#   storage in $TP_CACHE_DIR/images/storage. An image is rebuilt only when the hash of its Dockerfile,
#   the files it COPYs and the base changes; the result is an OCI archive,
#   $TP_CACHE_DIR/images/<name>/<hash>.oci.tar.
# * TLS: this machine intercepts TLS with its own CA. RUN steps see the host's CA bundle through a
#   read-only bind mount over the image's /etc/ssl/certs/ca-certificates.crt (a mount is not part of
#   any layer); buildah runs with a clean environment, so none of the host's SSL_CERT_FILE,
#   REQUESTS_CA_BUNDLE or PIP_* reaches a RUN step or an image's config. tests/test_images.py checks.
#
# Environment: IMAGE_PREFIX, IMAGE_TAG, CONTAINERD_ADDRESS (default /run/containerd/containerd.sock),
# TP_BUILD_CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt), TP_IMAGES_STORAGE_DRIVER (overlay).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

IMAGES_DIR="$TP_CACHE_DIR/images"
STORE="$IMAGES_DIR/storage"
RUNROOT="$IMAGES_DIR/runroot"
STORAGE_DRIVER="${TP_IMAGES_STORAGE_DRIVER:-overlay}"
IMAGE_PREFIX="${IMAGE_PREFIX:-ghcr.io/ticketplatform}"
IMAGE_TAG="${IMAGE_TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_DIR/pyproject.toml" | head -n1)}"
CONTAINERD_ADDRESS="${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}"
CA_BUNDLE="${TP_BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# Part of every image's input hash: bump it when the way images are built changes.
BUILD_RECIPE="buildah-chroot-oci-v1"

declare -A DOCKERFILES=(
  [frontend]=services/docker/frontend.Dockerfile
  [user-service]=services/docker/user-service.Dockerfile
  [event-catalog]=services/docker/event-catalog.Dockerfile
  [booking-service]=services/docker/booking-service.Dockerfile
  [operator]=operator/Dockerfile
  [analytics-job]=flink/Dockerfile
)
ORDER=(frontend user-service event-catalog booking-service operator analytics-job)

ref_of() { echo "$IMAGE_PREFIX/$1:$IMAGE_TAG"; }
human() { numfmt --to=iec-i --suffix=B "$1"; }

# buildah with our own storage and a clean environment (nothing of the host's TLS/pip settings).
bh() {
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    TMPDIR="$IMAGES_DIR/tmp" BUILDAH_ISOLATION=chroot \
    buildah --root "$STORE" --runroot "$RUNROOT" --storage-driver "$STORAGE_DRIVER" "$@"
}

need_tools() {
  local missing=()
  for c in buildah debootstrap; do command -v "$c" >/dev/null || missing+=("$c"); done
  [[ ${#missing[@]} -eq 0 ]] || bash "$STACK_DIR/system-packages.sh" images
  [[ $(id -u) -eq 0 ]] || { say "images: building needs root (debootstrap, chroot)"; exit 1; }
}

# The Debian mirror apt uses here (first deb822 or one-line source for the main and security suites).
apt_mirror() {
  local want=$1 uri
  uri=$(
    { cat /etc/apt/sources.list.d/*.sources 2>/dev/null; echo; } | awk -v want="$want" '
      /^URIs:/ {u=$2} /^Suites:/ {s=$0}
      /^$/ { if (u != "" && s ~ (want == "security" ? "-security" : " bookworm( |$)")) { print u; exit } u=""; s="" }'
  )
  if [[ -z "$uri" ]]; then
    uri=$(grep -hE '^deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk -v want="$want" '(want == "security") == ($3 ~ /-security/) { print $2; exit }')
  fi
  if [[ -z "$uri" ]]; then
    [[ $want == security ]] && uri=http://deb.debian.org/debian-security || uri=http://deb.debian.org/debian
  fi
  echo "${uri%/}"
}

# --- base ---------------------------------------------------------------------------------------

# The base's recipe hash, name, archive and image id (empty until built); nothing is built here.
BASE_ID="" BASE_REF="" BASE_HASH="" BASE_ARCHIVE="" MIRROR="" SECURITY_MIRROR=""
base_state() {
  MIRROR="${TP_DEBIAN_MIRROR:-$(apt_mirror main)}"
  SECURITY_MIRROR="${TP_DEBIAN_SECURITY_MIRROR:-$(apt_mirror security)}"
  BASE_HASH=$({ cat "$STACK_DIR/images/base-rootfs.sh"; echo "$MIRROR $SECURITY_MIRROR"; } | sha256sum | cut -c1-16)
  BASE_REF="localhost/ticketplatform-base:$BASE_HASH"
  BASE_ARCHIVE="$IMAGES_DIR/base/$BASE_HASH.oci.tar"
  BASE_ID=$(cat "$BASE_ARCHIVE.id" 2>/dev/null || true)
}

ensure_base() {
  local hash archive started rootfs ctr mnt
  base_state
  hash=$BASE_HASH archive=$BASE_ARCHIVE
  if [[ -s "$archive" && -n "$BASE_ID" ]]; then
    if ! bh inspect --type image "$BASE_REF" >/dev/null 2>&1; then
      bh pull --quiet "oci-archive:$archive" >/dev/null
    fi
    say "image base: cached ($BASE_REF, $(human "$(stat -c %s "$archive")"))"
    return 0
  fi
  say "image base: building from Debian packages ($MIRROR)..."
  started=$SECONDS
  mkdir -p "$IMAGES_DIR/base"
  # A finished rootfs survives a failure of the steps after it ($rootfs.done marks it finished).
  rootfs="$IMAGES_DIR/base/$hash.rootfs"
  if [[ ! -e "$rootfs.done" ]]; then
    rm -rf "$rootfs"
    bash "$STACK_DIR/images/base-rootfs.sh" "$rootfs" "$MIRROR" "$SECURITY_MIRROR"
    touch "$rootfs.done"
  fi
  ctr=$(bh from --pull=never scratch)
  # Copy the tree into the working container (owners, modes, links and hard links kept).
  mnt=$(bh mount "$ctr")
  tar -C "$rootfs" --numeric-owner --xattrs -cf - . | tar -C "$mnt" --numeric-owner --xattrs -xpf -
  bh umount "$ctr" >/dev/null
  bh config --env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd python3 --os linux --arch "$(dpkg --print-architecture)" \
    --label org.opencontainers.image.title=ticketplatform-base \
    --label org.opencontainers.image.description="Debian bookworm minbase + python3 venv (stack/images/base-rootfs.sh)" \
    "$ctr"
  bh commit --quiet --rm "$ctr" "$BASE_REF" >/dev/null
  rm -rf "$rootfs" "$rootfs".*.log "$rootfs.done"
  bh push --quiet "$BASE_REF" "oci-archive:$archive.tmp:$BASE_REF"
  bh inspect --type image --format '{{.FromImageID}}' "$BASE_REF" >"$archive.id"
  mv "$archive.tmp" "$archive"
  BASE_ID=$(cat "$archive.id")
  say "image base: built in $((SECONDS - started))s ($(human "$(stat -c %s "$archive")"))"
}

# --- service images -----------------------------------------------------------------------------

input_hash() {
  local name=$1 ctx_hash
  ctx_hash=$(python3 "$STACK_DIR/images/context.py" "$REPO_DIR" "${DOCKERFILES[$name]}")
  printf '%s\n' "$BUILD_RECIPE" "$ctx_hash" "$BASE_ID" "$(ref_of "$name")" | sha256sum | cut -c1-16
}

archive_of() { echo "$IMAGES_DIR/$1/$(input_hash "$1").oci.tar"; }

build_one() {
  local name=$1 ref hash archive ctx log started secs unpacked
  ref=$(ref_of "$name")
  hash=$(input_hash "$name")
  archive="$IMAGES_DIR/$name/$hash.oci.tar"
  if [[ -s "$archive" ]]; then
    say "image $name: cached ($ref, $(human "$(stat -c %s "$archive")"), built in $(sed -n 's/^build_seconds=//p' "$archive.meta" 2>/dev/null || echo '?')s)"
    return 0
  fi
  say "image $name: building $ref from ${DOCKERFILES[$name]}..."
  started=$SECONDS
  mkdir -p "$IMAGES_DIR/$name"
  ctx=$(mktemp -d "$IMAGES_DIR/tmp/context.XXXXXX")
  python3 "$STACK_DIR/images/context.py" "$REPO_DIR" "${DOCKERFILES[$name]}" --into "$ctx" >/dev/null
  log="$IMAGES_DIR/$name/build.log"
  if ! bh build --isolation chroot --layers --force-rm --pull=never --format oci --http-proxy=false \
      --volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" \
      --build-arg "BASE_IMAGE=$BASE_REF" \
      --label "org.opencontainers.image.title=ticketplatform-$name" \
      --label "org.opencontainers.image.version=$IMAGE_TAG" \
      --file "$ctx/${DOCKERFILES[$name]}" --tag "$ref" "$ctx" >"$log" 2>&1; then
    say "image $name: build failed; last lines of $log:"
    tail -n 40 "$log" >&2
    rm -rf "$ctx"
    exit 1
  fi
  rm -rf "$ctx"
  bh push --quiet "$ref" "oci-archive:$archive.tmp:$ref"
  mv "$archive.tmp" "$archive"
  secs=$((SECONDS - started))
  unpacked=$(bh images --format '{{.Size}}' "$ref" | head -n1 | tr -d ' ')
  printf 'build_seconds=%s\nbuilt_at=%s\nref=%s\nunpacked=%s\n' "$secs" "$(date -u +%FT%TZ)" "$ref" "$unpacked" >"$archive.meta"
  # Only the newest archive of an image is kept.
  find "$IMAGES_DIR/$name" -maxdepth 1 -name '*.oci.tar*' ! -name "$hash.oci.tar*" -delete
  say "image $name: built in ${secs}s ($(human "$(stat -c %s "$archive")") archive, $unpacked unpacked)"
}

build() {
  local names=("$@") started=$SECONDS
  need_tools
  mkdir -p "$IMAGES_DIR/tmp" "$STORE" "$RUNROOT"
  exec 9>"$IMAGES_DIR/.lock"
  flock 9
  ensure_base
  for name in "${names[@]}"; do build_one "$name"; done
  say "images: ${#names[@]} image(s) ready after $((SECONDS - started))s"
}

# --- containerd ---------------------------------------------------------------------------------

ctr_k8s() { ctr --address "$CONTAINERD_ADDRESS" --namespace k8s.io "$@"; }

# The manifest digest an archive holds, and the one containerd has under REF (empty if none).
archive_digest() { tar -xOf "$1" index.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])'; }
containerd_digest() { ctr_k8s images ls "name==$1" 2>/dev/null | awk -v r="$1" '$1 == r { print $3 }'; }

import() {
  local names=("$@") name ref archive want started
  [[ -S "$CONTAINERD_ADDRESS" ]] || { say "images: containerd is not running ($CONTAINERD_ADDRESS); start it first (stack/node.sh)"; exit 1; }
  build "${names[@]}"
  for name in "${names[@]}"; do
    ref=$(ref_of "$name")
    archive=$(archive_of "$name")
    want=$(archive_digest "$archive")
    if [[ "$(containerd_digest "$ref")" == "$want" ]]; then
      say "image $name: already in containerd ($ref)"
      continue
    fi
    started=$SECONDS
    ctr_k8s images import "$archive" >/dev/null
    if [[ "$(containerd_digest "$ref")" != "$want" ]]; then
      say "image $name: containerd does not list $ref with digest $want after the import"; exit 1
    fi
    say "image $name: imported into containerd as $ref in $((SECONDS - started))s"
  done
}

list() {
  local name ref archive have
  base_state
  printf '%-16s %-44s %9s %9s %7s  %s\n' NAME REF ARCHIVE UNPACKED BUILD CONTAINERD
  for name in "${ORDER[@]}"; do
    ref=$(ref_of "$name")
    archive=$(archive_of "$name")
    have="-"
    [[ -S "$CONTAINERD_ADDRESS" ]] && { [[ -n "$(containerd_digest "$ref")" ]] && have=yes || have=no; }
    if [[ -s "$archive" ]]; then
      printf '%-16s %-44s %9s %9s %6ss  %s\n' "$name" "$ref" "$(human "$(stat -c %s "$archive")")" \
        "$(sed -n 's/^unpacked=//p' "$archive.meta" 2>/dev/null | grep . || bh images --format '{{.Size}}' "$ref" 2>/dev/null | head -n1 | tr -d ' ')" \
        "$(sed -n 's/^build_seconds=//p' "$archive.meta" 2>/dev/null)" "$have"
    else
      printf '%-16s %-44s %9s %9s %7s  %s\n' "$name" "$ref" "not built" "-" "-" "$have"
    fi
  done
}

names_or_all() {
  local n
  for n in "$@"; do [[ -n "${DOCKERFILES[$n]:-}" ]] || { say "images: unknown image '$n' (one of: ${ORDER[*]})"; exit 2; }; done
  if [[ $# -gt 0 ]]; then printf '%s\n' "$@"; else printf '%s\n' "${ORDER[@]}"; fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
  build) mapfile -t names < <(names_or_all "$@"); build "${names[@]}" ;;
  import) mapfile -t names < <(names_or_all "$@"); import "${names[@]}" ;;
  list) list ;;
  archive)
    [[ $# -eq 1 ]] && names_or_all "$1" >/dev/null || { echo "usage: $0 archive NAME" >&2; exit 2; }
    base_state
    archive=$(archive_of "$1")
    [[ -s "$archive" ]] || { say "images: $1 is not built (stack/images.sh build $1)"; exit 3; }
    echo "$archive" ;;
  prune)
    exec 9>"$IMAGES_DIR/.lock"; flock 9
    bh rm --all >/dev/null
    bh rmi --prune >/dev/null || true
    say "images: buildah storage $(du -sh "$STORE" | cut -f1) after prune" ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
