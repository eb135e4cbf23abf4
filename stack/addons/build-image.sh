#!/usr/bin/env bash
# Packages one static binary as an OCI image from scratch (no base: the binary is the only file)
# and writes it as an oci-archive that `ctr images import` reads.
#   build-image.sh BINARY IMAGE_REF UID ARCHIVE
# The binary lands at /<basename> and is the entrypoint; the image runs as UID:UID.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

bin=$1 ref=$2 uid=$3 archive=$4
name=$(basename "$bin")
work=$(mktemp -d "${TMPDIR:-/tmp}/tp-image-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT

layout="$work/layout"
umoci init --layout "$layout"
umoci new --image "$layout:build"
# One layer holding the binary, root-owned and 0755. unpack/repack rather than `umoci insert`:
# Debian's umoci 0.4.7 writes an insert layer without the tar padding and end-of-archive blocks.
umoci unpack --image "$layout:build" "$work/bundle" >/dev/null
install -m 0755 -o 0 -g 0 "$bin" "$work/bundle/rootfs/$name"
umoci repack --image "$layout:build" \
  --history.created_by "stack/addons/build-image.sh: add $name" "$work/bundle"
umoci config --image "$layout:build" --os linux --architecture "$(go env GOARCH)" \
  --config.entrypoint "/$name" --config.user "$uid:$uid" --config.workingdir / \
  --config.label "org.opencontainers.image.title=$name" \
  --history.created_by "stack/addons/build-image.sh: config $name"
# Write to a temp name, then rename: a cached archive is always complete.
skopeo copy --quiet "oci:$layout:build" "oci-archive:$work/image.oci.tar:$ref"
mv "$work/image.oci.tar" "$archive.tmp.$$"
mv "$archive.tmp.$$" "$archive"
